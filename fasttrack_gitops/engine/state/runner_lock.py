"""One runner per job: the lock a job's runner holds while it drives the job, and the test of whether one does.

Whether a runner still drives a job is not a row (a runner killed with -9
could not clear it) but a lock: the runner holds an exclusive flock on
`<state dir>/runners/<job id>.lock` (`hold`); the kernel drops it when the
process dies, however it dies, and readers test it with a shared one
(`is_held`). The file holds the runner's pid, for the message of a refused
claim.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fasttrack_gitops.engine.state.errors import StoreUnavailableError
from fasttrack_gitops.engine.state.migrations import unwritable
from fasttrack_gitops.engine.state.state_folder import StateFolder

CLAIM_PATIENCE = 0.25  # seconds a claim retries: a reader's liveness test holds the lock for microseconds


@contextmanager
def hold(folder: StateFolder, job_id: str) -> Iterator[None]:
    """Hold the job's runner lock for the block; StoreUnavailableError if another process holds it.

    The lock is an flock on a descriptor that child processes do not
    inherit, so a task's process outliving a killed runner does not keep
    the job looking alive. The lock file is removed on release.
    """
    path = folder.lock_path(job_id)
    try:
        path.parent.mkdir(exist_ok=True)
        fd = _lock(path, job_id)
    except OSError as e:
        raise unwritable(folder.path, f"{path}: {e.strerror or e}") from e
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        try:
            path.unlink(missing_ok=True)  # while still locked: a waiting claimer re-checks the inode
        finally:
            os.close(fd)


def is_held(folder: StateFolder, job_id: str) -> bool:
    """Whether some process holds the job's runner lock: try a shared lock without waiting."""
    try:
        fd = os.open(folder.lock_path(job_id), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the shared lock we may have taken
    return False


def _lock(path: Path, job_id: str) -> int:
    """An exclusively flocked descriptor of the lock file at `path` (retried briefly)."""
    deadline = time.monotonic() + CLAIM_PATIENCE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                pid = path.read_text().strip() if path.exists() else ""
                raise StoreUnavailableError(
                    f"job {job_id} is already being run by another process"
                    f"{f' (pid {pid})' if pid else ''}: wait for it to end, or cancel it"
                ) from None
            time.sleep(0.01)
            continue
        try:  # a runner that just ended unlinks the file it held: then lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
