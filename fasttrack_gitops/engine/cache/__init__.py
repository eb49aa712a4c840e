"""The task cache: entries that map a cache key to the outputs of the task instance that made them.

core/cache.py says what a key is made of and what a manifest is; this package
keeps entries and finds them again. Where they live follows where outputs
live, so one cache serves everyone who shares those outputs:

- `local.LocalCacheIndex`: under the state folder, next to the jobs' data
  folders (`<state dir>/cache/<folder name>/`);
- `executors/backendai/cache.BackendAICacheIndex`: in the pipeline's data
  folder on Backend.AI (`cache/` beside `jobs/`), so a daemon, an Action
  runner and a laptop that use one cluster share one cache.

Both keep the same files, named by datafolder.py: `entries/<key>.json` (one
`Entry`, written whole under a temporary name and renamed into place, so a
reader sees a complete entry or none; a valid entry is never replaced: the
first complete writer wins) and `latest/<task>.json` (the newest entry recorded
for that task name: what `plan` compares a new key with to say why it differs).

An executor names its index (`Executor.cache_index`); the runner and `plan`
use only the `CacheIndex` protocol below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fasttrack_gitops.core.cache import ManifestError, OutputFile, manifest_text, outputs_digest, parse_manifest

ENTRY_VERSION = 1


class EntryError(ValueError):
    """An index file that is not a complete, consistent entry (the message says what is wrong)."""


@dataclass(frozen=True)
class Entry:
    """A cache key's outputs: which task instance made them, what went into the key, and the files."""

    key: str
    job: str  # the job whose data folder holds the outputs
    task: str
    pipeline: str
    commit: str | None
    created_at: float
    ingredients: Mapping[str, Any]  # core.cache.ingredients(...)
    files: tuple[OutputFile, ...]
    local: Mapping[str, Any] = field(default_factory=dict)  # what only one index needs (stat signatures)

    @property
    def digest(self) -> str:
        """The outputs' digest (core.cache.outputs_digest): what dependants' keys are made of."""
        return outputs_digest(self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": ENTRY_VERSION,
                "key": self.key,
                "job": self.job,
                "task": self.task,
                "pipeline": self.pipeline,
                "commit": self.commit,
                "created_at": self.created_at,
                "ingredients": self.ingredients,
                "manifest": manifest_text(self.files),
                "digest": self.digest,
                "local": self.local,
            },
            sort_keys=True,
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes, *, key: str | None, what: str) -> Entry:
        """The entry an index file holds; EntryError saying what is wrong (truncated, another key, a manifest
        that does not match its digest). `key`: the key its name says it holds (None: any)."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise EntryError(f"{what} is not complete JSON ({e})") from None
        if not isinstance(raw, dict) or raw.get("version") != ENTRY_VERSION:
            raise EntryError(f"{what} is not a version {ENTRY_VERSION} cache entry")
        try:
            entry = cls(
                key=_text(raw, "key"),
                job=_text(raw, "job"),
                task=_text(raw, "task"),
                pipeline=_text(raw, "pipeline"),
                commit=raw.get("commit"),
                created_at=float(raw["created_at"]),
                ingredients=dict(raw["ingredients"]),
                files=parse_manifest(_text(raw, "manifest"), what=f"{what}: manifest"),
                local=dict(raw.get("local") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ManifestError):
                raise EntryError(str(e)) from None
            raise EntryError(f"{what} lacks a field or has a wrong one ({e})") from None
        if key is not None and entry.key != key:
            raise EntryError(f"{what} holds key {entry.key[:12]}, not {key[:12]}")
        if raw.get("digest") != entry.digest:
            raise EntryError(f"{what}: its manifest does not match its digest")
        return entry


@dataclass(frozen=True)
class Hit:
    entry: Entry


@dataclass(frozen=True)
class Miss:
    reason: str  # in plain words: "no earlier run with this key", "the outputs of job X were deleted", ...
    warning: bool = False  # the index held something broken (a corrupted entry, changed outputs): say it loudly


class CacheIndex(Protocol):
    """Entries for one (repository, pipeline): found, recorded, and their outputs made this job's."""

    where: str  # for messages: "the state folder's cache" or "the pipeline data folder ftg-..."

    async def lookup(self, key: str) -> Hit | Miss:
        """Hit when an entry exists, parses, and its outputs are still there as its manifest says; else why not."""
        ...

    async def latest(self, task: str) -> Entry | None:
        """The newest entry recorded for a task of this name (for saying why a key differs); None when none
        is, or it cannot be read."""
        ...

    async def outputs(self, job_id: str, task: str) -> tuple[OutputFile, ...]:
        """The manifest of a task instance's outputs once it succeeded; ManifestError naming the file when they
        cannot be cached (a symlink, a FIFO or another special file, a name with a newline)."""
        ...

    async def record(self, entry: Entry) -> Entry:
        """Keep the entry unless a valid one holds its key already (the first complete writer wins); the entry
        that stands. `latest(entry.task)` then names it."""
        ...

    async def reuse(self, entry: Entry, job_id: str) -> None:
        """Make the entry's outputs those of `entry.task` in job `job_id`, for its dependants to read, without a
        deep copy (locally: read-only hard links; on Backend.AI: nothing, dependants mount the entry's job)."""
        ...


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value
