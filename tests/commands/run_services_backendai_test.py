"""Deployment tasks on Backend.AI: docs-rag's two services on the manager emulator, in both /services dialects.

The emulator (engine/backendai/emulator_services.py) checks every create body
as its server does: 23.09 refuses unknown keys, a current server (26.4)
ignores them; each records what it received, so these tests also say which
service fields each server version gets.
"""

from __future__ import annotations

import json
import os

import pytest
from commands.docs_rag import docs_rag_repo
from commands.run_test import clean, cli, commit, put, show
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_services import install as install_services
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders

from fasttrack_gitops.core.reports.build import job_report
from fasttrack_gitops.core.reports.slack_blocks import blocks
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")
SECRET = "sk-emulated-openai-key-123"


@pytest.fixture(params=["23.09", "26.4"])
def cluster(request, monkeypatch):
    """A manager emulator of that release with sessions, vfolders and model services."""
    with Emulator(request.param) as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            install_services(emu, step=0.05)
            monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
            monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
            monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
            monkeypatch.setenv("FTG_SECRET_OPENAI_API_KEY", SECRET)
            yield emu


def run(capsys, root, state, *extra):
    args = ["run", root / "pipelines/docs-rag.yaml", "--executor", "backendai", "--state-dir", state, *extra]
    return cli(capsys, *args, "--format", "json")


def test_docs_rag_runs_to_the_end_with_both_services_ready(capsys, tmp_path, cluster):
    root, state = tmp_path / "repo", tmp_path / "state"
    docs_rag_repo(root, image="python")
    code, out, err = run(capsys, root, state)
    clean(err)
    record = json.loads(out)
    assert code == 0, (err, record)
    tasks = {t["name"]: t for t in record["tasks"]}
    assert all(t["status"] == "succeeded" for t in tasks.values())
    assert tasks["serve-fastapi"]["url"] == "http://docs-rag-api.models.emulator.test"
    assert tasks["serve-gradio"]["url"] == "http://docs-rag-ui.models.emulator.test"
    assert tasks["fetch-code"]["url"] is None
    assert show(capsys, state, record["id"])["tasks"][-1]["url"] == tasks["serve-gradio"]["url"]

    # The model folders were made (usage mode model) and hold the staged code; each definition is where the
    # server reads it.
    folders = cluster.vfolders.folders
    assert folders["docs-rag-api"]["usage_mode"] == folders["docs-rag-ui"]["usage_mode"] == "model"
    api = cluster.vfolders.directory("docs-rag-api")
    assert (api / "server.py").is_file() and (api / "model-definition-fastapi.yaml").is_file()
    assert (api / "indices.txt").read_text() == "indices of this run\n"  # stage-service's outputs, staged

    bodies = [body for _, body in cluster.services.bodies]
    assert {b["name"] for b in bodies} == {"docs-rag-api", "docs-rag-ui"}
    api_body = next(b for b in bodies if b["name"] == "docs-rag-api")
    assert api_body["desired_session_count"] == 1 and api_body["open_to_public"] is True
    assert api_body["config"]["model"] == "docs-rag-api" and api_body["config"]["resources"] == {"cpu": 2, "mem": "8g"}
    assert api_body["config"]["resource_opts"] == {"shmem": "512m"} and api_body["group"] == "default"
    assert api_body["config"]["environ"]["OPENAI_API_KEY"] == SECRET  # resolved late, for the service only
    if cluster.manager.startswith("23."):
        # 23.09 is sent no key it does not know; the definition was copied to the one name it reads.
        assert "model_definition_path" not in api_body["config"] and "runtime_variant" not in api_body
        assert (api / "model-definition.yaml").read_text() == (api / "model-definition-fastapi.yaml").read_text()
    else:
        assert api_body["config"]["model_definition_path"] == "model-definition-fastapi.yaml"
        assert api_body["runtime_variant"] == "custom"
        assert not (api / "model-definition.yaml").exists()

    # The check run and `jobs show` carry the URLs; the secret is nowhere.
    code, text, _ = cli(capsys, "jobs", "show", record["id"], "--state-dir", state)
    assert "http://docs-rag-api.models.emulator.test" in text
    code, logs, _ = cli(capsys, "jobs", "logs", record["id"], "serve-fastapi", "--state-dir", state)
    assert "ready at http://docs-rag-api.models.emulator.test" in logs and SECRET not in logs
    assert SECRET not in out and SECRET not in text

    # The check run's summary and the Slack message (and so the Action's summary, which shows the check's).
    with Store(state) as store:
        report = job_report(store.view(record["id"]), log_tails={}, masks=[SECRET])
    assert "**Services**" in report.summary and "http://docs-rag-ui.models.emulator.test" in report.summary
    message = json.dumps(blocks(report, link=None))
    assert "*Services*" in message and "http://docs-rag-api.models.emulator.test" in message
    if cluster.manager.startswith("23."):
        assert "model_definition_path model-definition-fastapi.yaml" in report.summary  # what 23.09 was not sent


