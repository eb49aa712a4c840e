"""The plan of a newly queued job, for its check run: what will run, what will be reused, and why.

Worked out once, in the background, when the daemon stores a new job: the
check run says "queued" at once and shows the plan a moment later. It is kept
as the job's `job.plan` event (the Markdown section engine/cache/forecast.py
and core/reports/plan.py make), so every report of the job shows the same
plan, from any reporter and after a restart too; the report builder
(reports.py) puts it first while nothing has run, folded under the task table
after. A plan that cannot be made (the commit unreadable, the cache out of
reach) is logged and left out: it never holds a job back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fasttrack_gitops.core.reports.plan import headline, plan_markdown
from fasttrack_gitops.engine.cache.forecast import forecast_for
from fasttrack_gitops.engine.cache.job_cache import NO_CACHE_TRIGGER
from fasttrack_gitops.engine.executors.base import Executor
from fasttrack_gitops.engine.plan import snapshot_at
from fasttrack_gitops.engine.state.store import Store

PLAN_EVENT = "job.plan"  # data: {"markdown": the plan section, "headline": "will run 3 · reuse 7 of 10 tasks ..."}


async def plan_queued(job_id: str, store: Store, executor: Executor, find_repository: Callable[[str], Any]) -> bool:
    """Record the job's plan; False when it has none to show (an invalid file, a failed-only re-run, whose
    reused tasks are decided by the job it repeats, or a repository no longer configured)."""
    job = store.job(job_id)
    found = find_repository(job.repository)
    if job.invalid or job.trigger.get("failed_only") or found is None:
        return False
    snapshot = await asyncio.to_thread(snapshot_at, found[1], job.commit, job.ref)
    forecast = await forecast_for(job, snapshot, executor, store, no_cache=bool(job.trigger.get(NO_CACHE_TRIGGER)))
    store.add_event(job_id, PLAN_EVENT, data={"markdown": plan_markdown(forecast), "headline": headline(forecast)})
    return True
