"""The task cache on this machine: entries under the state folder, outputs in the jobs' data folders.

An entry points at the outputs folder of the job that made them
(`<state dir>/data/<job>/tasks/<task>/outputs`); nothing is copied into the
cache. Recording makes those files read-only, because a job that reuses them
gets hard links to the same inodes: a dependant that wrote to its input in
place would otherwise change the cached outputs of every later job.

Writers never corrupt an entry: each writes its entry whole under a unique
temporary name, fsyncs it, and hard-links it to `entries/<key>.json`, which
fails when the name exists, so the first complete writer wins and a reader
sees a complete entry or none. Only a damaged entry (one that does not parse,
or whose outputs no longer match it) is replaced, under a lock, so two writers
that both find it damaged agree on the one that stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from fasttrack_gitops.core.cache import OutputFile
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.cache import Entry, EntryError, Hit, Miss
from fasttrack_gitops.engine.cache import manifest as outputs_manifest

log = logging.getLogger(__name__)

# Why os.link can fail where a copy works: another file system, one without hard links, a file the kernel's
# protected_hardlinks keeps us from linking, too many links to one inode.
_NO_HARD_LINKS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
_LOCK = ".replace.lock"  # in entries/: held while a damaged entry is judged and replaced


class LocalCacheIndex:
    """The cache of one (repository, pipeline) under the state folder (CacheIndex, engine/cache/__init__.py)."""

    def __init__(self, state_dir: Path, repository: str, pipeline: str) -> None:
        self.state_dir = state_dir
        self.folder = datafolder.cache_folder(state_dir, repository, pipeline)
        self.where = f"the task cache in {self.folder}"

    # -- CacheIndex

    async def lookup(self, key: str) -> Hit | Miss:
        return await asyncio.to_thread(self._lookup, key)

    async def latest(self, task: str) -> Entry | None:
        return await asyncio.to_thread(self._latest, task)

    async def outputs(self, job_id: str, task: str) -> tuple[OutputFile, ...]:
        return await asyncio.to_thread(outputs_manifest.scan, self._outputs(job_id, task), task=task)

    async def record(self, entry: Entry) -> Entry:
        return await asyncio.to_thread(self._record, entry)

    async def reuse(self, entry: Entry, job_id: str) -> None:
        await asyncio.to_thread(self._reuse, entry, job_id)

    # -- the work, in a worker thread

    def _lookup(self, key: str) -> Hit | Miss:
        path = self.folder / datafolder.cache_entry(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Miss("no earlier run with this key")
        except OSError as e:
            return _damaged(path, f"it cannot be read: {e.strerror}")
        try:
            entry = self._parse(data, key)
        except EntryError as e:
            return _damaged(path, str(e))
        outputs = self._outputs(entry.job, entry.task)
        if not outputs.is_dir():
            return Miss(f"the outputs of job {entry.job} were deleted")
        reason = self._verify(entry)
        if reason is not None:
            return Miss(f"the outputs of job {entry.job} no longer match their manifest ({reason})", warning=True)
        return Hit(entry)

    def _latest(self, task: str) -> Entry | None:
        try:
            entry = self._parse((self.folder / datafolder.cache_latest(task)).read_bytes(), None)
        except (OSError, ValueError):  # missing, unreadable, damaged (EntryError), a name no folder can have
            return None
        return entry if entry.task == task else None

    def _record(self, entry: Entry) -> Entry:
        outputs = self._outputs(entry.job, entry.task)
        try:
            signatures = _seal(outputs, entry.files)
        except OSError as e:
            raise _failed(f"the outputs of task '{entry.task}' in job {entry.job} cannot be made read-only", e) from e
        mine = replace(entry, local={**entry.local, "signatures": signatures})
        entries = self.folder / "entries"
        final = self.folder / datafolder.cache_entry(entry.key)
        try:
            entries.mkdir(parents=True, exist_ok=True)
            temporary = _write_temporary(entries, mine.to_json())
            try:
                standing = self._place(temporary, final, mine)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            _fsync_folder(entries)
            latest = self.folder / datafolder.cache_latest(entry.task)
            latest.parent.mkdir(parents=True, exist_ok=True)
            temporary = _write_temporary(latest.parent, standing.to_json())
            try:
                os.replace(temporary, latest)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            _fsync_folder(latest.parent)
        except OSError as e:
            raise _failed(f"{self.where} cannot be written", e) from e
        return standing

    def _place(self, temporary: Path, final: Path, mine: Entry) -> Entry:
        """The entry that stands at `final`: `mine` when the name was free or held a damaged entry. The temporary
        file is gone when it returns (linked and unlinked, dropped, or renamed into place)."""
        try:
            os.link(temporary, final)
            temporary.unlink()
            return mine
        except FileExistsError:
            pass
        # Another writer was first, or a damaged entry is in the way. Judged under a lock, so that two writers
        # that both find it damaged do not both replace it and return different entries.
        with _locked(final.parent / _LOCK):
            theirs = self._sound(final, mine.key)
            if theirs is not None:
                temporary.unlink()
                return theirs
            os.replace(temporary, final)
            return mine

    def _sound(self, path: Path, key: str) -> Entry | None:
        """The entry at `path` when it parses and its outputs are as it says; None when it is damaged."""
        try:
            entry = self._parse(path.read_bytes(), key)
        except (OSError, EntryError):
            return None
        return entry if self._verify(entry) is None else None

    def _reuse(self, entry: Entry, job_id: str) -> None:
        source = self._outputs(entry.job, entry.task)
        target = self._outputs(job_id, entry.task)
        if source == target:  # the job's own outputs: already where they belong
            return
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():  # a retry: what an earlier attempt left goes
            shutil.rmtree(target)
        target.mkdir(parents=True)
        copying = False
        for number, f in enumerate(entry.files):
            src, dst = source / f.path, target / f.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not copying:
                try:
                    os.link(src, dst, follow_symlinks=False)
                    continue
                except OSError as e:
                    if e.errno not in _NO_HARD_LINKS:
                        raise
                    copying = True
                    rest = sum(g.size for g in entry.files[number:])
                    log.warning(
                        "task '%s' reuses the outputs of job %s by copying %s bytes into job %s: hard links from "
                        "%s to %s are impossible (%s); keep the state folder on one file system that has hard "
                        "links to reuse outputs without copying them",
                        entry.task,
                        entry.job,
                        f"{rest:,}",
                        job_id,
                        source,
                        target,
                        e.strerror,
                    )
            shutil.copyfile(src, dst, follow_symlinks=False)
            _read_only(dst)

    # -- helpers

    def _outputs(self, job_id: str, task: str) -> Path:
        job = datafolder.component(job_id, "job id")
        return datafolder.outputs_folder(datafolder.job_folder(self.state_dir, job), datafolder.component(task, "task"))

    def _parse(self, data: bytes, key: str | None) -> Entry:
        """An entry whose job and task can name folders: a damaged file must not send lookups outside the
        state folder (a job id of '../..')."""
        entry = Entry.from_json(data, key=key, what="the file")
        try:
            self._outputs(entry.job, entry.task)
        except ValueError as e:
            raise EntryError(f"the file names no job's folder ({e})") from None
        return entry

    def _verify(self, entry: Entry) -> str | None:
        signatures = entry.local.get("signatures")
        return outputs_manifest.verify(
            self._outputs(entry.job, entry.task),
            entry.files,
            signatures if isinstance(signatures, dict) else {},
        )


def _damaged(path: Path, why: str) -> Miss:
    return Miss(
        f"the cache entry {path} is damaged ({why}); the task runs again and its entry is replaced", warning=True
    )


def _seal(outputs: Path, files: tuple[OutputFile, ...]) -> dict[str, list[int]]:
    """Make the outputs' files read-only and return their signatures (path -> [size, mtime_ns, inode]).

    A file whose size is no longer the manifest's gets no signature: verify() then hashes it, and the entry misses
    rather than vouching for content it never saw.
    """
    signatures: dict[str, list[int]] = {}
    for f in files:
        path = outputs / f.path
        if not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        _read_only(path)
        found = outputs_manifest.signature(path)
        if found[0] == f.size:
            signatures[f.path] = found
    return signatures


def _read_only(path: Path) -> None:
    """chmod a-w on a regular file (the caller checked it is not a link: chmod would follow one)."""
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o222:
        os.chmod(path, mode & ~0o222)


def _write_temporary(folder: Path, data: bytes) -> Path:
    """`data` in a new file of a unique name in `folder`, flushed to disk: it is complete before it gets its name."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o644)  # mkstemp's 0600 would hide the entry from other users of a shared state folder
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _fsync_folder(folder: Path) -> None:
    """Make a new name in `folder` durable: after a crash an entry is there whole or not at all."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _failed(what: str, e: OSError) -> OSError:
    """The OSError the runner turns into a warning: what could not be done, and the file and reason."""
    where = f": {e.filename}" if e.filename else ""
    return OSError(e.errno, f"{what} ({e.strerror or e}{where})")
