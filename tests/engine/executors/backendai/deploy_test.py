"""The `backendai` executor's deployment attempts, driven directly: the API calls they cost, and a reattach."""

from __future__ import annotations

import asyncio

import pytest
from conftest import DATA
from engine.backendai.emulator import Emulator
from engine.backendai.emulator_services import install as install_services
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders
from engine.executors.backendai import fixtures
from engine.executors.backendai.fixtures import attempt, run

from fasttrack_gitops.core.job import Outcome

make_spec = fixtures.make_spec  # the fixture these tests use
SERVICE = {"name": "docs-rag-ui", "model": "ui-model", "open_to_public": True}


@pytest.fixture
def services_cluster():
    with Emulator() as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            install_services(emu, step=0.02)
            yield emu


@pytest.fixture
def deployment(make_spec):
    def _make(**changes):
        spec = make_spec("", type="deployment", service=SERVICE, code="model", **changes)
        (spec.workdir / "model-definition.yaml").write_text(
            (DATA / "services" / "model-definition-gradio.yaml").read_text().replace("PORT_UI", "8000")
        )
        return spec

    return _make


def test_the_success_path_and_what_it_costs(services_cluster, deployment):
    spec = deployment()
    ran = run(services_cluster, lambda executor: attempt(executor, spec))
    assert ran.result.outcome == Outcome.SUCCEEDED and ran.started == 1
    assert ran.result.service is not None and ran.result.service.url == "http://docs-rag-ui.models.emulator.test"
    assert ran.calls[("POST", "/services")] == 1 and ran.calls[("GET", "/services")] == 1  # idempotent by name
    assert ran.calls[("GET", "/services/{id}")] >= 1
    assert "created model service docs-rag-ui" in ran.log and "1/1 routes healthy" in ran.log


def test_a_reattach_follows_the_service_a_dead_runner_created(services_cluster, deployment):
    spec = deployment()

    async def scenario(executor):
        first = await attempt(executor, spec)  # as if a runner created it, then died
        endpoint = next(iter(services_cluster.services.services))
        calls = executor.client.calls.copy()
        result = await executor.reattach(
            spec,
            {"service": "docs-rag-ui", "endpoint_id": endpoint},
            cancel=asyncio.Event(),
            started=lambda h=None, **_: None,
        )
        return first, result, executor.client.calls - calls

    first, result, calls = run(services_cluster, scenario)
    assert first.result.outcome == result.outcome == Outcome.SUCCEEDED
    assert result.service is not None and result.service.url == first.result.service.url
    assert ("POST", "/services") not in calls and not services_cluster.services.deleted  # followed, not replaced
