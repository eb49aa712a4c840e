"""Each task's folders and working directory, made ahead of its start in one worker thread.

Starting a task needs its outputs folder, its log folder and its working
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
from collections.abc import Callable, Iterable
from pathlib import Path


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
