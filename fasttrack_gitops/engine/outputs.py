"""What a task instance produced, wherever it ran: list it, read one file, download it all.

A task instance's outputs are `tasks/<task>/outputs` in its job's folder
(datafolder.py): on this machine under the state folder, on Backend.AI in
the pipeline data folder (a vfolder). A task reused from the task cache has
its outputs in the folder of the job that made them
(`TaskInstance.reused_from`), and is read there: locally they are also
hard-linked into the new job's folder, on Backend.AI they are only there.

A stored job does not record which executor ran it, so the caller names
one (`jobs outputs --executor`, the daemon's configured executor):
`Executor.task_outputs(job, state_dir)` is the `OutputsFolder` beside
where that executor writes; the local one is `LocalOutputsFolder` here,
Backend.AI's is executors/backendai/outputs.py. `TaskOutputs` is the one
way in for the shells: it finds the job (an id or a unique prefix) and the
task in the store, the folder that holds the outputs, and checks the path.

A path is relative to the outputs folder, in POSIX form; one that could
leave it (`..`, absolute, a NUL byte) is refused before anything is read.
On this machine a symlink that resolves outside the outputs folder is
refused too, and left out of listings and downloads (a task could link
/etc/passwd into its outputs); on Backend.AI symlinks are never followed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.confined import LeftTheFolder, open_inside

if TYPE_CHECKING:
    from fasttrack_gitops.engine.executors.base import Executor
    from fasttrack_gitops.engine.state.store import Store


@dataclass(frozen=True)
class OutputEntry:
    path: str  # relative to the task's outputs folder, POSIX form: "plots/loss.png"
    size: int  # bytes; 0 for a folder
    is_dir: bool


Entries = list[OutputEntry]  # a name for it inside classes whose `list` method hides the builtin


class OutputsError(UsageError):
    """What was asked of a task's outputs cannot be given; the message says what to ask instead. Exit code 2."""


class UnknownTaskError(OutputsError):
    """The job (id or prefix) or the task names nothing in the state folder."""


class OutputNotFoundError(OutputsError):
    """The task's outputs hold no such file (or the folder that should hold them is gone)."""


class OutputPathError(OutputsError):
    """A path that could leave the outputs folder: `..`, absolute, NUL, or a symlink pointing outside."""


class OutputTooLargeError(OutputsError):
    """The file is larger than the caller's limit."""

    def __init__(self, message: str, *, size: int, limit: int):
        super().__init__(message)
        self.size, self.limit = size, limit


class OutputsFolder(Protocol):
    """The job folders one executor writes outputs into; `job_id` is the job whose folder holds them."""

    where: str  # for messages: "the state folder", "the Backend.AI pipeline data folder ftg-..."

    async def list(self, job_id: str, task: str) -> list[OutputEntry]:
        """Every file and folder under the task's outputs, sorted by path; [] when it left no outputs folder."""
        ...

    async def read(self, job_id: str, task: str, path: str, *, limit: int) -> bytes:
        """The bytes of one file (`path` checked by `checked_path`); OutputNotFoundError, OutputTooLargeError."""
        ...

    async def download(self, job_id: str, task: str, dest: Path) -> int:
        """Copy every file to dest/<path> (folders made); the number of files copied."""
        ...


def checked_path(path: str) -> str:
    """`path` normalised ('a//b/./c' -> 'a/b/c'); OutputPathError when it is empty or could leave the outputs."""
    if "\x00" in path:
        raise OutputPathError(f"{path!r} is not a path in the outputs (it holds a NUL byte)")
    if path.startswith("/") or path.startswith("\\"):
        raise OutputPathError(f"{path!r} is absolute; give a path relative to the task's outputs, like plots/loss.png")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or any("\\" in part for part in parts):
        raise OutputPathError(f"{path!r} leaves the task's outputs: '..' (or a backslash) is not allowed in the path")
    if not parts:
        raise OutputPathError(f"{path!r} names the outputs folder itself; give a file in it")
    return "/".join(parts)


def too_large(task: str, path: str, size: int, limit: int) -> OutputTooLargeError:
    return OutputTooLargeError(
        f"outputs/{path} of task '{task}' is {size} bytes, more than the limit of {limit} bytes; download it with "
        f"`fasttrack-gitops jobs outputs JOB {task} --download DIR`",
        size=size,
        limit=limit,
    )


class TaskOutputs:
    """The outputs of the task instances of stored jobs, read where `executor` wrote them."""

    def __init__(self, store: Store, executor: Executor):
        self.store, self.executor = store, executor

    def tasks(self, job_id: str) -> tuple[str, dict[str, str | None]]:
        """(the job's id, {task: the job it reused its outputs from, or None}) in the pipeline's order."""
        view = self._view(job_id)
        return view.job.id, {name: instance.reused_from for name, instance in view.tasks.items()}

    def locate(self, job_id: str, task: str) -> tuple[OutputsFolder, str]:
        """(the folder that holds the task's outputs, the id of the job whose folder it is: a reused task's maker)."""
        view = self._view(job_id)
        instance = view.tasks.get(task)
        if instance is None:
            from fasttrack_gitops.core.pipeline.diagnostics import did_you_mean

            raise UnknownTaskError(f"job {view.job.id} has no task '{task}'{did_you_mean(task, view.tasks)}")
        folder = self.executor.task_outputs(view.job, self.store.state_dir)
        return folder, instance.reused_from or view.job.id

    async def list(self, job_id: str, task: str) -> list[OutputEntry]:
        folder, holder = self.locate(job_id, task)
        return await folder.list(holder, task)

    async def read(self, job_id: str, task: str, path: str, *, limit: int) -> bytes:
        rel = checked_path(path)
        folder, holder = self.locate(job_id, task)
        return await folder.read(holder, task, rel, limit=limit)

    async def download(self, job_id: str, task: str, dest: Path) -> int:
        folder, holder = self.locate(job_id, task)
        return await folder.download(holder, task, dest)

    def _view(self, job_id: str):
        from fasttrack_gitops.engine.state.errors import JobRecordError

        try:
            return self.store.view(job_id)
        except JobRecordError as e:
            raise UnknownTaskError(str(e)) from None


