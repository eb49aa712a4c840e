"""The task cache as one job's runner uses it: keys as dependencies end, reuse before a task starts, entries after.

The runner asks three things (engine/runner.py):

- `reuse(task)` before it starts a task: when the task's cache is on and every
  dependency's outputs digest is known, its key is looked up; a hit makes the
  earlier outputs this job's (CacheIndex.reuse) and the task is REUSED, a miss
  says why the task runs;
- `finished(task)` after an attempt succeeded, before the task is marked
  succeeded (so no dependant is decided without its digest): the outputs'
  manifest is read, its digest kept for the dependants' keys, and for a cached
  task the entry recorded;
- `input_jobs(task)`: the job whose folder holds each dependency's outputs.

The cache never fails a task: an index that cannot be read or written, or
outputs that cannot be cached (a symlink), is a warning on the task and the
task runs (or stays succeeded) as if it had no cache. Everything it decides is
recorded per task (`Store.set_task_cache`, shown by `jobs show --cache`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fasttrack_gitops.core import cache
from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import SKIP_REQUESTED, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.engine.cache import CacheIndex, Entry, Hit
from fasttrack_gitops.engine.cache.keys import JobKeys
from fasttrack_gitops.engine.state.store import Store

NO_CACHE_TRIGGER = "no_cache"  # a job whose trigger says so reuses nothing (it still records what it makes)
NO_EARLIER_RUN = "no earlier run with this key"

# What an index raises when its storage fails (a full disk, the manager answering 500: a BackendAIError is a
# FastTrackError): a warning on the task, never its failure.
INDEX_ERRORS = (OSError, ValueError, FastTrackError)


class JobCache:
    """One job's view of the task cache; `tasks` is the runner's live mapping of task instances."""

    def __init__(
        self,
        job: PipelineJob,
        store: Store,
        keys: JobKeys,
        index: CacheIndex,
        tasks: Callable[[], Mapping[str, TaskInstance]],
    ):
        self.job = job
        self.store = store
        self.keys = keys
        self.index = index
        self.tasks = tasks
        self.pipeline = keys.pipeline
        self.reuse_allowed = not job.trigger.get(NO_CACHE_TRIGGER)
        self._digests: dict[str, str] = {}
        self._ingredients: dict[str, dict[str, Any]] = {}
        self._decisions: dict[str, str] = {}  # why each task ran, kept when its digest is recorded
        dependants: dict[str, list[str]] = {t.name: [] for t in self.pipeline.tasks}
        for t in self.pipeline.tasks:
            for dependency in t.dependencies:
                dependants[dependency].append(t.name)
        # A task's outputs are digested when it is cached, or a cached task depends on it.
        self._digested = {
            t.name
            for t in self.pipeline.tasks
            if t.cache or any(self.pipeline.task(d).cache for d in dependants[t.name])
        }

    def wants_manifest(self, task: str) -> bool:
        """Whether the task's outputs are digested after it succeeds (a remote executor writes the manifest)."""
        return task in self._digested

    def input_jobs(self, task: str) -> tuple[str, ...]:
        """The job whose folder holds each dependency's outputs, in input order."""
        tasks = self.tasks()
        return tuple(tasks[d].reused_from or self.job.id for d in self.pipeline.task(task).dependencies)

    async def reuse(self, task: str) -> Entry | None:
        """The entry whose outputs now stand in for the task's in this job, or None: the task runs (and why is
        recorded)."""
        spec = self.pipeline.task(task)
        if not spec.cache:
            return None
        for warning in self.keys.warnings_by_task.get(task, ()):
            self._warn(task, warning)
        missing = next((d for d in spec.dependencies if self._digest(d) is None), None)
        if missing is not None:
            self._decided(task, None, {}, f"run: the outputs of input '{missing}' have no digest, so no key")
            return None
        ingredients = self.keys.ingredients(task, {d: self._digest(d) or "" for d in spec.dependencies})
        assert ingredients is not None  # every digest is known
        key = cache.cache_key(ingredients)
        self._ingredients[task] = ingredients
        if not self.reuse_allowed:
            self._decided(task, key, ingredients, "run: --no-cache")
            return None
        try:
            found = await self.index.lookup(key)
        except INDEX_ERRORS as e:
            self._warn(task, f"the task cache could not be read ({e}); the task runs")
            self._decided(task, key, ingredients, "run: the cache could not be read")
            return None
        if not isinstance(found, Hit):
            if found.warning:
                self._warn(task, found.reason)
            self._decided(task, key, ingredients, f"run: {await self._why_run(task, found.reason, ingredients)}")
            return None
        entry = found.entry
        try:
            await self.index.reuse(entry, self.job.id)
        except INDEX_ERRORS as e:
            self._warn(task, f"the outputs of job {entry.job} could not be reused ({e}); the task runs")
            self._decided(task, key, ingredients, "run: the cached outputs could not be reused")
            return None
        self._digests[task] = entry.digest
        self._decided(task, key, ingredients, f"reuse: {describe(entry)}", digest=entry.digest)
        return entry

    async def finished(self, task: str) -> None:
        """After a successful attempt: digest the outputs (when needed) and record the entry of a cached task."""
        if task not in self._digested:
            return
        try:
            files = await self.index.outputs(self.job.id, task)
        except cache.ManifestError as e:
            self._warn(task, f"{e}; its outputs are not cached and its dependants run")
            return
        except INDEX_ERRORS as e:
            self._warn(task, f"the outputs could not be digested ({e}); they are not cached")
            return
        digest = cache.outputs_digest(files)
        self._digests[task] = digest
        ingredients = self._ingredients.get(task)
        key = cache.cache_key(ingredients) if ingredients is not None else None
        decision = self._decisions.get(task, "run: cache off for this task (outputs digested for its dependants)")
        self.store.set_task_cache(
            self.job.id, task, key=key, ingredients=ingredients or {}, decision=decision, digest=digest
        )
        if key is None or ingredients is None:
            return
        entry = Entry(key, self.job.id, task, self.job.pipeline, self.job.commit, time.time(), ingredients, files)
        try:
            await self.index.record(entry)
        except INDEX_ERRORS as e:
            self._warn(task, f"the cache entry could not be written in {self.index.where} ({e})")

    def _digest(self, task: str) -> str | None:
        """The digest of a finished task's outputs: digested in this job, reused, or `skip: true` (empty)."""
        if task in self._digests:
            return self._digests[task]
        instance = self.tasks()[task]
        if instance.state == TaskState.SKIPPED and instance.reason == SKIP_REQUESTED:
            return cache.EMPTY_OUTPUTS
        # Reused by a failed-only re-run, or digested by a runner this one took over from: recorded in the store.
        for job_id in filter(None, (instance.reused_from, self.job.id)):
            recorded = self.store.task_cache(job_id).get(task, {}).get("digest")
            if recorded:
                self._digests[task] = recorded
                return str(recorded)
        return None

    async def _why_run(self, task: str, reason: str, ingredients: Mapping[str, Any]) -> str:
        return await why_run(self.index, task, reason, ingredients)

    def _decided(
        self, task: str, key: str | None, ingredients: Mapping[str, Any], decision: str, digest: str | None = None
    ) -> None:
        self._decisions[task] = decision
        self.store.set_task_cache(self.job.id, task, key=key, ingredients=ingredients, decision=decision, digest=digest)

    def _warn(self, task: str, message: str) -> None:
        self.store.add_event(self.job.id, "task.warning", task=task, data={"message": message})


