"""A pipeline shaped like the examples repository's main one, run end to end on the real Backend.AI manager.

Two tasks with code folders, a fan-in, and a failing continue_on_failure task:
real sessions, real exit codes, logs, the pipeline vfolder and the input wiring.
"""

from __future__ import annotations

import json

import pytest
from conftest import git

from fasttrack_gitops.cli import main

# ~7 s on a warm stack; three sessions one after another on a cold one may take minutes to schedule.
pytestmark = pytest.mark.timeout(300)

IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the one image the real stack knows
PIPELINE = f"""\
version: "23.09"
name: realstack-e2e
tasks:
  - name: make
    code: tasks/make
    command: sh make.sh
    environment: {{image: {IMAGE}}}
    resources: {{cpu: 1, mem: 512m}}
  - name: flaky
    command: echo failing on purpose; exit 4
    continue_on_failure: true
    environment: {{image: {IMAGE}}}
    resources: {{cpu: 1, mem: 512m}}
  - name: use
    dependencies: [make, flaky]
    code: tasks/use
    command: python3 use.py
    environment: {{image: {IMAGE}, envs: {{TOKEN: "${{{{ secrets.TOKEN }}}}"}}}}
    resources: {{cpu: 1, mem: 512m}}
"""


def test_a_pipeline_runs_end_to_end_on_backend_ai(tmp_path, capsys, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "tasks" / "make").mkdir(parents=True)
    (repo / "tasks" / "use").mkdir(parents=True)
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE)
    (repo / "tasks" / "make" / "make.sh").write_text('echo 42 > "$PIPELINE_OUTPUT_ROOT/answer.txt"; echo made\n')
    (repo / "tasks" / "use" / "use.py").write_text(
        'import os\nprint("answer:", open(os.path.join(os.environ["PIPELINE_INPUT1"], "answer.txt")).read().strip())\n'
        'print("token:", os.environ["TOKEN"])\n'
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    monkeypatch.setenv("FTG_SECRET_TOKEN", "s3cr3t-value")
    state = tmp_path / "state"

    code = main(
        [
            "run",
            str(repo / "pipelines" / "p.yaml"),
            "--executor",
            "backendai",
            "--state-dir",
            str(state),
            "--format",
            "json",
        ]
    )
    record = json.loads(capsys.readouterr().out)

    assert code == 0, record
    tasks = {t["name"]: t for t in record["tasks"]}
    assert (tasks["make"]["status"], tasks["flaky"]["status"], tasks["use"]["status"]) == (
        "succeeded",
        "failed",
        "succeeded",
    )
    assert tasks["flaky"]["exit_code"] == 4
    assert main(["jobs", "logs", record["id"], "use", "--state-dir", str(state)]) == 0
    log = capsys.readouterr().out
    assert "answer: 42" in log  # make's output reached use as /pipeline/input1
    assert "token: ***" in log and "s3cr3t-value" not in log
