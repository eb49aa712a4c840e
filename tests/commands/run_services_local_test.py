"""Deployment tasks with the local executor: the model definition's server runs here, ready when healthy.

docs-rag (with the stand-in definitions and server of tests/data/services)
runs to its end; its two servers answer on 127.0.0.1 while the job runs and
are stopped when it ends, unless `run --keep-services`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.request

import pytest
from commands.docs_rag import docs_rag_repo
from commands.run_test import clean, cli, make_repo
from conftest import DATA, wait_until

from fasttrack_gitops.engine.executors.processes import stop_orphan
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")
SECRET = "sk-local-openai-key-456"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FTG_SECRET_OPENAI_API_KEY", SECRET)


def run(capsys, root, state, *extra):
    code, out, err = cli(
        capsys, "run", root / "pipelines/docs-rag.yaml", "--state-dir", state, *extra, "--format", "json"
    )
    clean(err)
    return code, json.loads(out), err


def answers(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def stop_kept(state) -> None:
    for record in (state / "services").glob("*.json"):
        stop_orphan(json.loads(record.read_text()))


def test_docs_rag_runs_locally_and_its_servers_stop_with_the_job(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    ports = docs_rag_repo(root)
    code, record, err = run(capsys, root, state)
    assert code == 0, (err, record)
    tasks = {t["name"]: t for t in record["tasks"]}
    assert tasks["serve-fastapi"]["url"] == f"http://127.0.0.1:{ports['api']}"
    assert tasks["serve-gradio"]["url"] == f"http://127.0.0.1:{ports['ui']}"
    assert answers(tasks["serve-fastapi"]["url"]) is None  # stopped when the job ended
    models = state / "models"
    assert (models / "docs-rag-api" / "model-definition-fastapi.yaml").is_file()  # the code folder, staged
    assert (models / "docs-rag-api" / "answer.txt").read_text() == "api ready"  # its pre_start_action ran
    assert (models / "docs-rag-ui" / "indices.txt").read_text() == "indices of this run\n"  # stage_inputs
    code, text, _ = cli(capsys, "jobs", "show", record["id"], "--state-dir", state)
    assert f"http://127.0.0.1:{ports['ui']}" in text


def test_keep_services_leaves_them_answering_and_a_later_run_replaces_them(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    docs_rag_repo(root)
    try:
        code, record, _ = run(capsys, root, state, "--keep-services")
        assert code == 0
        url = next(t["url"] for t in record["tasks"] if t["name"] == "serve-fastapi")
        assert answers(url) == {"model": "docs-rag-api", "answer": "api ready"}
        # One service per name: the next job stops the kept one before it starts its own on the same port.
        code, again, _ = run(capsys, root, state, "--keep-services")
        assert code == 0 and answers(url) == {"model": "docs-rag-api", "answer": "api ready"}
    finally:
        stop_kept(state)
    assert answers(url) is None


def test_a_port_in_use_fails_clearly(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    ports = docs_rag_repo(root)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["ui"]))
        taken.listen()
        code, record, _ = run(capsys, root, state)
    tasks = {t["name"]: t for t in record["tasks"]}
    assert code == 1 and tasks["serve-gradio"]["status"] == "failed"
    assert f"port {ports['ui']} is already in use on this machine" in tasks["serve-gradio"]["reason"]
    assert tasks["serve-fastapi"]["status"] == "succeeded"


SERVE = """\
version: "26.4.4"
name: serve
tasks:
  - name: serve
    type: deployment
    code: model
    timeout: {timeout}
    service: {{name: sick-service}}
"""


def sick_repo(root, definition: str | None, timeout: str = "30s") -> None:
    files = {
        "pipelines/docs-rag.yaml": SERVE.format(timeout=timeout),
        "model/server.py": (DATA / "services" / "server.py").read_text(),
    }
    if definition is not None:
        files["model/model-definition.yaml"] = definition
    make_repo(root, files)


def test_a_health_check_that_never_passes_fails_with_the_servers_output(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    sick_repo(
        root,
        f"models:\n- name: sick\n  model_path: /models\n  service:\n    start_command: [python3, server.py, '{number}', --sick]\n"
        f"    port: {number}\n    health_check: {{path: /health, max_retries: 2, max_wait_time: 0.2}}\n",
    )
    code, record, _ = run(capsys, root, state)
    task = record["tasks"][0]
    assert code == 1 and task["status"] == "failed" and task["url"] is None
    assert f"GET http://127.0.0.1:{number}/health answered HTTP 503" in task["reason"]
    code, log, _ = cli(capsys, "jobs", "logs", record["id"], "serve", "--state-dir", state)
    assert f"serving sick on {number}" in log  # the end of the server's own output
    assert answers(f"http://127.0.0.1:{number}/") is None  # stopped


def test_a_missing_or_invalid_definition_fails_before_anything_starts(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    sick_repo(root, None)
    code, record, _ = run(capsys, root, state)
    assert code == 1
    assert (
        "the model definition model-definition.yaml is missing: put it in the task's code folder model/"
        in record["tasks"][0]["reason"]
    )

    root2 = tmp_path / "repo2"
    sick_repo(root2, "models:\n- name: m\n  model_path: /models\n  service: {port: 9}\n")
    code, record, _ = run(capsys, root2, state)
    assert code == 1 and "start_command is required" in record["tasks"][0]["reason"]


def test_a_cancelled_job_stops_a_server_that_was_not_ready(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        number = s.getsockname()[1]
    sick_repo(
        root,
        f"models:\n- name: sick\n  model_path: /models\n  service:\n    start_command: [python3, server.py, '{number}', --sick]\n"
        f"    port: {number}\n    health_check: {{path: /health, max_retries: 1000, max_wait_time: 0.2}}\n",
        timeout="5m",
    )
    done: dict = {}
    thread = threading.Thread(target=lambda: done.setdefault("run", run(capsys, root, state)))
    thread.start()
    wait_until(lambda: answers(f"http://127.0.0.1:{number}/") is not None, what="the server to answer")
    with Store(state) as store:
        store.request_cancel(store.list_jobs()[0].job.id)
    thread.join(timeout=30)
    code, record, _ = done["run"]
    assert code == 1 and record["tasks"][0]["status"] == "cancelled"
    assert answers(f"http://127.0.0.1:{number}/") is None
