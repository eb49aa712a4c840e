"""`run --executor backendai` with the task cache: real commits, the manager emulator, its sessions counted.

The emulator runs each session's startup script as a real sh process against
the pipeline vfolder, so a session that reads its input reads it where the
script linked it: for a dependency reused from the cache, in the folder of
the job that made it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from commands.run_test import clean, cli, commit, make_repo, put
from engine.backendai.emulator import Emulator

from fasttrack_gitops.engine import datafolder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: pair
cache: true
tasks:
  - name: prepare
    code: tasks/prepare
    command: cp data.txt "$PIPELINE_OUTPUT_ROOT/data.txt"
    environment: {image: python}
  - name: use
    code: tasks/use
    dependencies: [prepare]
    command: sh use.sh
    environment: {image: python}
"""
USE = 'tr a-z A-Z < "$PIPELINE_INPUT1/data.txt" > "$PIPELINE_OUTPUT_ROOT/result.txt"; echo "read $PIPELINE_INPUT1"\n'


def sessions(emu: Emulator) -> int:
    """How many sessions were asked for so far."""
    return sum(1 for r in emu.requests_to("/session") if r.method == "POST")


def run(capsys, repo: Path, state: Path) -> dict:
    code, out, err = cli(
        capsys, "run", repo / "pipelines/pair.yaml", "--executor", "backendai", "--state-dir", state, "--format", "json"
    )
    clean(err)
    assert code == 0, err
    return json.loads(out)


def states(record: dict) -> dict[str, str]:
    return {t["name"]: t["status"] for t in record["tasks"]}


def test_a_rerun_on_backendai_starts_no_session_and_a_changed_task_reads_the_earlier_jobs_outputs(
    capsys,
    emulated_cluster,
    tmp_path,
):
    repo, state = tmp_path / "repo", tmp_path / "state"
    make_repo(
        repo,
        {"pipelines/pair.yaml": PIPELINE, "tasks/prepare/data.txt": "abc\n", "tasks/use/use.sh": USE},
    )
    vfolder = emulated_cluster.vfolders.directory
    folder_name = datafolder.folder_name(str(repo), "pair")

    first = run(capsys, repo, state)
    assert states(first) == {"prepare": "succeeded", "use": "succeeded"} and sessions(emulated_cluster) == 2
    jobs = vfolder(folder_name) / "jobs"
    assert (jobs / first["id"] / "tasks/use/outputs/result.txt").read_text() == "ABC\n"
    assert len(list((vfolder(folder_name) / "cache/entries").iterdir())) == 2

    second = run(capsys, repo, state)
    assert sessions(emulated_cluster) == 2  # not one session more
    assert states(second) == {"prepare": "reused", "use": "reused"}
    assert all(t["reused_from"] == first["id"] for t in second["tasks"])

    put(repo, "tasks/use/use.sh", USE.replace("tr a-z A-Z", "rev"))
    commit(repo, "use: another result")
    third = run(capsys, repo, state)
    assert sessions(emulated_cluster) == 3  # only the changed task ran
    assert states(third) == {"prepare": "reused", "use": "succeeded"}
    assert (jobs / third["id"] / "tasks/use/outputs/result.txt").read_text() == "cba\n"
    assert not (jobs / third["id"] / "tasks/prepare").exists()  # read where it was made: nothing copied
    logs = "".join(p.read_text() for p in (state / "logs").rglob("*") if p.is_file() and third["id"] in str(p))
    assert logs.endswith(f"/ftg-folder/jobs/{first['id']}/tasks/prepare/outputs\n")  # the session's own words
