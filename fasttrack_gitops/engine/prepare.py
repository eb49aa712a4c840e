"""What a task's attempt needs before it starts: its folders, its working directory, its AttemptSpec.

The folders and working directories of tasks sure to run are made ahead of
their start, in one worker thread (AheadOfStart). Starting a task needs its outputs folder, its log folder and its working
directory (a code tree copied for the job). On this kind of disk a folder
that does not exist yet costs 0.2-0.4 ms to make, three or four of them a
task: in a chain, where every task waits for the one before, that was half
of the time between one task's end and the next one's start (a cProfile of
a 200-task chain: posix.mkdir first by own time). So a thread makes them
for every task still to run, in the order the scheduler is likely to start
them, while the tasks before run; the runner then finds them made.

Nothing depends on the thread: the runner still makes whatever it needs
(`mkdir(exist_ok=True)` on a made folder is a cheap failed system call), so
a thread that is behind, or failed on a task, only costs the time it would
have saved; its errors are the runner's to meet and report when the task
starts. The thread touches the store for paths only (its connection
belongs to the loop's thread), like Workdirs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from fasttrack_gitops.core.job import PipelineJob
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.taskenv import masks, referenced_secrets, task_environment
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.base import AttemptSpec, ShipsAhead
from fasttrack_gitops.engine.state.store import Store

if TYPE_CHECKING:
    from fasttrack_gitops.engine.cache.job_cache import JobCache


class AheadOfStart:
    """Makes the folders of `tasks`, in that order, in a worker thread; the runner asks it for working directories.

    Each task is prepared once: by the thread when it gets there first, else by the runner when the task
    starts (the thread then skips it); a runner asking for a task the thread is preparing waits for that
    rather than copying the same tree beside it. A failure is not kept: the next ask tries again (a retry).
    """

    def __init__(self, tasks: Iterable[str], make_folders: Callable[[str], None], workdir: Callable[[str], Path]):
        self._tasks = list(tasks)
        self._make_folders = make_folders
        self._workdir = workdir
        self._lock = threading.Lock()  # guards _claimed between the thread and the loop (held for a dict look-up)
        self._claimed: dict[str, concurrent.futures.Future[Path]] = {}
        self._stop = threading.Event()
        self._done: asyncio.Future | None = None

    def start(self) -> None:
        if self._tasks:
            self._done = asyncio.ensure_future(asyncio.to_thread(self._prepare_all))

    async def workdir(self, task: str) -> Path:
        """The task's working directory: the thread's when it made it (or is making it), else made now."""
        with self._lock:
            theirs = self._claimed.get(task)
            if theirs is None:
                mine = self._claimed[task] = concurrent.futures.Future()
        if theirs is not None:
            try:
                return await asyncio.wrap_future(theirs)
            except Exception:  # noqa: BLE001 - the thread's failure is not kept: try again, as the runner would
                pass
            with self._lock:
                mine = self._claimed[task] = concurrent.futures.Future()
        try:
            path = await asyncio.to_thread(self._workdir, task)
        except BaseException as e:
            self._failed(task, mine, e)
            raise
        mine.set_result(path)
        return path

    async def stop(self) -> None:
        """Stop after the task in hand; wait for it, so nothing is made in the job's folders once it ended."""
        self._stop.set()
        await self.wait()

    async def wait(self) -> None:
        """Until the thread is through its tasks (or stopped)."""
        if self._done is not None:
            await asyncio.shield(self._done)

    def _failed(self, task: str, claim: concurrent.futures.Future[Path], error: BaseException) -> None:
        with self._lock:
            del self._claimed[task]  # not kept: the next ask (a retry) tries again
        claim.set_exception(error)

    def _prepare_all(self) -> None:
        for task in self._tasks:
            if self._stop.is_set():
                return
            with self._lock:
                if task in self._claimed:  # the runner started it already, or it is a retry
                    continue
                claim = self._claimed[task] = concurrent.futures.Future()
            try:
                self._make_folders(task)
                path = self._workdir(task)
            except BaseException as e:  # the runner meets it again when the task starts, and reports it there
                self._failed(task, claim, e)
                continue
            claim.set_result(path)


