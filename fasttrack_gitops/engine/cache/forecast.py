"""`plan`'s questions to the task cache: what a job would reuse, and why the rest runs, without running anything.

The answers go to core/forecast.py, which applies the runner's rules to them.
Keys are computed as the runner computes them (keys.py): walking the DAG,
a task's key is known when each input's outputs digest is: a reused input's
is its entry's digest, a `skip: true` input's the empty folder's. A task
with an input that will run is not looked up (its key waits for that
input's outputs); only whether the cache has any entry of its name is
asked, to say whether early cutoff could still reuse it (and only when an
input has one: before any run, 1,000 tasks cost a few questions, not 1,000).

Nothing here writes: no entry is recorded and no outputs are linked
(`CacheIndex.lookup` and `latest` only). An index that cannot be read makes
the task run in the forecast, as it would in the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fasttrack_gitops.core import cache
from fasttrack_gitops.core.forecast import Cached, Forecast, forecast
from fasttrack_gitops.core.job import PipelineJob
from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.engine.cache import CacheIndex, Entry, Hit
from fasttrack_gitops.engine.cache.job_cache import INDEX_ERRORS, NO_EARLIER_RUN, describe, miss_reason
from fasttrack_gitops.engine.cache.keys import JobKeys, job_keys
from fasttrack_gitops.engine.executors.base import cache_index_of


async def forecast_job(
    job: PipelineJob,
    snapshot: object,
    index: CacheIndex,
    durations: Mapping[str, float],
    *,
    no_cache: bool = False,
) -> Forecast:
    """What running the job would do; `snapshot` is the gitrepo.Snapshot it was frozen from (for `cache.paths`),
    `durations` the past median seconds by task (Store.past_durations)."""
    if no_cache:
        return forecast(job.pipeline_model(), {}, durations, commit=job.commit, no_cache=True)
    keys = await asyncio.to_thread(job_keys, job, snapshot)
    cached, earlier = await _ask(keys, index)
    found = forecast(keys.pipeline, cached, durations, commit=job.commit, earlier=earlier)
    return replace(found, warnings=keys.warnings)


async def forecast_for(
    job: PipelineJob, snapshot: object, executor: Any, store: Any, *, no_cache: bool = False
) -> Forecast:
    """The forecast every shell shows (`plan`, the Action's plan mode, a queued job's check): the task cache of
    the executor that would run the job, the durations of its repository's earlier jobs of the pipeline."""
    durations = store.past_durations(job.pipeline, repository=job.repository)
    index = cache_index_of(executor, job, store.state_dir)
    return await forecast_job(job, snapshot, index, durations, no_cache=no_cache)


async def _ask(keys: JobKeys, index: CacheIndex) -> tuple[dict[str, Cached], set[str]]:
    """The cache's answer for each task whose key is known, and the tasks waiting on an input that have an entry.

    A layer of the DAG at a time, its questions asked together: a task's key needs only earlier layers' answers.
    Whether a waiting task has an entry is asked only when one of its inputs has one (or is not cached, so
    has no history here): a task that ran before ran with its inputs, so before any run nothing is asked twice.
    """
    pipeline = keys.pipeline
    by_name = {t.name: t for t in pipeline.tasks}
    digests: dict[str, str] = {}
    cached: dict[str, Cached] = {}
    seen: set[str] = set()  # tasks the cache has an entry of (any key)
    for layer in dag.layers(pipeline.graph):
        asked: dict[str, dict[str, Any]] = {}
        waiting: list[str] = []
        for name in layer:
            task = by_name[name]
            if task.skip:
                digests[name] = cache.EMPTY_OUTPUTS  # as the runner: a skipped task's outputs are an empty folder
            elif task.cache:
                ingredients = keys.ingredients(name, digests)
                if ingredients is not None:
                    asked[name] = ingredients
                elif any(d in seen or not by_name[d].cache for d in task.dependencies):
                    waiting.append(name)  # an input will run: its outputs, so this key, are not known yet
        answers, entries = await asyncio.gather(
            asyncio.gather(*(_answer(index, name, parts) for name, parts in asked.items())),
            asyncio.gather(*(_latest(index, name) for name in waiting)),
        )
        for name, (answer, digest, earlier) in zip(asked, answers):
            cached[name] = answer
            if digest is not None:
                digests[name] = digest
            if earlier:
                seen.add(name)
        seen.update(name for name, entry in zip(waiting, entries) if entry is not None)
    return cached, seen


async def _answer(index: CacheIndex, task: str, ingredients: dict[str, Any]) -> tuple[Cached, str | None, bool]:
    """The cache's answer for one task, the outputs digest its dependants' keys take when it is reused, and
    whether the cache has any entry of it."""
    try:
        found = await index.lookup(cache.cache_key(ingredients))
    except INDEX_ERRORS as e:
        return Cached(None, f"the task cache could not be read ({e})"), None, False
    if isinstance(found, Hit):
        return Cached(found.entry.job, describe(found.entry)), found.entry.digest, True
    if found.reason != NO_EARLIER_RUN:
        return Cached(None, found.reason), None, True
    latest = await _latest(index, task)
    return Cached(None, miss_reason(latest, ingredients)), None, latest is not None


async def _latest(index: CacheIndex, task: str) -> Entry | None:
    try:
        return await index.latest(task)
    except INDEX_ERRORS:
        return None


def base_changes(
    job: PipelineJob, snapshot: object, base: PipelineJob, base_snapshot: object
) -> dict[str, tuple[str, ...]]:
    """Task -> what of its key's ingredients differs between the base job and this one (`plan --base`), inputs'
    outputs left out (they are not known before a run). Blocking (it reads git objects): call it in a thread."""
    new, old = job_keys(job, snapshot), job_keys(base, base_snapshot)
    new_digests = {t.name: "" for t in new.pipeline.tasks}
    old_digests = {t.name: "" for t in old.pipeline.tasks}
    changed: dict[str, tuple[str, ...]] = {}
    for task in new.pipeline.tasks:
        if task.name not in old_digests:
            changed[task.name] = ("a new task",)
            continue
        before = old.ingredients(task.name, old_digests)
        after = new.ingredients(task.name, new_digests)
        assert before is not None and after is not None  # every digest is given
        changed[task.name] = tuple(cache.changes(before, after))
    return changed