# -- on this machine: the job folders under the state folder


class LocalOutputsFolder:
    """The outputs the local executor wrote: <state dir>/data/<job>/tasks/<task>/outputs (datafolder.py)."""

    where = "the state folder"

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir

    def outputs(self, job_id: str, task: str) -> Path:
        job = datafolder.job_folder(self.state_dir, datafolder.component(job_id, "job id"))
        return datafolder.outputs_folder(job, datafolder.component(task, "task"))

    async def list(self, job_id: str, task: str) -> list[OutputEntry]:
        return await asyncio.to_thread(self._list, self.outputs(job_id, task))

    async def read(self, job_id: str, task: str, path: str, *, limit: int) -> bytes:
        return await asyncio.to_thread(self._read, self.outputs(job_id, task), task, path, limit)

    async def download(self, job_id: str, task: str, dest: Path) -> int:
        return await asyncio.to_thread(self._download, self.outputs(job_id, task), dest)

    # -- in a worker thread

    def _list(self, top: Path) -> Entries:
        return [entry for entry, _ in _walk(top)]

    def _read(self, top: Path, task: str, path: str, limit: int) -> bytes:
        real = _real(top)
        if real is None:
            raise OutputNotFoundError(f"task '{task}' left no outputs in {self.where}")
        target = _inside(real, top / path)
        if target is None:
            raise OutputPathError(f"outputs/{path} of task '{task}' is a link that leads out of the outputs")
        if target.is_dir():
            raise OutputNotFoundError(f"outputs/{path} of task '{task}' is a folder; give a file in it")
        if not target.is_file():
            raise OutputNotFoundError(f"task '{task}' has no file outputs/{path}; `jobs outputs JOB {task}` lists them")
        try:  # checked again as it is opened: a running task may swap a link in after the check above
            opened = open_inside(real, target.relative_to(real))
        except LeftTheFolder:
            raise OutputPathError(f"outputs/{path} of task '{task}' is a link that leads out of the outputs") from None
        except OSError:
            raise OutputNotFoundError(f"task '{task}' has no file outputs/{path} any more") from None
        with opened as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise too_large(task, path, size, limit)
            data = f.read(limit + 1)
        if len(data) > limit:  # grew since
            raise too_large(task, path, len(data), limit)
        return data

    def _download(self, top: Path, dest: Path) -> int:
        copied = 0
        real = _real(top)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for entry, source in _walk(top):
                target = dest / entry.path
                if entry.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                assert real is not None  # _walk found files: the folder is there
                try:  # opened again from the root: a link a running task swapped in since the walk leads nowhere
                    opened = open_inside(real, source.relative_to(real if source.is_relative_to(real) else top))
                except LeftTheFolder:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with opened, open(target, "wb") as out:
                    shutil.copyfileobj(opened, out)
                copied += 1
        except OSError as e:
            raise OutputsError(f"cannot write the outputs to {e.filename or dest}: {e.strerror or e}") from None
        return copied


def _real(top: Path) -> Path | None:
    """The outputs folder resolved; None when it is missing or is itself a symlink (a task may not point it away)."""
    if top.is_symlink() or not top.is_dir():
        return None
    return top.resolve()


def _inside(real_top: Path, path: Path) -> Path | None:
    """`path` resolved, when it stays in the outputs folder (resolved as `real_top`); None when it leaves it."""
    try:
        resolved = path.resolve()
    except OSError:  # a link changed while it was being followed (a running task swapping it): not inside
        return None
    return resolved if resolved == real_top or resolved.is_relative_to(real_top) else None


def _walk(top: Path) -> list[tuple[OutputEntry, Path]]:
    """(entry, the file to read) for everything under `top`, sorted by path; links that leave it are left out, and
    a link to a folder is not followed."""
    real = _real(top)
    if real is None:
        return []
    found: list[tuple[OutputEntry, Path]] = []
    for here, dirnames, filenames in os.walk(top):
        base = Path(here).relative_to(top)
        for name in sorted(dirnames):
            full = Path(here) / name
            if full.is_symlink():  # os.walk does not descend into it: at most a link to a file would be shown
                dirnames.remove(name)
                continue
            found.append((OutputEntry((base / name).as_posix(), 0, True), full))
        for name in filenames:
            full = Path(here) / name
            target = _inside(real, full) if full.is_symlink() else full
            if target is None or not target.is_file():  # leaves the outputs, dangles, or is a FIFO, socket, device
                continue
            found.append((OutputEntry((base / name).as_posix(), target.stat().st_size, False), target))
    return sorted(found, key=lambda item: item[0].path)