def test_a_newer_commit_updates_the_service_and_says_how(capsys, tmp_path, cluster):
    root, state = tmp_path / "repo", tmp_path / "state"
    docs_rag_repo(root, image="python")
    assert run(capsys, root, state)[0] == 0
    first_ids = {s.name: s.id for s in cluster.services.services.values()}
    put(root, "services/answer.txt", "a newer answer\n")
    commit(root, "newer")
    code, out, err = run(capsys, root, state)
    assert code == 0, err
    record = json.loads(out)
    live = {s.name: s.id for s in cluster.services.services.values() if s.destroying_at is None}
    assert sorted(live) == ["docs-rag-api", "docs-rag-ui"]  # never two services for one name
    note = next(t for t in record["tasks"] if t["name"] == "serve-fastapi")["service"]["note"]
    if cluster.manager.startswith("23."):
        # 23.09: delete and create again, said in the record (and so in the check)
        assert sorted(cluster.services.deleted) == ["docs-rag-api", "docs-rag-ui"] and live != first_ids
        assert "deleting it and creating it again: Backend.AI 23.09.10 has no rolling update" in note
        assert "max_surge / max_unavailable could not be honoured" in note
    else:
        # 26.x: the same services, a new revision each, rolled out with the task's bounds
        assert cluster.services.deleted == [] and live == first_ids
        rolled = {name: (props, policy) for name, props, policy in cluster.services.rollouts}
        props, policy = rolled["docs-rag-api"]
        assert policy == {"strategy": "ROLLING", "rolling_update": {"max_surge": 1, "max_unavailable": 0}}
        assert props["model_definition_path"] == "model-definition-fastapi.yaml" and props["replicas"] == 1
        assert json.loads(props["environ"])["OPENAI_API_KEY"] == SECRET
        assert "by a rolling update (max_surge 1, max_unavailable 0)" in note
    assert (cluster.vfolders.directory("docs-rag-api") / "answer.txt").read_text() == "a newer answer\n"


def test_on_23_09_two_services_cannot_share_a_model_folder_with_two_definitions(capsys, tmp_path, cluster):
    def share(doc):  # what FastTrack's GUI does with docs-rag: one model storage for both services
        for task in doc["tasks"]:
            if task["type"] == "deployment":
                task["service"]["model"] = "docs-rag-models"

    root, state = tmp_path / "repo", tmp_path / "state"
    docs_rag_repo(root, image="python", edit=share)
    code, out, err = run(capsys, root, state)
    tasks = {t["name"]: t for t in json.loads(out)["tasks"]}
    if cluster.manager.startswith("23."):
        assert code == 1
        failed = [t for t in tasks.values() if t["status"] == "failed"]
        assert len(failed) == 1 and "give each service its own service.model" in failed[0]["reason"]
    else:  # current servers read each service's own model_definition_path
        assert code == 0 and all(t["status"] == "succeeded" for t in tasks.values())
