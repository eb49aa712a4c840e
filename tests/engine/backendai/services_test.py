"""The /services client against the emulator's two dialects: what each server version is sent and answers."""

from __future__ import annotations

import asyncio

import pytest
from engine.backendai.emulator import Emulator
from engine.backendai.emulator_services import install as install_services
from engine.backendai.emulator_vfolders import install as install_vfolders

from fasttrack_gitops.core.pipeline.services import ServiceSpec
from fasttrack_gitops.engine.backendai import errors, services
from fasttrack_gitops.engine.backendai.vfolders import create_vfolder, upload

DEFINITION = b"models:\n- name: m\n  model_path: /models\n  service: {start_command: [python3, s.py], port: 8000}\n"
SPEC = ServiceSpec(
    name="docs-rag-api",
    model="models1",
    definition_path="model-definition.yaml",
    runtime_variant="custom",
    replicas=1,
    open_to_public=False,
)
DEPLOYMENT = services.Deployment(
    spec=SPEC, image="python", scaling_group="default", resources={"cpu": 1, "mem": "1g", "cuda.shares": "0.5"}
)


@pytest.fixture(params=["23.09", "26.4"])
def cluster(request):
    with Emulator(request.param) as emu, install_vfolders(emu):
        install_services(emu, step=0.02)
        yield emu


def test_dialects_by_release():
    old, new = services.Dialect.of("23.09.10"), services.Dialect.of("26.4.4")
    assert old.strict and not old.definition_path and not old.runtime_variant and old.healthy_routes_listed
    assert not new.strict and new.definition_path and new.runtime_variant and new.health_status
    mid = services.Dialect.of("24.03.4")
    assert mid.definition_path and not mid.runtime_variant


def test_each_version_is_sent_only_the_fields_it_accepts():
    old = services.create_body(DEPLOYMENT, services.Dialect.of("23.09.10"))
    new = services.create_body(DEPLOYMENT, services.Dialect.of("26.4.4"))
    common = {
        "name",
        "desired_session_count",
        "image",
        "group",
        "domain",
        "cluster_size",
        "cluster_mode",
        "open_to_public",
        "config",
    }
    config = {"model", "model_mount_destination", "environ", "resources", "resource_opts", "scaling_group"}
    assert set(old.body) == common and set(old.body["config"]) == config
    assert set(new.body) == common | {"runtime_variant"}
    assert set(new.body["config"]) == config | {"model_definition_path"}
    other = services.create_body(
        services.Deployment(
            spec=ServiceSpec(
                "docs-rag-api", "m", definition_path="model-definition-fastapi.yaml", runtime_variant="vllm"
            ),
            image="python",
        ),
        services.Dialect.of("23.09.10"),
    )
    assert any("model_definition_path model-definition-fastapi.yaml" in w for w in other.withheld)
    assert any("runtime_variant vllm" in w for w in other.withheld)


def test_create_get_token_delete_in_both_dialects(cluster, make_client):
    async def go():
        async with make_client(cluster) as client:
            await create_vfolder(client, "models1", usage_mode="model")
            await upload(client, "models1", "model-definition.yaml", DEFINITION)
            dialect = await services.dialect_of(client)
            body = services.create_body(DEPLOYMENT, dialect).body
            endpoint_id = await services.create_service(client, body, scaling_group="default")
            assert (await services.find_service(client, "docs-rag-api"))["id"] == endpoint_id
            for _ in range(200):
                state = await services.readiness(client, endpoint_id, dialect)
                if state.healthy and state.url:
                    break
                await asyncio.sleep(0.01)
            assert state.healthy == 1 and state.url == "http://docs-rag-api.models.emulator.test"
            assert (await services.service_errors(client, endpoint_id)) == ([], 0)
            token = await services.generate_token(client, endpoint_id)
            assert token.startswith("emu-token-")
            await services.delete_service(client, endpoint_id)
            assert await services.find_service(client, "docs-rag-api") is None

    asyncio.run(go())
    status = 200 if cluster.manager.startswith("23.") else 201
    assert next(r.status for r in cluster.requests if r.method == "POST" and r.target == "/services") == status


def test_23_09_refuses_a_key_it_does_not_know_and_current_servers_ignore_it(cluster, make_client):
    async def go():
        async with make_client(cluster) as client:
            await create_vfolder(client, "models1", usage_mode="model")
            await upload(client, "models1", "model-definition.yaml", DEFINITION)
            body = services.create_body(DEPLOYMENT, services.Dialect.of("26.4.4")).body  # the newer keys
            return await services.create_service(client, body, scaling_group="default")

    if cluster.manager.startswith("23."):
        with pytest.raises(errors.BackendAIError, match="runtime_variant is not allowed key") as caught:
            asyncio.run(go())
        assert caught.value.status == 400
    else:
        assert asyncio.run(go())
