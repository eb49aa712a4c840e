"""Stored jobs read as JobViews: their task instances, attempts and cancel requests now, and the status derived.

A batch of jobs is read in one snapshot (one read transaction, one query
per table for the whole batch), so a view never mixes two moments of a
runner's writes and `jobs` lists a page with a handful of queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from fasttrack_gitops.core.job import Attempt, JobStatus, JobView, PipelineJob, job_status
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.engine.state import runner_lock
from fasttrack_gitops.engine.state.migrations import reading
from fasttrack_gitops.engine.state.records import (
    ATTEMPT_COLUMNS,
    JOB_COLUMNS,
    TASK_INSTANCE_COLUMNS,
    attempt_from_row,
    task_instance_from_row,
)
from fasttrack_gitops.engine.state.state_folder import StateFolder


def read_views(
    cx: sqlite3.Connection,
    folder: StateFolder,
    jobs: list[PipelineJob],
    pipeline_of: Callable[[PipelineJob], Pipeline],
) -> list[JobView]:
    """Views of stored jobs, in their order; `pipeline_of` gives a job's pipeline model (for its status).

    Liveness is tested before the snapshot is read, so a runner that ends
    the job and exits in between is never mistaken for a dead one.
    """
    alive = [runner_lock.is_held(folder, job.id) for job in jobs]
    ids = [job.id for job in jobs]
    marks = ",".join("?" * len(ids))
    instances: dict[str, list[tuple]] = {i: [] for i in ids}
    attempts: dict[tuple[str, str], list[Attempt]] = {}
    with reading(cx):
        for job_id, *row in cx.execute(
            f"SELECT job_id, {TASK_INSTANCE_COLUMNS} FROM task_instances"
            f" WHERE job_id IN ({marks}) ORDER BY job_id, position",
            ids,
        ):
            instances[job_id].append(tuple(row))
        for job_id, task, *row in cx.execute(
            f"SELECT job_id, task, {ATTEMPT_COLUMNS} FROM attempts WHERE job_id IN ({marks}) ORDER BY job_id, task, number",
            ids,
        ):
            attempts.setdefault((job_id, task), []).append(attempt_from_row(row))
        cancelled = {r[0] for r in cx.execute(f"SELECT job_id FROM cancel_requests WHERE job_id IN ({marks})", ids)}
        queued = {
            r[0]
            for r in cx.execute(  # held by the daemon, not started yet
                f"SELECT job_id FROM queue WHERE job_id IN ({marks}) AND started_at IS NULL", ids
            )
        }
    views = []
    for job, runner_alive in zip(jobs, alive):
        tasks = {
            row[0]: task_instance_from_row(row, tuple(attempts.get((job.id, row[0]), ()))) for row in instances[job.id]
        }
        if job.invalid:
            views.append(JobView(job, tasks, JobStatus.INVALID, runner_alive, job.id in cancelled))
            continue
        status = job_status(pipeline_of(job), tasks, runner_alive=runner_alive, queued=job.id in queued)
        views.append(JobView(job, tasks, status, runner_alive, job.id in cancelled))
    return views


_PAGE = 50  # jobs per query when list_jobs filters by status

# The columns list_jobs may narrow by (the keys are its keyword arguments).
_FILTERS = {
    "pipeline": "pipeline",
    "repository": "repository",
    "ref": "ref",
    "event": "json_extract(trigger_json, '$.event')",
}


def list_views(
    cx: sqlite3.Connection,
    views: Callable[[list], list[JobView]],
    columns: dict[str, str | None],
    status: JobStatus | None,
    limit: int,
    offset: int,
) -> list[JobView]:
    """Store.list_jobs's query: the newest jobs first, narrowed by `columns` (the keys of _FILTERS) and status."""
    clauses = [f"{_FILTERS[k]} = ?" for k, v in columns.items() if v is not None]
    params: list = [v for v in columns.values() if v is not None]
    sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    query = f"SELECT {JOB_COLUMNS} FROM jobs {sql_where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    wanted = limit + offset if limit > 0 else None
    page = _PAGE if status is not None or wanted is None else wanted
    found: list[JobView] = []
    at = 0
    while wanted is None or len(found) < wanted:
        rows = cx.execute(query, (*params, page, at)).fetchall()
        found += [v for v in views(rows) if status is None or v.status == status]
        if len(rows) < page:
            break
        at += page
    return found[offset:wanted]
