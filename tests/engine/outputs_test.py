"""engine/outputs.py on this machine: real runs in a real state folder, their outputs listed, read and downloaded.

Each job is run by the CLI's `run` from a real git repository; a second run
of the cached pipeline reuses every task, so its outputs are read where the
first job made them. Paths that could leave the outputs are refused,
whatever the task put there (a link to /etc/passwd included).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from commands.run_test import clean, cli, make_repo

from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.outputs import (
    OutputEntry,
    OutputNotFoundError,
    OutputPathError,
    OutputTooLargeError,
    TaskOutputs,
    UnknownTaskError,
    checked_path,
)
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: plots
cache: true
tasks:
  - name: draw
    code: tasks/draw
    command: sh draw.sh
  - name: sum
    dependencies: [draw]
    code: tasks/sum
    command: wc -c < "$PIPELINE_INPUT1/plots/loss.svg" > "$PIPELINE_OUTPUT_ROOT/total.txt"
"""
DRAW = """\
mkdir -p "$PIPELINE_OUTPUT_ROOT/plots" "$PIPELINE_OUTPUT_ROOT/empty"
printf '<svg xmlns="http://www.w3.org/2000/svg"/>' > "$PIPELINE_OUTPUT_ROOT/plots/loss.svg"
head -c 3000 /dev/zero > "$PIPELINE_OUTPUT_ROOT/big.bin"
"""
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"/>'


def run(capsys, repo: Path, state: Path) -> dict:
    code, out, err = cli(capsys, "run", repo / "pipelines/plots.yaml", "--state-dir", state, "--format", "json")
    clean(err)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def ran(capsys, tmp_path: Path) -> tuple[Path, dict]:
    """(state folder, the record of one finished run of `plots`)."""
    repo, state = tmp_path / "repo", tmp_path / "state"
    make_repo(repo, {"pipelines/plots.yaml": PIPELINE, "tasks/draw/draw.sh": DRAW, "tasks/sum/README": "sum\n"})
    return state, run(capsys, repo, state)


def outputs_of(state: Path):
    """A TaskOutputs on the local executor, and the store to close."""
    store = Store(state)
    return TaskOutputs(store, get_executor("local")), store


def test_a_tasks_outputs_are_listed_read_and_downloaded(ran, tmp_path):
    state, job = ran
    reader, store = outputs_of(state)
    with store:
        assert asyncio.run(reader.list(job["id"], "draw")) == [
            OutputEntry("big.bin", 3000, False),
            OutputEntry("empty", 0, True),
            OutputEntry("plots", 0, True),
            OutputEntry("plots/loss.svg", len(SVG), False),
        ]
        assert asyncio.run(reader.list(job["id"][:12], "sum")) == [
            OutputEntry("total.txt", 3, False)
        ]  # "41\n"; a prefix
        assert asyncio.run(reader.read(job["id"], "draw", "plots/loss.svg", limit=1000)) == SVG
        assert asyncio.run(reader.read(job["id"], "draw", "./plots//loss.svg", limit=len(SVG))) == SVG
        assert asyncio.run(reader.download(job["id"], "draw", tmp_path / "got")) == 2
    assert (tmp_path / "got/plots/loss.svg").read_bytes() == SVG
    assert (tmp_path / "got/big.bin").stat().st_size == 3000 and (tmp_path / "got/empty").is_dir()


def test_a_reused_task_is_read_from_the_job_that_made_its_outputs(ran, capsys, tmp_path):
    state, first = ran
    second = run(capsys, tmp_path / "repo", state)
    assert {t["name"]: t["reused_from"] for t in second["tasks"]} == {"draw": first["id"], "sum": first["id"]}
    # what is read is the first job's: take the linked copies out of the second job's folder to be sure
    (state / "data" / second["id"] / "tasks/draw/outputs/plots/loss.svg").unlink()
    reader, store = outputs_of(state)
    with store:
        assert reader.tasks(second["id"]) == (second["id"], {"draw": first["id"], "sum": first["id"]})
        assert asyncio.run(reader.read(second["id"], "draw", "plots/loss.svg", limit=100)) == SVG
        assert asyncio.run(reader.list(second["id"], "draw")) == asyncio.run(reader.list(first["id"], "draw"))


def test_paths_that_leave_the_outputs_are_refused_whatever_the_task_put_there(ran, tmp_path):
    state, job = ran
    outputs = state / "data" / job["id"] / "tasks/draw/outputs"
    os.chmod(outputs, 0o755)
    (outputs / "passwd").symlink_to("/etc/passwd")
    (outputs / "up").symlink_to("..")
    (outputs / "inside.svg").symlink_to("plots/loss.svg")  # a link that stays inside is followed
    (tmp_path / "secret.txt").write_text("not an output\n")
    (outputs / "plots/sneaky.txt").symlink_to(tmp_path / "secret.txt")
    reader, store = outputs_of(state)
    with store:
        for path in ("../../../../etc/passwd", "/etc/passwd", "plots/../../sum/outputs/total.txt", "a\x00b", ""):
            with pytest.raises(OutputPathError):
                asyncio.run(reader.read(job["id"], "draw", path, limit=10_000))
        for path in ("passwd", "plots/sneaky.txt", "up/sum/outputs/total.txt"):
            with pytest.raises(OutputPathError, match="leads out of the outputs"):
                asyncio.run(reader.read(job["id"], "draw", path, limit=10_000))
        assert asyncio.run(reader.read(job["id"], "draw", "inside.svg", limit=100)) == SVG
        listed = [e.path for e in asyncio.run(reader.list(job["id"], "draw"))]
        assert "inside.svg" in listed and not {"passwd", "plots/sneaky.txt", "up"} & set(listed)
        assert asyncio.run(reader.download(job["id"], "draw", tmp_path / "got")) == 3  # big, loss, inside
    assert not (tmp_path / "got/passwd").exists() and not (tmp_path / "got/plots/sneaky.txt").exists()


def test_a_file_over_the_limit_a_missing_one_and_unknown_names_are_refused_clearly(ran):
    state, job = ran
    reader, store = outputs_of(state)
    with store:
        with pytest.raises(OutputTooLargeError) as raised:
            asyncio.run(reader.read(job["id"], "draw", "big.bin", limit=2999))
        assert (raised.value.size, raised.value.limit) == (3000, 2999)
        assert "3000 bytes" in str(raised.value) and "--download" in str(raised.value)
        assert len(asyncio.run(reader.read(job["id"], "draw", "big.bin", limit=3000))) == 3000
        with pytest.raises(OutputNotFoundError, match="no file outputs/nope.png"):
            asyncio.run(reader.read(job["id"], "draw", "nope.png", limit=10))
        with pytest.raises(OutputNotFoundError, match="is a folder"):
            asyncio.run(reader.read(job["id"], "draw", "plots", limit=10))
        with pytest.raises(UnknownTaskError, match="has no task 'drow'.*draw"):
            asyncio.run(reader.list(job["id"], "drow"))
        with pytest.raises(UnknownTaskError, match="no job 'no-such-job'") as raised_job:
            asyncio.run(reader.list("no-such-job", "draw"))
        assert raised_job.value.exit_code == 2


def test_checked_path_normalises_a_relative_path_and_refuses_the_rest():
    assert checked_path("plots//./loss.png") == "plots/loss.png"
    for bad in ("..", "a/../..", "/abs", "\\abs", "a\\..\\b", ".", "", "x\x00"):
        with pytest.raises(OutputPathError):
            checked_path(bad)