async def why_run(index: CacheIndex, task: str, reason: str, ingredients: Mapping[str, Any]) -> str:
    """A miss in words: what changed since the task's latest entry, when there is one to compare with (the runner
    and `plan` say it alike)."""
    if reason != NO_EARLIER_RUN:
        return reason
    try:
        latest = await index.latest(task)
    except INDEX_ERRORS:
        latest = None
    return miss_reason(latest, ingredients)


def miss_reason(latest: Entry | None, ingredients: Mapping[str, Any]) -> str:
    """Why a key that has no entry misses: what changed since the task's latest entry, else NO_EARLIER_RUN."""
    changed = cache.changes(latest.ingredients, ingredients) if latest is not None else []
    return "; ".join(changed) if changed else NO_EARLIER_RUN


def without_reuse(job: PipelineJob) -> PipelineJob:
    """The job (not stored yet), marked to reuse nothing: `--no-cache`. The mark is part of its trigger, so the
    record says why every task ran."""
    return replace(job, trigger={**job.trigger, NO_CACHE_TRIGGER: True})


def describe(entry: Entry) -> str:
    """'reused from job 20261202-101530-3fa9c1 (commit 3f2a1c0)'."""
    commit = f" (commit {entry.commit[:7]})" if entry.commit else ""
    return f"reused from job {entry.job}{commit}"
