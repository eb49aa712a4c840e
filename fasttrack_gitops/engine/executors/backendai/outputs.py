"""The outputs of tasks run on Backend.AI, read in the pipeline data folder: the executor's OutputsFolder.

A session writes its outputs to `jobs/<job>/tasks/<task>/outputs` in the
pipeline's vfolder (datafolder.py, layout.py), and nothing is downloaded
when it ends; this reads them there on demand through the vfolder API:
listings (one request per folder), and a file's bytes through the storage
proxy. The client is the executor's own, so the keypair is the one that
ran the tasks.

Symlinks are never followed: a listing leaves them out, and before a file
is read each folder on its path is listed to check that every step is a
real folder and the last a regular file (which gives its size for the
limit, so an oversized file is refused before a byte of it moves). A
missing vfolder, or a job without a folder in it, says the job did not
run on this cluster, likely with another executor. The manager's other errors (BackendAIError) propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path, PurePosixPath

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.vfolder_tree import walk
from fasttrack_gitops.engine.outputs import Entries, OutputEntry, OutputNotFoundError, OutputsError, too_large

AT_ONCE = 8  # listings or downloads in flight


class BackendAIOutputsFolder:
    """The job folders in one (repository, pipeline)'s pipeline data folder (OutputsFolder, engine/outputs.py)."""

    def __init__(self, client: Client, folder: str):
        """`folder`: the pipeline data folder's name (datafolder.folder_name)."""
        self.client, self.folder = client, folder
        self.where = f"the Backend.AI pipeline data folder {folder}"

    def outputs(self, job_id: str, task: str) -> str:
        return f"{datafolder.job_in_folder(job_id)}/{datafolder.task_outputs(datafolder.component(task, 'task'))}"

    async def list(self, job_id: str, task: str) -> list[OutputEntry]:
        found = await self._walk(self.outputs(job_id, task))
        with self._known_folder():
            if not found and not await vfolders.exists(self.client, self.folder, datafolder.job_in_folder(job_id)):
                raise self._elsewhere(job_id)
        return found

    async def read(self, job_id: str, task: str, path: str, *, limit: int) -> bytes:
        top = self.outputs(job_id, task)
        size = await self._file_size(top, task, path)
        if size > limit:
            raise too_large(task, path, size, limit)
        try:
            data = await vfolders.download(self.client, self.folder, f"{top}/{path}")
        except vfolders.NoSuchPathError:
            raise self._missing(task, path) from None
        if len(data) > limit:  # grew since it was listed
            raise too_large(task, path, len(data), limit)
        return data

    async def download(self, job_id: str, task: str, dest: Path) -> int:
        top = self.outputs(job_id, task)
        entries = await self.list(job_id, task)
        gate = asyncio.Semaphore(AT_ONCE)

        async def fetch(entry: OutputEntry) -> None:
            target = dest / entry.path
            async with gate:
                await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
                await vfolders.download_to(self.client, self.folder, f"{top}/{entry.path}", target)

        try:
            await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
            for entry in entries:
                if entry.is_dir:
                    await asyncio.to_thread((dest / entry.path).mkdir, parents=True, exist_ok=True)
            files = [entry for entry in entries if not entry.is_dir]
            await asyncio.gather(*(fetch(entry) for entry in files))
        except OSError as e:
            raise OutputsError(f"cannot write the outputs to {e.filename or dest}: {e.strerror or e}") from None
        return len(files)

    # -- the folder

    async def _walk(self, top: str) -> Entries:
        """Every folder and regular file under `top`, sorted by path; [] when `top` is not there."""
        with self._known_folder():
            try:
                found = await walk(self.client, self.folder, top, at_once=AT_ONCE)
            except vfolders.NoSuchPathError:
                return []
        entries = [
            OutputEntry(path, 0 if item.is_dir else item.size, item.is_dir)
            for path, item in found.items()
            if item.is_dir or item.type.upper() == "FILE"  # a SYMLINK is not followed
        ]
        return sorted(entries, key=lambda e: e.path)

    async def _file_size(self, top: str, task: str, path: str) -> int:
        """The size of the regular file `path`, reached through real folders only; OutputNotFoundError else."""
        parts = PurePosixPath(path).parts
        here, size = top, 0
        with self._known_folder():
            for depth, part in enumerate(parts):
                try:
                    items = await vfolders.list_files(self.client, self.folder, here)
                except vfolders.NoSuchPathError:
                    raise self._missing(task, path) from None
                item = next((i for i in items if i.name == part), None)
                last = depth == len(parts) - 1
                if item is None or item.type.upper() != ("FILE" if last else "DIRECTORY"):
                    if item is not None and last and item.is_dir:
                        raise OutputNotFoundError(f"outputs/{path} of task '{task}' is a folder; give a file in it")
                    raise self._missing(task, path)
                here, size = f"{here}/{part}", item.size
        return size

    def _missing(self, task: str, path: str) -> OutputNotFoundError:
        return OutputNotFoundError(
            f"task '{task}' has no file outputs/{path} in {self.where}; `jobs outputs JOB {task}` lists them"
        )

    def _elsewhere(self, job_id: str | None) -> OutputNotFoundError:
        where = f"no folder of job {job_id} in {self.where}" if job_id else f"no pipeline data folder {self.folder}"
        return OutputNotFoundError(
            f"Backend.AI has {where}: the job did not run on this cluster (give --executor local for a job run on "
            "this machine)"
        )

    @contextlib.contextmanager
    def _known_folder(self):
        try:
            yield
        except vfolders.NoSuchVFolderError:
            raise self._elsewhere(None) from None
