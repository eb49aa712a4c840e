"""The store's records as rows: a pipeline job, an attempt, a task instance and an event, to and from SQLite's tuples. Pure.

The column lists here follow the tables of migrations.py; store.py and
job_views.py run the queries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fasttrack_gitops.core.job import Attempt, Outcome, PipelineJob, ServiceEndpoint, TaskInstance, TaskState
from fasttrack_gitops.engine.state.errors import JobRecordError

JOB_COLUMNS = (
    "id, pipeline, pipeline_path, repository, source, commit_id, ref, tree, code_trees_json,"
    " spec_json, spec_id, trigger_json, created_at, rerun_of, dirty, diagnostics_json"
)
# handle_json: the executor's handle, and for a deployment task the service it made ready (key "service")
ATTEMPT_COLUMNS = "number, started_at, ended_at, exit_code, outcome, message, handle_json"
TASK_INSTANCE_COLUMNS = "name, state, reason, next_attempt_at, reused_from"
EVENT_COLUMNS = "seq, job_id, at, kind, task, data_json"

_STATES = {s.value: s for s in TaskState}  # faster than TaskState(value), which shows in Store.view()
_OUTCOMES = {o.value: o for o in Outcome}


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's append-only event log (not a repository event: core/events.py)."""

    seq: int  # increases across the whole store
    job_id: str
    at: float
    kind: str  # "job.created", "task.running", "attempt.ended", ...
    task: str | None
    data: dict


def to_json(value: Mapping) -> str:
    """Compact JSON, as every *_json column holds it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def job_values(job: PipelineJob) -> tuple:
    """The values of JOB_COLUMNS for a job, in that order."""
    return (
        job.id,
        job.pipeline,
        job.pipeline_path,
        job.repository,
        job.source,
        job.commit,
        job.ref,
        job.tree,
        to_json(job.code_trees),
        to_json(job.spec),
        job.spec_id,
        to_json(job.trigger),
        job.created_at,
        job.rerun_of,
        int(job.dirty),
        json.dumps(list(job.diagnostics)),
    )


def job_from_row(row: sqlite3.Row | tuple) -> PipelineJob:
    """The job a row of JOB_COLUMNS holds."""
    (
        id_,
        pipeline,
        path,
        repository,
        source,
        commit,
        ref,
        tree,
        code_trees,
        spec,
        spec_id,
        trigger,
        created_at,
        rerun_of,
        dirty,
        diagnostics,
    ) = row
    return PipelineJob(
        id=id_,
        pipeline=pipeline,
        pipeline_path=path,
        repository=repository,
        source=source,
        commit=commit,
        ref=ref,
        tree=tree,
        code_trees=json.loads(code_trees),
        spec=json.loads(spec),
        spec_id=spec_id,
        trigger=json.loads(trigger),
        created_at=created_at,
        rerun_of=rerun_of,
        dirty=bool(dirty),
        diagnostics=tuple(json.loads(diagnostics)),
    )


def attempt_from_row(row: sqlite3.Row | tuple) -> Attempt:
    """The attempt a row of ATTEMPT_COLUMNS holds (no outcome while it runs)."""
    number, started, ended, exit_code, outcome, message, handle = row
    service = json.loads(handle).get("service") if handle and '"service"' in handle else None
    return Attempt(
        number,
        started,
        ended,
        exit_code,
        _OUTCOMES.get(outcome),
        message,
        ServiceEndpoint.from_dict(service) if isinstance(service, dict) else None,
    )


def task_instance_from_row(row: sqlite3.Row | tuple, attempts: tuple[Attempt, ...]) -> TaskInstance:
    """The task instance a row of TASK_INSTANCE_COLUMNS holds, with its attempts."""
    name, state, reason, next_attempt_at, reused_from = row
    return TaskInstance(name, _STATES[state], attempts, reason, next_attempt_at, reused_from)


def event_from_row(row: sqlite3.Row | tuple) -> JobEvent:
    """The event a row of EVENT_COLUMNS holds."""
    seq, job_id, at, kind, task, data = row
    return JobEvent(seq, job_id, at, kind, task, json.loads(data))


def resolve_job_id(cx: sqlite3.Connection, id_or_prefix: str, state_dir: Path) -> str:
    """The id of the one job whose id is, or starts with, `id_or_prefix`."""
    if not id_or_prefix:
        raise JobRecordError("give a job id, or the first few characters of one")
    if cx.execute("SELECT 1 FROM jobs WHERE id = ?", (id_or_prefix,)).fetchone():
        return id_or_prefix
    ids = [
        r[0]
        for r in cx.execute(  # a range scan on the primary key, not LIKE
            "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 6",
            (id_or_prefix, id_or_prefix + "\U0010ffff"),
        )
    ]
    if not ids:
        raise unknown_job(id_or_prefix, state_dir)
    if len(ids) > 1:
        more = ", ..." if len(ids) > 5 else ""
        raise JobRecordError(
            f"job id {id_or_prefix!r} is ambiguous in {state_dir}: it starts {', '.join(ids[:5])}{more}; "
            "give more of the id"
        )
    return ids[0]


def unknown_job(job_id: str, state_dir: Path) -> JobRecordError:
    return JobRecordError(f"no job {job_id!r} in {state_dir}")
