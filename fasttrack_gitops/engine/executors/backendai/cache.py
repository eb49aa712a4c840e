"""The task cache in the pipeline data folder on Backend.AI: the `CacheIndex` of the `backendai` executor.

The outputs a cache entry points at are in the pipeline's vfolder already
(`jobs/<job>/tasks/<task>/outputs`), so the entries live there too, under
`cache/` (datafolder.CACHE_IN_FOLDER) beside `jobs/`: a daemon, an Action
runner and a laptop that use one cluster share one cache, and nothing is
copied to reuse outputs (a dependant's session mounts the earlier job's
folder, layout.py). In `cache/`:

    entries/<key>.json   one Entry; a reader sees a complete one or none
    latest/<task>.json   the newest entry recorded for that task name (for `plan`'s "what changed")
    tmp/<random>.json    entries being written
    locks/<key>/         held while an entry is judged and placed

Every file is uploaded whole under `tmp/` and moved into place [move-file:
one rename on the storage volume]. The manager has no "create if absent",
so the check-and-move for a key is guarded by a lock: a directory made with
mkdir exist_ok=false, which fails while another writer holds it. A valid
entry is never replaced (the first complete writer wins); a damaged one is.
A writer that dies holding the lock leaves it behind: a waiter that sees the
same lock (its listed modification time) for `stale_after` seconds of its own
clock, so the manager's clock does not matter, removes it and takes the lock;
one that cannot take it in GIVE_UP times that long stops with an error.
Two waiters taking over one stale lock at once could both place an entry;
each then returns what it reads back, so both return the entry that stands,
and it is always complete.

A lookup checks that the entry's outputs are still there as its manifest
says, by listing them: paths, kinds and sizes. The bytes are not read again
(that would mean downloading them); a job's outputs are not written after it
ended, and a session that changed another job's outputs in place is outside
what the cache vouches for. Outputs deleted by a retention sweep are an
ordinary miss (no warning: deleting old jobs is housekeeping); outputs that
differ from their manifest are a miss with a warning.

The manifest of a task's outputs is written by its session (layout.py);
`outputs` reads it. The manager's errors (BackendAIError) propagate: the
runner turns them into warnings (engine/cache/job_cache.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping

from fasttrack_gitops.core.cache import ManifestError, OutputFile, parse_manifest
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import errors, vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.vfolder_tree import walk
from fasttrack_gitops.engine.cache import Entry, EntryError, Hit, Miss
from fasttrack_gitops.engine.cache.job_cache import NO_EARLIER_RUN

log = logging.getLogger("fasttrack_gitops.engine.backendai")

CACHE = datafolder.CACHE_IN_FOLDER
NOT_CACHED = "; the outputs are not cached"  # how the session's `!` line ends (layout.py)
LISTINGS_AT_ONCE = 8  # folder listings in flight while an entry's outputs are checked
GIVE_UP = 3  # times stale_after: a writer that cannot take a lock in that long stops (the runner warns)


class BackendAICacheIndex:
    """The cache of one (repository, pipeline) in its pipeline data folder (CacheIndex, engine/cache/__init__.py)."""

    def __init__(self, client: Client, folder: str, *, stale_after: float = 60.0, poll: float = 0.2) -> None:
        """`folder`: the pipeline data folder's name (datafolder.folder_name); a lock held for `stale_after`
        seconds is taken over; a held lock is looked at again every `poll` seconds."""
        self.client, self.folder = client, folder
        self.stale_after, self.poll = stale_after, poll
        self.where = f"the task cache in the Backend.AI pipeline data folder {folder}"
        self._folders_made = False

    # -- CacheIndex

    async def lookup(self, key: str) -> Hit | Miss:
        path = f"{CACHE}/{datafolder.cache_entry(key)}"
        data = await self._read(path)
        if data is None:
            return Miss(NO_EARLIER_RUN)
        try:
            entry = _parse(data, key)
        except EntryError as e:
            return Miss(
                f"the cache entry {path} in {self.folder} is damaged ({e}); the task runs again and its entry is "
                "replaced",
                warning=True,
            )
        return await self._check(entry) or Hit(entry)

    async def latest(self, task: str) -> Entry | None:
        try:
            data = await self._read(f"{CACHE}/{datafolder.cache_latest(task)}")
            entry = _parse(data, None) if data is not None else None
        except (ValueError, EntryError):  # damaged, or a task name no file can have
            return None
        return entry if entry is not None and entry.task == task else None

    async def outputs(self, job_id: str, task: str) -> tuple[OutputFile, ...]:
        path = f"{datafolder.job_in_folder(job_id)}/{datafolder.task_manifest(datafolder.component(task, 'task'))}"
        data = await self._read(path)
        if data is None:
            raise ManifestError(
                f"task '{task}' of job {job_id} left no manifest of its outputs ({path} in {self.folder}): its "
                "session did not write one"
            )
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise ManifestError(f"the outputs of task '{task}' hold a name that is not UTF-8; rename it") from None
        if text.startswith("!"):  # the session found outputs that cannot be cached; the reason is one line
            reason = text[1:].split("\n", 1)[0].strip().removesuffix(NOT_CACHED)
            raise ManifestError(f"the outputs of task '{task}' cannot be cached: {reason}")
        return parse_manifest(text, what=f"the manifest of task '{task}' in job {job_id}")

    async def record(self, entry: Entry) -> Entry:
        final = f"{CACHE}/{datafolder.cache_entry(entry.key)}"
        await self._make_folders()
        temporary: str | None = await self._upload_temporary(entry.to_json())
        theirs: Entry | None = None
        try:
            async with self._locked(entry.key):
                theirs = await self._sound(final, entry.key)
                if theirs is None:  # the name is free, or holds a damaged entry: ours goes there
                    assert temporary is not None
                    await vfolders.move(self.client, self.folder, temporary, final)
                    temporary = None
        finally:
            if temporary is not None:
                await self._delete_quietly(temporary)
        standing = theirs or await self._read_back(final, entry)
        latest = await self._upload_temporary(standing.to_json())
        try:
            await vfolders.move(self.client, self.folder, latest, f"{CACHE}/{datafolder.cache_latest(entry.task)}")
        except BaseException:
            await self._delete_quietly(latest)
            raise
        return standing

    async def reuse(self, entry: Entry, job_id: str) -> None:
        """Nothing to do: the outputs stay in the job that made them, and a dependant's session mounts them from
        there (the runner names that job in AttemptSpec.input_jobs), so no byte is copied or linked."""
        return None

    # -- the entries and their outputs

    async def _check(self, entry: Entry) -> Miss | None:
        """None when the entry's outputs are there as its manifest says (paths, kinds, sizes); else the miss."""
        outputs = f"{datafolder.job_in_folder(entry.job)}/{datafolder.task_outputs(entry.task)}"
        try:
            present = await self._listing(outputs)
        except vfolders.NoSuchPathError:
            return Miss(f"the outputs of job {entry.job} were deleted")
        why = _difference(entry.files, present)
        if why is None:
            return None
        return Miss(f"the outputs of job {entry.job} no longer match their manifest ({why})", warning=True)

    async def _sound(self, path: str, key: str) -> Entry | None:
        """The entry at `path` when it parses and its outputs are as it says; None when missing or damaged."""
        data = await self._read(path)
        try:
            entry = _parse(data, key) if data is not None else None
        except EntryError:
            return None
        return entry if entry is not None and await self._check(entry) is None else None

    async def _read_back(self, path: str, mine: Entry) -> Entry:
        """The entry at `path` after ours was moved there: ours, unless a writer that took over the same stale
        lock moved its own after ours (then both return that one)."""
        data = await self._read(path)
        try:
            return _parse(data, mine.key) if data is not None else mine
        except EntryError:
            return mine

    async def _listing(self, top: str) -> dict[str, vfolders.FileEntry]:
        """Everything under `top` but folders: relative path -> its listing; NoSuchPathError when `top` is gone."""
        found = await walk(self.client, self.folder, top, at_once=LISTINGS_AT_ONCE)
        return {path: item for path, item in found.items() if not item.is_dir}

    # -- files in the folder

    async def _read(self, path: str) -> bytes | None:
        """The file's bytes; None when it (or the whole folder: no job ran there yet) does not exist."""
        try:
            return await vfolders.download(self.client, self.folder, path)
        except errors.NotFoundError:
            return None

    async def _make_folders(self) -> None:
        """entries/ and latest/, once per index: a move does not make the folders it moves into."""
        if not self._folders_made:
            for name in ("entries", "latest"):
                await vfolders.mkdir(self.client, self.folder, f"{CACHE}/{name}")
            self._folders_made = True

    async def _upload_temporary(self, data: bytes) -> str:
        """`data` whole under a new name in cache/tmp/ (the storage proxy makes the folder); that name."""
        path = f"{CACHE}/tmp/{uuid.uuid4().hex}.json"
        try:
            await vfolders.upload(self.client, self.folder, path, data)
        except BaseException:
            await self._delete_quietly(path)
            raise
        return path

    async def _delete_quietly(self, path: str) -> None:
        """Remove a temporary file or a lock; one left behind only costs space (or, for a lock, a wait)."""
        with contextlib.suppress(errors.BackendAIError):
            await vfolders.delete_files(self.client, self.folder, [path], recursive=True)

    # -- the lock that guards placing an entry

    @contextlib.asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        lock = f"{CACHE}/locks/{datafolder.component(key, 'cache key')}"
        loop = asyncio.get_running_loop()
        seen: str | None = None  # the holder's lock as first seen (its listed modification time)
        since = started = loop.time()  # when we first saw it, and began to wait, by our clock
        while True:
            try:
                await vfolders.mkdir(self.client, self.folder, lock, exist_ok=False)
                break
            except vfolders.PathExistsError:
                pass
            if loop.time() - started > GIVE_UP * self.stale_after:  # a folder we cannot make sense of: stop
                raise errors.BackendAIError(
                    f"the cache lock {lock} in vfolder {self.folder} could not be taken in "
                    f"{GIVE_UP * self.stale_after:g}s"
                )
            held = await self._lock_stamp(key)
            if held is None:  # released meanwhile: try again after a pause
                seen = None
                await asyncio.sleep(self.poll)
                continue
            if held != seen:
                seen, since = held, loop.time()
            elif loop.time() - since >= self.stale_after:
                log.warning(
                    "the cache lock %s in vfolder %s was held for %ss without change; a writer died holding it: "
                    "taking it over",
                    lock,
                    self.folder,
                    f"{self.stale_after:g}",
                )
                if await self._lock_stamp(key) == seen:  # not taken over by another waiter just now
                    await self._delete_quietly(lock)
                seen = None
                continue
            await asyncio.sleep(self.poll)
        try:
            yield
        finally:
            await self._delete_quietly(lock)

    async def _lock_stamp(self, key: str) -> str | None:
        """The lock of `key` as the folder lists it (its modification time, '' when none is given); None when
        no one holds it."""
        try:
            items = await vfolders.list_files(self.client, self.folder, f"{CACHE}/locks")
        except vfolders.NoSuchPathError:
            return None
        return next((item.modified or "" for item in items if item.name == key), None)


def _parse(data: bytes, key: str | None) -> Entry:
    """An entry whose job and task can name folders: a damaged file must not send a lookup elsewhere."""
    entry = Entry.from_json(data, key=key, what="the file")
    try:
        datafolder.job_in_folder(entry.job)
        datafolder.component(entry.task, "task")
    except ValueError as e:
        raise EntryError(f"the file names no job's folder ({e})") from None
    return entry


def _difference(files: tuple[OutputFile, ...], present: Mapping[str, vfolders.FileEntry]) -> str | None:
    """The first way the listed outputs differ from the manifest's files, in plain words; None when they agree."""
    left = dict(present)
    for f in files:
        item = left.pop(f.path, None)
        if item is None:
            return f"{f.path} is missing"
        if item.type.upper() != "FILE":
            return f"{f.path} is a {item.type.lower() or 'special file'} now"
        if item.size != f.size:
            return f"{f.path} changed ({f.size} bytes in the manifest, {item.size} now)"
    if left:
        return f"{min(left)} is not in the manifest"
    return None
