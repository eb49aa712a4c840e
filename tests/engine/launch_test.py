"""Working directories (launch.Workdirs) under the runner: a real repository, real trees, tasks run locally."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from conftest import git

from fasttrack_gitops.core.job import JobStatus, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.launch import Workdirs
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.store import Store

SHARED = """\
version: "26.4.4"
name: shared
tasks:
  - name: a
    code: code/shared
    command: test "$(ls | wc -l)" -eq 300
  - name: b
    code: code/shared
    command: test "$(ls | wc -l)" -eq 300
"""


def test_tasks_that_start_together_from_one_code_tree_both_get_it(tmp_path: Path):
    # Their working directories are prepared in two worker threads at once: one copy wins, both use it.
    repo = tmp_path / "repo"
    (repo / "code" / "shared").mkdir(parents=True)
    for i in range(300):
        (repo / "code" / "shared" / f"f{i:03d}.txt").write_text(f"file {i}\n" * 100)
    (repo / "pipelines").mkdir()
    (repo / "pipelines" / "shared.yaml").write_text(SHARED)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one code tree, two tasks")
    snap = gitrepo.open_snapshot(repo)
    tree = gitrepo.tree_id(snap, "code/shared")
    checked = check_pipeline(textwrap.dedent(SHARED).encode(), "pipelines/shared.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/shared.yaml",
        repository=str(repo),
        source="commit",
        commit=snap.commit,
        ref=snap.ref,
        tree=snap.tree,
        code_trees={"a": tree, "b": tree},
    )
    store = Store(tmp_path / "state")
    runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=Workdirs(store, job, snap), new=True)

    async def drive():
        try:
            return await runner.run()
        finally:
            await runner.executor.close()

    view = asyncio.run(drive())

    assert view.status == JobStatus.SUCCEEDED, {n: i.reason for n, i in view.tasks.items()}
    work = store.data_dir(job.id) / "work"
    assert [p.name for p in work.iterdir()] == [tree]  # one copy, no partial one left behind
