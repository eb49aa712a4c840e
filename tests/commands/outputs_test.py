"""`fasttrack-gitops jobs outputs`: a real job's outputs listed, downloaded, and bad input said in one line.

The job is a real run of a committed pipeline (in-process `run`, local
executor) in a state folder under tmp_path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from commands.run_test import clean, cli, make_repo

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: made
tasks:
  - name: draw
    command: mkdir -p "$PIPELINE_OUTPUT_ROOT/plots"; printf 12345 > "$PIPELINE_OUTPUT_ROOT/plots/a.png"
  - name: note
    dependencies: [draw]
    command: echo done > "$PIPELINE_OUTPUT_ROOT/note.txt"
  - name: quiet
    command: "true"
"""


@pytest.fixture
def job(capsys, tmp_path: Path) -> tuple[Path, str]:
    """(state folder, the id of a finished job of `made`)."""
    repo, state = tmp_path / "repo", tmp_path / "state"
    make_repo(repo, {"pipelines/made.yaml": PIPELINE})
    code, out, err = cli(capsys, "run", repo / "pipelines/made.yaml", "--state-dir", state, "--format", "json")
    assert code == 0, err
    return state, json.loads(out)["id"]


def outputs(capsys, state: Path, *args) -> tuple[int, str, str]:
    code, out, err = cli(capsys, "jobs", "outputs", *args, "--state-dir", state)
    clean(err)
    return code, out, err


def test_without_task_every_tasks_outputs_are_listed_as_a_table(capsys, job):
    state, job_id = job
    code, out, _ = outputs(capsys, state, job_id)
    assert code == 0
    assert out.splitlines() == [
        "TASK   PATH          SIZE",
        "draw   plots/           -",
        "draw   plots/a.png      5",
        "note   note.txt         5",
        "quiet  (no outputs)",
    ]


def test_json_names_each_task_and_its_files(capsys, job):
    state, job_id = job
    code, out, _ = outputs(capsys, state, job_id[:10], "draw", "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "job": job_id,
        "tasks": [
            {
                "name": "draw",
                "reused_from": None,
                "outputs": [
                    {"path": "plots", "size": 0, "is_dir": True},
                    {"path": "plots/a.png", "size": 5, "is_dir": False},
                ],
            }
        ],
    }


def test_download_copies_each_task_into_its_own_folder(capsys, job, tmp_path):
    state, job_id = job
    code, out, _ = outputs(capsys, state, job_id, "--download", tmp_path / "got")
    assert code == 0
    assert out.splitlines() == [
        f"draw: 1 file -> {tmp_path / 'got/draw'}",
        f"note: 1 file -> {tmp_path / 'got/note'}",
        f"quiet: 0 files -> {tmp_path / 'got/quiet'}",
    ]
    assert (tmp_path / "got/draw/plots/a.png").read_text() == "12345"
    assert (tmp_path / "got/note/note.txt").read_text() == "done\n"

    code, out, _ = outputs(capsys, state, job_id, "note", "--download", tmp_path / "one", "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "job": job_id,
        "downloaded": [{"name": "note", "files": 1, "to": str(tmp_path / "one/note")}],
    }
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["note"]


def test_an_unknown_job_or_task_or_a_folder_that_cannot_be_written_is_exit_2_in_one_line(capsys, job, tmp_path):
    state, job_id = job
    (tmp_path / "a-file").write_text("")
    for args, said in (
        (("no-such-job",), "no job 'no-such-job'"),
        ((job_id, "drow"), "has no task 'drow'"),
        ((job_id, "--download", tmp_path / "a-file/sub"), "cannot make --download"),
    ):
        code, out, err = outputs(capsys, state, *args)
        assert code == 2, (args, err)
        assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and said in err, err
    assert "did you mean 'draw'" in cli(capsys, "jobs", "outputs", job_id, "drow", "--state-dir", state)[2]