class Preparation:
    """One job's attempts made ready: folders, working directories (ahead of time where it is safe), specs."""

    def __init__(
        self,
        job: PipelineJob,
        pipeline: Pipeline,
        store: Store,
        workdir: Callable[[str], Path],  # called in worker threads: it must not use the store's connection
        secrets: Mapping[str, str],
        cache: JobCache | None,
    ):
        self.job = job
        self.pipeline = pipeline
        self.store = store
        self.workdir = workdir
        self.secrets = secrets
        self.cache = cache
        self.masks = masks(secrets, referenced_secrets(pipeline))
        self.data_dir = store.data_dir(job.id)
        self._made: set[str] = set()  # folders (by task; "/vfroot") already made
        self._ahead = AheadOfStart((), self._make_folders, workdir)
        self._shipping: asyncio.Future | None = None

    def ahead(self, tasks: Iterable[str], executor: object = None) -> None:
        """Start making the folders of these tasks (in the order given) in a worker thread: those sure to run; and
        when the executor ships code (ShipsAhead), shipping it, task by task in the same order, on the loop."""
        sure = [t for t in tasks if self._sure_to_run(t)]
        self._ahead = AheadOfStart(sure, self._make_folders, self.workdir)
        self._ahead.start()
        if isinstance(executor, ShipsAhead) and sure:
            self._shipping = asyncio.ensure_future(self._ship_all(sure, executor))

    async def stop(self) -> None:
        if self._shipping is not None:  # an upload for a job that ended is of no use
            self._shipping.cancel()
            await asyncio.gather(self._shipping, return_exceptions=True)
        await self._ahead.stop()

    async def _ship_all(self, tasks: list[str], executor: ShipsAhead) -> None:
        for name in tasks:
            try:
                spec = await self.spec(name, 1)
            except Exception:  # noqa: BLE001 - the attempt meets it again when the task starts, and reports it
                continue
            await executor.ship_ahead(spec)

    async def spec(self, name: str, number: int, *, warn: bool = False) -> AttemptSpec:
        """What the executor needs for one attempt (the working directory made in a worker thread, or ahead)."""
        task = self.pipeline.task(name)
        environment = task_environment(self.pipeline, task, self.secrets)
        if warn:
            for warning in environment.warnings:
                self.store.add_event(self.job.id, "task.warning", task=name, data={"message": warning})
        workdir = await self._ahead.workdir(name)
        return AttemptSpec(
            job_id=self.job.id,
            task=replace(task, command=environment.command),
            number=number,
            workdir=workdir,
            outputs=self.outputs(name),
            inputs=tuple(self.outputs(dep, create=True) for dep in task.dependencies),
            vfroot=self._vfroot(),
            env=environment.env,
            log_path=self.store.log_path(self.job.id, name, number),
            timeout=task.timeout,
            masks=self.masks,
            pipeline=self.job.pipeline,
            repository=self.job.repository,
            code_tree=self.job.code_trees.get(name, self.job.tree),
            input_jobs=self.cache.input_jobs(name) if self.cache is not None else (),
            manifest=self.cache is not None and self.cache.wants_manifest(name),
        )

    def outputs(self, name: str, *, create: bool = False) -> Path:
        """The task's outputs folder in the job's folder (made when `create`: a skipped dependency's empty one)."""
        path = datafolder.outputs_folder(self.data_dir, name)
        if create and name not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(name)
        return path

    def _vfroot(self) -> Path:
        path = datafolder.vfroot_folder(self.data_dir)
        if "/vfroot" not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add("/vfroot")
        return path

    def _sure_to_run(self, name: str) -> bool:
        """Whether the task runs if it starts at all: the cache may reuse it instead (and needs its outputs folder
        absent until it decides, cache/local.py's _reuse), and its working directory would be made for nothing."""
        return self.cache is None or not self.pipeline.task(name).cache

    def _make_folders(self, name: str) -> None:
        """The task's outputs and log folders (in AheadOfStart's thread: the store for paths only)."""
        self.outputs(name).mkdir(parents=True, exist_ok=True)
        self.store.log_path(self.job.id, name, 1)
