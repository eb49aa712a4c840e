"""The task cache on the real Backend.AI 23.09 manager: a second job of an unchanged pipeline creates no session.

The session writes its outputs' manifest with sha256sum, the entry lands in
the pipeline data folder, and the second job's dependant mounts the first
job's outputs. Sessions are counted on the manager itself (GraphQL), not in
our store.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import git

from fasttrack_gitops.cli import main
from fasttrack_gitops.engine.backendai.graphql import gql
from fasttrack_gitops.engine.backendai.session_spec import session_name

pytestmark = pytest.mark.timeout(300)

IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the one image the real stack knows
PIPELINE = f"""\
version: "23.09"
name: realstack-cache-{{stamp}}
cache: true
tasks:
  - name: make
    code: tasks/make
    command: echo 42 > "$PIPELINE_OUTPUT_ROOT/answer.txt"
    environment: {{{{image: {IMAGE}}}}}
    resources: {{{{cpu: 1, mem: 512m}}}}
  - name: use
    code: tasks/use
    dependencies: [make]
    command: cat "$PIPELINE_INPUT1/answer.txt" > "$PIPELINE_OUTPUT_ROOT/seen.txt"; cat "$PIPELINE_INPUT1/answer.txt"
    environment: {{{{image: {IMAGE}}}}}
    resources: {{{{cpu: 1, mem: 512m}}}}
"""


def run(capsys, repo, state) -> dict:
    code = main(
        ["run", str(repo / "pipelines/p.yaml"), "--executor", "backendai", "--state-dir", str(state)]
        + [
            "--format",
            "json",
        ]
    )
    record = json.loads(capsys.readouterr().out)
    assert code == 0, record
    return record


async def sessions_of(make_client, job_id: str, tasks: list[str]) -> list[str]:
    """The sessions the manager has (in any status) that an attempt of these tasks of the job would be named."""
    names = {session_name(job_id, task, 1) for task in tasks}
    async with make_client() as client:
        found = await gql(
            client,
            "query($s: String) { compute_session_list(limit: 100, offset: 0, status: $s) { items { name } } }",
            {"s": "PENDING,SCHEDULED,PREPARING,RUNNING,TERMINATING,TERMINATED,ERROR,CANCELLED"},
        )
    return [item["name"] for item in found["compute_session_list"]["items"] if item["name"] in names]


def test_an_unchanged_second_job_reuses_every_task_and_creates_no_session(tmp_path, capsys, make_client):
    stamp = str(int(time.time()))
    repo = tmp_path / "repo"
    for folder in ("pipelines", "tasks/make", "tasks/use"):
        (repo / folder).mkdir(parents=True)
    (repo / "pipelines/p.yaml").write_text(PIPELINE.format(stamp=stamp))
    (repo / "tasks/make/README").write_text("make\n")
    (repo / "tasks/use/README").write_text("use\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    state = tmp_path / "state"

    first = run(capsys, repo, state)
    assert {t["name"]: t["status"] for t in first["tasks"]} == {"make": "succeeded", "use": "succeeded"}
    second = run(capsys, repo, state)
    assert {t["name"]: (t["status"], t["reused_from"]) for t in second["tasks"]} == {
        "make": ("reused", first["id"]),
        "use": ("reused", first["id"]),
    }
    assert all(t["attempts"] == [] for t in second["tasks"])
    # the manager ran sessions for the first job only
    assert len(asyncio.run(sessions_of(make_client, first["id"], ["make", "use"]))) == 2
    assert asyncio.run(sessions_of(make_client, second["id"], ["make", "use"])) == []
    assert main(["jobs", "show", second["id"], "--cache", "--state-dir", str(state), "--format", "json"]) == 0
    cache = json.loads(capsys.readouterr().out)["cache"]
    assert cache["make"]["decision"].startswith(f"reuse: reused from job {first['id']}")
