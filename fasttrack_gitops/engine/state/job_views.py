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
