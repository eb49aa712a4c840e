"""Deployment tasks on Backend.AI that cannot become ready: each gives one clear reason, and leaves no service.

A one-task pipeline (a deployment task with a stand-in definition in its
code folder) on the manager emulator; each test breaks one thing the issue
lists: the model folder, the definition, the cluster, the name, the routes.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest
from commands.run_test import clean, cli, make_repo
from conftest import DATA, wait_until
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator, GQLError
from engine.backendai.emulator_services import install as install_services
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders
from engine.backendai.manager_rules import Reply

from fasttrack_gitops.core.job import TaskState
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.vfolders import create_vfolder
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: serve
tasks:
  - name: serve
    type: deployment
    code: model
    environment: {{image: python, scaling-group: default}}
    resources: {{cpu: 1, mem: 1g, cuda.shares: "0.5"}}
{extra}    service:
      name: {name}
      model: my-model
      replicas: 1
      open_to_public: {public}
      ephemeral: {ephemeral}
"""
DEFINITION = (DATA / "services" / "model-definition-gradio.yaml").read_text().replace("PORT_UI", "8000")


@pytest.fixture(params=["23.09"])
def cluster(request, monkeypatch):
    with Emulator(request.param) as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            install_services(emu, step=0.05)
            monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
            monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
            monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
            yield emu


def serve(capsys, tmp_path, *, definition=DEFINITION, name="my-service", public="true", ephemeral="false", extra=""):
    root = tmp_path / "repo"
    files = {"pipelines/p.yaml": PIPELINE.format(name=name, public=public, ephemeral=ephemeral, extra=extra)}
    if definition is not None:
        files["model/model-definition.yaml"] = definition
    files["model/server.py"] = (DATA / "services" / "server.py").read_text()
    make_repo(root, files)
    args = ["run", root / "pipelines/p.yaml", "--executor", "backendai", "--state-dir", tmp_path / "state"]
    code, out, err = cli(capsys, *args, "--format", "json")
    clean(err)
    record = json.loads(out)
    return code, record["tasks"][0], record


def test_a_private_service_records_how_to_get_a_token_never_a_token(capsys, tmp_path, cluster):
    code, task, _ = serve(capsys, tmp_path, public="false")
    assert code == 0 and task["url"] == "http://my-service.models.emulator.test"
    assert task["service"]["public"] is False and "generate-token" in task["service"]["access"]
    assert cluster.services.tokens == 0  # no token was made, so none can leak
    body = cluster.services.bodies[0][1]
    assert body["config"]["resources"]["cuda.shares"] == "0.5"  # fractions as strings


def test_a_missing_model_folder_that_cannot_be_created(capsys, tmp_path, cluster):
    refuse = Reply.problem(403, "insufficient-privilege", "Insufficient privilege.", "You cannot create a vfolder")
    cluster.route("POST", "/folders", lambda req: refuse)
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1 and task["status"] == "failed"
    assert "the model folder 'my-model' does not exist and could not be created" in task["reason"]
    assert "Model Store" in task["reason"] and not cluster.services.bodies


def test_a_folder_that_is_not_a_model_folder(capsys, tmp_path, cluster):
    async def make_general_folder():
        async with Client(Credentials(cluster.endpoint, ACCESS_KEY, SECRET_KEY), trust_env=False) as client:
            await create_vfolder(client, "my-model", usage_mode="general")

    asyncio.run(make_general_folder())
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1 and "is a general folder" in task["reason"] and "usage mode: model" in task["reason"]
    assert not cluster.services.bodies


def test_a_missing_model_definition(capsys, tmp_path, cluster):
    code, task, _ = serve(capsys, tmp_path, definition=None)
    assert code == 1
    assert (
        "the model definition model-definition.yaml is missing: put it under the task's code folder model/"
        in task["reason"]
    )
    assert not cluster.services.bodies


def test_a_definition_23_09_would_refuse(capsys, tmp_path, cluster):
    newer = DEFINITION.replace("models:\n", "models:\n", 1).replace(
        "    model_path: /models\n", "    model_path: /models\n    metadata: {author: me}\n"
    )
    newer = newer.replace("        max_wait_time: 1\n", "        max_wait_time: 1\n        initial_delay: 30\n")
    code, task, _ = serve(capsys, tmp_path, definition=newer)
    assert code == 1
    reason = task["reason"]
    assert "model-definition.yaml is not valid for Backend.AI 23.09.10" in reason
    assert "metadata" in reason and "initial_delay" in reason and "came after 23.09" in reason
    assert not cluster.services.bodies  # refused before anything was created


