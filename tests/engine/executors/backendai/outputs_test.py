"""Outputs of tasks run on Backend.AI, read in the pipeline data folder: real runs on the manager emulator.

`run --executor backendai` runs each task as an emulated session whose
startup script writes into the vfolder; the outputs are then read back
through the vfolder API only (listings, the storage proxy), as the daemon
and `jobs outputs --executor backendai` read them.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from commands.run_test import clean, cli, commit, make_repo, put

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.outputs import (
    OutputEntry,
    OutputNotFoundError,
    OutputPathError,
    OutputTooLargeError,
    TaskOutputs,
)
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: pair
cache: true
tasks:
  - name: prepare
    code: tasks/prepare
    command: mkdir -p "$PIPELINE_OUTPUT_ROOT/deep/er" && cp data.txt "$PIPELINE_OUTPUT_ROOT/deep/er/data.txt"
    environment: {image: python}
  - name: use
    code: tasks/use
    dependencies: [prepare]
    command: tr a-z A-Z < "$PIPELINE_INPUT1/deep/er/data.txt" > "$PIPELINE_OUTPUT_ROOT/result.txt"
    environment: {image: python}
"""


def run(capsys, repo: Path, state: Path, executor: str = "backendai") -> dict:
    code, out, err = cli(
        capsys, "run", repo / "pipelines/pair.yaml", "--executor", executor, "--state-dir", state, "--format", "json"
    )
    clean(err)
    assert code == 0, err
    return json.loads(out)


def on_cluster(state: Path, scenario):
    """Run `scenario(reader)` with a TaskOutputs on a fresh backendai executor, closed afterwards."""

    async def main():
        with Store(state) as store:
            reader = TaskOutputs(store, get_executor("backendai"))
            try:
                return await scenario(reader)
            finally:
                await reader.executor.close()

    return asyncio.run(main())


@pytest.fixture
def pair(emulated_cluster, capsys, tmp_path) -> tuple[Path, Path, dict]:
    """(repository, state folder, the record of one run of `pair` on the cluster)."""
    repo, state = tmp_path / "repo", tmp_path / "state"
    make_repo(repo, {"pipelines/pair.yaml": PIPELINE, "tasks/prepare/data.txt": "abc\n", "tasks/use/README": "u\n"})
    return repo, state, run(capsys, repo, state)


def test_outputs_on_the_cluster_are_listed_read_and_downloaded_through_the_vfolder_api(pair, tmp_path):
    _, state, job = pair

    async def scenario(reader):
        listed = await reader.list(job["id"], "prepare")
        data = await reader.read(job["id"], "prepare", "deep/er/data.txt", limit=4)
        result = await reader.read(job["id"], "use", "result.txt", limit=100)
        copied = await reader.download(job["id"], "prepare", tmp_path / "got")
        return listed, data, result, copied

    listed, data, result, copied = on_cluster(state, scenario)
    assert listed == [
        OutputEntry("deep", 0, True),
        OutputEntry("deep/er", 0, True),
        OutputEntry("deep/er/data.txt", 4, False),
    ]
    assert (data, result, copied) == (b"abc\n", b"ABC\n", 1)
    assert (tmp_path / "got/deep/er/data.txt").read_text() == "abc\n"
    # nothing of it was on this machine: the local job folder holds the empty outputs folders only
    assert list((state / "data" / job["id"] / "tasks/prepare/outputs").iterdir()) == []


def test_a_reused_task_is_read_in_the_folder_of_the_job_that_made_it(pair, capsys, tmp_path):
    repo, state, first = pair
    put(repo, "tasks/use/README", "changed\n")
    commit(repo, "use changes")
    second = run(capsys, repo, state)
    assert {t["name"]: t["status"] for t in second["tasks"]} == {"prepare": "reused", "use": "succeeded"}

    async def scenario(reader):
        return await reader.list(second["id"], "prepare"), await reader.read(
            second["id"], "prepare", "deep/er/data.txt", limit=100
        )

    listed, data = on_cluster(state, scenario)
    assert [e.path for e in listed] == ["deep", "deep/er", "deep/er/data.txt"] and data == b"abc\n"


def test_links_large_files_and_jobs_that_ran_elsewhere_are_refused(pair, emulated_cluster, capsys, tmp_path):
    repo, state, job = pair
    outputs = emulated_cluster.vfolders.directory(datafolder.folder_name(str(repo), "pair")) / "jobs" / job["id"]
    outputs = outputs / "tasks/prepare/outputs"
    (outputs / "passwd").symlink_to("/etc/passwd")
    (outputs / "linked").symlink_to("deep")
    local = run(capsys, repo, state, "local")  # a job this cluster never saw

    async def scenario(reader):
        found = []
        for path, limit in (
            ("passwd", 10**6),
            ("linked/er/data.txt", 100),
            ("deep/er/data.txt", 3),
            ("../../use/outputs/result.txt", 100),
            ("deep/er", 100),
        ):
            try:
                await reader.read(job["id"], "prepare", path, limit=limit)
            except Exception as e:
                found.append(type(e))
        listed = [e.path for e in await reader.list(job["id"], "prepare")]
        try:
            await reader.list(local["id"], "prepare")
        except OutputNotFoundError as e:
            elsewhere = str(e)
        return found, listed, elsewhere

    found, listed, elsewhere = on_cluster(state, scenario)
    assert found == [
        OutputNotFoundError,
        OutputNotFoundError,
        OutputTooLargeError,
        OutputPathError,
        OutputNotFoundError,
    ]
    assert listed == ["deep", "deep/er", "deep/er/data.txt"]  # links are never followed, nor shown
    assert f"no folder of job {local['id']}" in elsewhere and "--executor local" in elsewhere


def test_jobs_outputs_with_executor_backendai_lists_and_downloads_from_the_cluster(pair, capsys, tmp_path):
    _, state, job = pair
    args = ("jobs", "outputs", job["id"], "--executor", "backendai", "--state-dir", state)
    code, out, err = cli(capsys, *args, "--format", "json")
    clean(err)
    assert code == 0, err
    listed = {t["name"]: [o["path"] for o in t["outputs"]] for t in json.loads(out)["tasks"]}
    assert listed == {"prepare": ["deep", "deep/er", "deep/er/data.txt"], "use": ["result.txt"]}
    code, out, err = cli(capsys, *args, "use", "--download", tmp_path / "got")
    clean(err)
    assert code == 0 and out == f"use: 1 file -> {tmp_path / 'got/use'}\n"
    assert (tmp_path / "got/use/result.txt").read_text() == "ABC\n"
