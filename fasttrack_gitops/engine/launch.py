"""Launching a stored job: sets it up (working directories, reused outputs, the runner) and runs it to its end.

The one way every shell runs a job: `run` and `jobs rerun` (commands/running.py),
the daemon's slots (daemon/pool.py) and the Action (ci/jobs.py) each make a
`Launch`, await its `run()` and watch it through `on_change`; `cancel()` stops
it at any time (from a signal handler too), `interrupt()` leaves it for a later
runner. A shell that owns its process wires SIGINT and SIGTERM with
`stop_signals`; the daemon handles its signals itself. Nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasttrack_gitops.core.job import DONE, JobView, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.base import EndsJobs, Executor, WarmsUp, cache_index_of
from fasttrack_gitops.engine.runner import Change, JobRunner
from fasttrack_gitops.engine.state.store import Store

if TYPE_CHECKING:
    from fasttrack_gitops.engine.cache import CacheIndex
    from fasttrack_gitops.engine.cache.keys import JobKeys


class Launch:
    """One stored job, set up to run with an executor the caller owns; `await run()` drives it to its end.

    `source` is where the job's code trees are read (a gitrepo.Snapshot or
    object store); when they cannot be (`unreadable`: the commit is gone),
    every task that needs its code fails with that reason. `failed_only`: a
    re-run that reuses the succeeded tasks of the job it repeats, and their
    outputs. `new`: the job is stored when it starts (else it is stored
    already); `resume`: take over a job a runner that died left unfinished.
    """

    def __init__(
        self,
        job: PipelineJob,
        store: Store,
        executor: Executor,
        *,
        source: Any = None,
        unreadable: Exception | None = None,
        secrets: Mapping[str, str] | None = None,
        max_parallel: int | None = None,
        failed_only: bool = False,
        new: bool = False,
        resume: bool = False,
        on_change: Callable[[Change], None] = lambda change: None,
    ):
        self.job = job
        self.store = store
        self.executor = executor
        self.source = source
        self.unreadable = unreadable
        self.secrets = secrets
        self.max_parallel = max_parallel
        self.failed_only = failed_only
        self.new = new
        self.resume = resume
        self.on_change = on_change
        self._runner: JobRunner | None = None
        self._cancelled = False
        self._interrupted = ""

    def cancel(self) -> None:
        """Stop the job: running attempts are killed, the rest cancelled (before run() too)."""
        self._cancelled = True
        if self._runner is not None:
            self._runner.cancel()

    def interrupt(self, reason: str) -> None:
        """Stop driving the job without ending it (the daemon shuts down); a later Launch with resume=True goes on."""
        self._interrupted = reason
        if self._runner is not None:
            self._runner.interrupt(reason)

    async def run(self) -> JobView:
        """Run the job to its end (or until interrupted); its view."""
        if isinstance(self.executor, WarmsUp):  # its launcher starts while the job is stored and prepared
            self.executor.warm_up()
        # The runner is made here, after the copying of reused outputs (in a worker thread), so a cancel()
        # or interrupt() that comes meanwhile is remembered and passed on.
        initial = await reused_tasks(self.store, self.job) if self.failed_only else {}
        cache = await task_cache(self.job, self.store, self.executor, self.source) if self.unreadable is None else None
        runner = self._runner = JobRunner(
            self.job,
            self.store,
            self.executor,
            workdir=Workdirs(self.store, self.job, self.source) if self.unreadable is None else _fails(self.unreadable),
            secrets=self.secrets,
            max_parallel=self.max_parallel,
            initial=initial,
            cache=cache,
            new=self.new,
            resume=self.resume,
            on_change=self.on_change,
        )
        if self._interrupted:
            runner.interrupt(self._interrupted)
        elif self._cancelled:
            runner.cancel()
        try:
            return await runner.run()
        finally:
            # What the job's deployment tasks keep until the job ends (an interrupted job goes on later).
            if isinstance(self.executor, EndsJobs) and not self._interrupted:
                await self.executor.job_ended(self.job.id)


class Workdirs:
    """The working directory of each task: its code tree, materialised once and copied per job.

    Trees are content-addressed, so a tree is materialised once in the
    state folder and shared by every job; each job gets its own copy because a task
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
        cached = datafolder.tree_folder(self.store.state_dir, tree)
        gitrepo.materialise(self.source, tree, cached)
        copy = datafolder.work_folder(self.store.data_dir(self.job.id), tree)
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


def _fails(problem: Exception) -> Callable[[str], Path]:
    """A workdir function for a job whose trees cannot be read: each task that asks fails with the problem."""

    def workdir(task: str) -> Path:
        raise problem

    return workdir


async def reused_tasks(store: Store, job: PipelineJob) -> dict[str, TaskInstance]:
    """For a re-run of failed tasks only: the repeated job's succeeded tasks, their outputs copied to this job.

    The store is read on the loop (its connection belongs to the loop's thread); the outputs, which may be
    large, are copied in a worker thread so a daemon keeps answering meanwhile.
    """
    if job.rerun_of is None:  # it repeats no job
        return {}
    old = store.view(job.rerun_of)
    succeeded = [name for name, instance in old.tasks.items() if instance.state in DONE]
    old_folder, new_folder = store.data_dir(old.job.id), store.data_dir(job.id)

    def copy() -> None:
        for name in succeeded:
            datafolder.copy_outputs(name, old_folder, new_folder)

    await asyncio.to_thread(copy)
    return {
        # The outputs' home: the repeated job's folder, or for a task that job reused, the folder it reused.
        name: TaskInstance(
            name,
            TaskState.REUSED,
            reason=f"reused from job {old.job.id}",
            reused_from=old.tasks[name].reused_from or old.job.id,
        )
        for name in succeeded
    }


async def task_cache(
    job: PipelineJob, store: Store, executor: Executor, source: Any
) -> tuple[JobKeys, CacheIndex] | None:
    """What the runner needs for the job's cached tasks: their key parts and the executor's index; None when no
    task of the job is cached (nothing is read or digested then)."""
    pipeline = job.pipeline_model()
    if job.invalid or not any(t.cache for t in pipeline.tasks):
        return None
    from fasttrack_gitops.engine.cache.keys import job_keys  # here: most jobs cache no task (start-up time)

    keys = await asyncio.to_thread(job_keys, job, source)
    return keys, cache_index_of(executor, job, store.state_dir)


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


def snapshot_store(store: Store) -> Path:
    """The folder where work-tree and unversioned snapshots keep their objects."""
    return store.state_dir / "objects"


@contextlib.asynccontextmanager
async def opened_executor(name: str, **options: Any) -> AsyncIterator[Executor]:
    """The named executor for the block; closed when it ends (whatever it still runs is stopped)."""
    from fasttrack_gitops.engine.executors import get_executor

    executor = get_executor(name, **options)
    try:
        yield executor
    finally:
        await executor.close()


@contextlib.contextmanager
def stop_signals(
    on_signal: Callable[[signal.Signals], None], *, second_interrupt_raises: bool = False
) -> Iterator[None]:
    """While the block runs on the running loop, SIGINT and SIGTERM call on_signal(signal), which stops the jobs.

    With second_interrupt_raises, SIGINT is taken once: a second Ctrl-C is
    Python's KeyboardInterrupt again, which stops at once without waiting for
    the cancelled tasks to end. Where signals cannot be handled (not the main
    thread) nothing is wired.
    """
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []

    def received(sig: signal.Signals) -> None:
        on_signal(sig)
        if sig == signal.SIGINT and second_interrupt_raises:
            loop.remove_signal_handler(signal.SIGINT)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, received, sig)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
