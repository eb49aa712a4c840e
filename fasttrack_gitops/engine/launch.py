"""Running a stored job from the command line: working directories, the runner, progress, the result.

Shared by `run` and `jobs rerun`, so both show the same progress, print the
same record and exit with the same codes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
from collections.abc import Mapping
from pathlib import Path

import click

from fasttrack_gitops.core.job import JobStatus, JobView, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.engine.state.store import Store


class Workdirs:
    """The working directory of each task: its code tree, materialised once and copied per job.

    Trees are content-addressed, so `state_dir/trees/<tree id>` is written
    once and shared by every job; each job gets its own copy because a task
    may write into its working directory. The runner calls it in worker
    threads, several at once when tasks start together: it uses the store for
    paths only (never its connection, which belongs to the loop's thread), and
    of two tasks copying the same tree, the first rename wins.
    """

    def __init__(self, store: Store, job: PipelineJob, source):
        self.store = store
        self.job = job
        self.source = source  # a gitrepo.Snapshot or object store holding the trees

    def __call__(self, task: str) -> Path:
        from fasttrack_gitops.engine import gitrepo

        tree = self.job.code_trees[task]
        cached = self.store.state_dir / "trees" / tree
        gitrepo.materialise(self.source, tree, cached)
        copy = self.store.data_dir(self.job.id) / "work" / tree
        if not copy.exists():
            partial = copy.with_name(f"{tree}.tmp-{os.getpid()}-{threading.get_ident()}")
            shutil.copytree(cached, partial, symlinks=True)
            try:
                partial.rename(copy)
            except OSError:
                shutil.rmtree(partial, ignore_errors=True)
                if not copy.exists():  # else a task with the same tree copied it first
                    raise
        return copy


def source_of(job: PipelineJob, store: Store):
    """Where a stored job's trees can be read again (for a re-run).

    A work-tree snapshot keeps only the objects its repository lacked, so it
    is read through the repository first, then the snapshot store.
    """
    from fasttrack_gitops.engine import gitrepo

    if job.source == "commit":
        return gitrepo.open_snapshot(Path(job.repository), job.commit)
    found = gitrepo.repository_of(Path(job.repository)) if job.source == "worktree" else None
    top, prefix = found if found else (Path(job.repository), "")
    return gitrepo.Snapshot(
        job.source, top, prefix, job.commit, job.ref, job.tree, job.dirty, store=snapshot_store(store)
    )


def reused_tasks(store: Store, old: JobView, new: PipelineJob) -> dict[str, TaskInstance]:
    """For a re-run of failed tasks only: the old job's succeeded tasks, their outputs copied to the new job."""
    from fasttrack_gitops.engine.runner import outputs_folder

    reused: dict[str, TaskInstance] = {}
    for name, instance in old.tasks.items():
        if instance.state == TaskState.SUCCEEDED:
            reused[name] = TaskInstance(name, TaskState.SUCCEEDED, reason=f"reused from job {old.job.id}")
            outputs = outputs_folder(store.data_dir(old.job.id), name)
            if outputs.is_dir():
                shutil.copytree(
                    outputs, outputs_folder(store.data_dir(new.id), name), symlinks=True, dirs_exist_ok=True
                )
    return reused


def snapshot_store(store: Store) -> Path:
    """The folder where work-tree and unversioned snapshots keep their objects."""
    return store.state_dir / "objects"


def execute(
    job: PipelineJob,
    store: Store,
    source,
    *,
    executor: str,
    secrets: Mapping[str, str],
    max_parallel: int | None,
    fmt: str,
    initial: Mapping[str, TaskInstance] | None = None,
) -> int:
    """Store a new job and run it to its end, showing progress; print its record; the exit code."""
    from fasttrack_gitops.commands.progress import progress_for
    from fasttrack_gitops.core.render.jobs import job_record, job_summary
    from fasttrack_gitops.core.taskenv import task_environment
    from fasttrack_gitops.engine.executors import get_executor
    from fasttrack_gitops.engine.runner import JobRunner

    pipeline = job.pipeline_model()
    for task in pipeline.tasks:
        for warning in task_environment(pipeline, task, secrets).warnings:
            click.echo(f"warning: {warning}", err=True)

    async def main() -> JobView:
        runner_executor = get_executor(executor)
        with progress_for(job) as progress:
            runner = JobRunner(
                job,
                store,
                runner_executor,
                workdir=Workdirs(store, job, source),
                secrets=secrets,
                max_parallel=max_parallel,
                initial=initial,
                new=True,
                on_change=progress.change,
            )
            loop = asyncio.get_running_loop()

            def interrupt() -> None:
                click.echo("\ncancelling the job (Ctrl-C again to stop at once)", err=True)
                runner.cancel()
                loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C raises KeyboardInterrupt

            loop.add_signal_handler(signal.SIGINT, interrupt)
            loop.add_signal_handler(signal.SIGTERM, runner.cancel)
            try:
                return await runner.run()
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
                await runner_executor.close()

    view = asyncio.run(main())
    if fmt == "json":
        import json

        click.echo(json.dumps(job_record(view), indent=2))
    else:
        click.echo(job_summary(view), nl=False)
        _point_at_logs(view)
    return 0 if view.status == JobStatus.SUCCEEDED else 1


def _point_at_logs(view: JobView) -> None:
    failed = [name for name, i in view.tasks.items() if i.state == TaskState.FAILED]
    if failed:
        click.echo(f"\nsee why: fasttrack-gitops jobs logs {view.job.id} {failed[0]}")