def test_a_service_that_never_becomes_healthy_fails_and_is_deleted(capsys, tmp_path, cluster):
    cluster.services.behaviour["my-service"] = "fail"
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1 and task["status"] == "failed"
    assert "failed to start" in task["reason"] and "model service process exited (1)" in task["reason"]
    assert cluster.services.deleted == ["my-service"] and task["url"] is None


def test_a_service_that_stays_provisioning_times_out_from_its_creation(capsys, tmp_path, cluster):
    cluster.services.behaviour["my-service"] = "provisioning"
    code, task, _ = serve(capsys, tmp_path, extra="    timeout: 2s\n")
    assert code == 1 and task["status"] == "failed"
    assert task["reason"].startswith("timed out after 2s from its creation") and "0/1 routes healthy" in task["reason"]
    assert cluster.services.deleted == ["my-service"]


def test_a_name_another_user_holds(capsys, tmp_path, cluster):
    cluster.services.foreign_names.add("my-service")
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1
    assert (
        "the service name 'my-service' is already used by another service on this cluster that is not yours"
        in task["reason"]
    )
    assert "choose another service.name" in task["reason"]


def test_no_coordinator_names_the_fix(capsys, tmp_path, cluster):
    cluster.services.coordinator = False
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1
    assert "No coordinator configured for this resource group [503]" in task["reason"]
    assert "wsproxy_addr" in task["reason"] and "environment.scaling-group" in task["reason"]


def test_a_resource_group_without_the_inference_session_type(capsys, tmp_path, cluster):
    cluster.services.inference_groups = set()
    code, task, _ = serve(capsys, tmp_path)
    assert code == 1
    assert "does not allow the 'inference' session type" in task["reason"] and "'default'" in task["reason"]


def test_an_ephemeral_service_is_deleted_when_its_job_ends(capsys, tmp_path, cluster):
    code, task, _ = serve(capsys, tmp_path, ephemeral="true")
    assert code == 0 and task["url"]
    assert cluster.services.deleted == ["my-service"]


def test_a_cancelled_job_deletes_the_service_it_had_not_finished(capsys, tmp_path, cluster):
    cluster.services.behaviour["my-service"] = "provisioning"
    state = tmp_path / "state"
    done: dict = {}
    thread = threading.Thread(target=lambda: done.setdefault("code", serve(capsys, tmp_path)[0]))
    thread.start()
    wait_until(lambda: cluster.services.services, what="the service to be created")
    with Store(state) as store:
        store.request_cancel(store.list_jobs()[0].job.id)
    thread.join(timeout=30)
    assert done["code"] == 1
    assert cluster.services.deleted == ["my-service"]
    with Store(state) as store:
        assert store.list_jobs()[0].tasks["serve"].state == TaskState.CANCELLED


@pytest.fixture
def current(monkeypatch):
    """A current (26.4) manager emulator: services roll out."""
    with Emulator("26.4") as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            install_services(emu, step=0.05)
            monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
            monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
            monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
            yield emu


def test_a_rollout_that_never_finishes_times_out_and_leaves_the_service(capsys, tmp_path, current):
    assert serve(capsys, tmp_path / "one")[0] == 0
    current.services.behaviour["my-service"] = "provisioning"
    code, task, _ = serve(capsys, tmp_path / "two", extra="    timeout: 2s\n")
    assert code == 1 and task["reason"].startswith("timed out after 2s")
    assert "left as the rolling update left it" in task["reason"]
    assert current.services.deleted == [] and len(current.services.rollouts) == 1


def test_a_server_that_refuses_the_rolling_update_gets_delete_and_create(capsys, tmp_path, current):
    assert serve(capsys, tmp_path / "one")[0] == 0

    def refuse(req, args):
        raise GQLError("Cannot query field 'modify_endpoint' on type 'Mutations'.")

    current.gql_mutation("modify_endpoint", refuse, "ModifyEndpoint")
    code, task, _ = serve(capsys, tmp_path / "two")
    assert code == 0 and current.services.deleted == ["my-service"]
    assert (
        "refused the rolling update" in task["service"]["note"]
        and "deleting it and creating it again" in task["service"]["note"]
    )
