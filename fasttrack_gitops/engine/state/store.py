"""The state store: pipeline jobs, their task instances and attempts, and each job's append-only event log.

One SQLite file, `<state dir>/state.db`, in WAL mode: a job's runner writes
short transactions while any number of readers (`status`, `logs`, the daemon)
read consistent snapshots, and two runs against one state folder both work.
`Store` is what callers use: it owns the connection, its transactions and
the writes. Beside it: the rows as records (records.py), views read in one
snapshot (job_views.py), past task durations (task_durations.py), the runner
lock (runner_lock.py), the folder's layout (state_folder.py), the schema
(migrations.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fasttrack_gitops.core.job import JobStatus, JobView, Outcome, PipelineJob, ServiceEndpoint, TaskState
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.engine.state import runner_lock
from fasttrack_gitops.engine.state.errors import JobRecordError
from fasttrack_gitops.engine.state.job_views import read_views
from fasttrack_gitops.engine.state.migrations import connect, reading, translated, translating, writing
from fasttrack_gitops.engine.state.records import (
    EVENT_COLUMNS,
    JOB_COLUMNS,
    JobEvent,
    event_from_row,
    job_from_row,
    job_values,
    to_json,
)
from fasttrack_gitops.engine.state.state_folder import StateFolder
from fasttrack_gitops.engine.state.task_durations import median_durations

_PAGE = 50  # jobs per query when list_jobs filters by status

# The columns list_jobs may narrow by (the keys are its keyword arguments).
_FILTERS = {
    "pipeline": "pipeline",
    "repository": "repository",
    "ref": "ref",
    "event": "json_extract(trigger_json, '$.event')",
}


class Store:
    """The state database of one state folder. One per thread; any number per process or machine."""

    def __init__(self, state_dir: Path):
        """Create the folder if needed, open `state.db`, and bring its schema up to date."""
        self._folder = StateFolder(state_dir)
        self._db = self._folder.db  # for @translated
        self._pipelines: dict[str, Pipeline] = {}  # spec_id -> model, for job_status
        self._folder.create()
        self._cx = connect(self._db)

    @property
    def state_dir(self) -> Path:
        """The state folder: state.db, runners/, logs/ and data/."""
        return self._folder.path

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._cx.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing (the runner of a job)

    @translated
    def create_job(self, job: PipelineJob) -> None:
        """Store a new job, one pending task instance per task, and event "job.created"."""
        with writing(self._cx) as cx:
            self.insert_job(cx, job)

    def insert_job(self, cx: sqlite3.Connection, job: PipelineJob) -> None:
        """create_job inside the caller's write transaction (the daemon's ledger adds its rows in the same one)."""
        tasks = () if job.invalid else self._pipeline(job).tasks
        at = job.created_at or time.time()
        try:
            values = job_values(job)
            cx.execute(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)
        except sqlite3.IntegrityError as e:
            raise JobRecordError(
                f"job {job.id} is already stored in {self.state_dir}: a job is stored once; a re-run is a new job"
            ) from e
        cx.executemany(
            "INSERT INTO task_instances (job_id, name, position, state) VALUES (?, ?, ?, ?)",
            [(job.id, t.name, i, TaskState.PENDING.value) for i, t in enumerate(tasks)],
        )
        self._event(
            cx,
            job.id,
            "job.created",
            None,
            {"pipeline": job.pipeline, "commit": job.commit, "ref": job.ref, "trigger": dict(job.trigger)},
            at,
        )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes inside as one transaction: all or none of them, and one commit rather than one each (the
        runner records an attempt's end and its task's new state together)."""
        with translating(self._db), writing(self._cx):
            yield

    @translated
    def set_task_state(
        self,
        job_id: str,
        task: str,
        state: TaskState,
        *,
        reason: str = "",
        next_attempt_at: float | None = None,
        reused_from: str | None = None,
        at: float | None = None,
    ) -> None:
        """Set a task instance's state (and why, when its next attempt may start, whose outputs it reuses);
        event "task.<state>"."""
        state = TaskState(state)
        with writing(self._cx) as cx:
            changed = cx.execute(
                "UPDATE task_instances SET state = ?, reason = ?, next_attempt_at = ?, reused_from = ?"
                " WHERE job_id = ? AND name = ?",
                (state.value, reason, next_attempt_at, reused_from, job_id, task),
            ).rowcount
            if not changed:
                raise JobRecordError(f"no task {task!r} in job {job_id!r} in {self.state_dir}")
            data: dict[str, Any] = {"reason": reason}
            if next_attempt_at is not None:
                data["next_attempt_at"] = next_attempt_at
            if reused_from is not None:
                data["reused_from"] = reused_from
            self._event(cx, job_id, f"task.{state.value}", task, data, at)

    @translated
    def set_task_cache(
        self,
        job_id: str,
        task: str,
        *,
        key: str | None,
        ingredients: Mapping[str, Any],
        decision: str,
        digest: str | None = None,
    ) -> None:
        """Record a task instance's cache key, what it was made of, and what the cache decided (`jobs show
        --cache`); `digest`: its outputs' digest once known. A later call for the same task replaces it."""
        with writing(self._cx) as cx:
            cx.execute(
                "INSERT OR REPLACE INTO task_cache (job_id, task, key, ingredients_json, decision, digest)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, task, key, json.dumps(ingredients, sort_keys=True), decision, digest),
            )

    @translated
    def task_cache(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per task: {"key", "ingredients", "decision", "digest"} as set_task_cache recorded them."""
        job_id = self._resolve(job_id)
        with reading(self._cx) as cx:
            rows = cx.execute(
                "SELECT task, key, ingredients_json, decision, digest FROM task_cache WHERE job_id = ?", (job_id,)
            ).fetchall()
        return {
            task: {"key": key, "ingredients": json.loads(ingredients), "decision": decision, "digest": digest}
            for task, key, ingredients, decision, digest in rows
        }

    @translated
    def start_attempt(
        self, job_id: str, task: str, number: int, *, started_at: float, handle: Mapping | None = None
    ) -> None:
        """Record that attempt `number` (from 1) of a task started; event "attempt.started".

        `handle` is how the executor finds the attempt again after a restart
        (a process group, a session id); plain JSON, never a secret.
        """
        with writing(self._cx) as cx:
            try:
                cx.execute(
                    "INSERT INTO attempts (job_id, task, number, started_at, handle_json) VALUES (?, ?, ?, ?, ?)",
                    (job_id, task, number, started_at, None if handle is None else to_json(handle)),
                )
            except sqlite3.IntegrityError as e:  # unknown task (foreign key) or a number used twice
                raise JobRecordError(f"cannot start attempt {number} of task {task!r} in job {job_id!r}: {e}") from e
            self._event(cx, job_id, "attempt.started", task, {"number": number}, started_at)

    @translated
    def end_attempt(
        self,
        job_id: str,
        task: str,
        number: int,
        *,
        ended_at: float,
        exit_code: int | None,
        outcome: Outcome,
        message: str = "",
        service: ServiceEndpoint | None = None,
    ) -> None:
        """Record how a started attempt ended; event "attempt.ended". `service`: the model service a deployment
        task made ready, kept in the attempt's handle (key "service": plain JSON, never a token)."""
        outcome = Outcome(outcome)
        with writing(self._cx) as cx:
            changed = cx.execute(
                "UPDATE attempts SET ended_at = ?, exit_code = ?, outcome = ?, message = ?"
                " WHERE job_id = ? AND task = ? AND number = ?",
                (ended_at, exit_code, outcome.value, message, job_id, task, number),
            ).rowcount
            if not changed:
                raise JobRecordError(f"no attempt {number} of task {task!r} in job {job_id!r} in {self.state_dir}")
            data: dict[str, Any] = {
                "number": number,
                "exit_code": exit_code,
                "outcome": outcome.value,
                "message": message,
            }
            if service is not None:
                (handle,) = cx.execute(
                    "SELECT handle_json FROM attempts WHERE job_id = ? AND task = ? AND number = ?",
                    (job_id, task, number),
                ).fetchone()
                merged = {**(json.loads(handle) if handle else {}), "service": service.as_dict()}
                cx.execute(
                    "UPDATE attempts SET handle_json = ? WHERE job_id = ? AND task = ? AND number = ?",
                    (to_json(merged), job_id, task, number),
                )
                data["url"] = service.url
            self._event(cx, job_id, "attempt.ended", task, data, ended_at)

    @translated
    def add_event(
        self, job_id: str, kind: str, *, task: str | None = None, data: dict | None = None, at: float | None = None
    ) -> int:
        """Append an event to a job's log; returns its seq. `data` must be plain JSON."""
        with writing(self._cx) as cx:
            return self._event(cx, job_id, kind, task, data or {}, at)

    @translated
    def request_cancel(self, job_id: str) -> None:
        """Ask the job's runner to cancel it (any process may ask); event "job.cancel_requested" once."""
        with writing(self._cx) as cx:
            try:
                added = cx.execute(
                    "INSERT OR IGNORE INTO cancel_requests (job_id, at) VALUES (?, ?)", (job_id, time.time())
                ).rowcount
            except sqlite3.IntegrityError as e:
                raise self._unknown(job_id) from e
            if added:
                self._event(cx, job_id, "job.cancel_requested", None, {"pid": os.getpid()}, None)

    @contextmanager
    def claim(self, job_id: str, *, new: bool = False) -> Iterator[None]:
        """Hold the job's runner lock (runner_lock.py) while driving it; StoreError if another process holds it.

        With new=True the job may not be stored yet: the runner claims it first
        and stores it then, so nobody sees a stored job without its runner.
        """
        if not new:
            self._row(job_id)  # the job exists
        with runner_lock.hold(self._folder, job_id):
            yield

    # -- reading (any process, while runners write)

    @translated
    def job(self, id_or_prefix: str) -> PipelineJob:
        """The stored job whose id is, or uniquely starts with, `id_or_prefix`."""
        return job_from_row(self._row(self._resolve(id_or_prefix)))

    @translated
    def view(self, id_or_prefix: str) -> JobView:
        """The job, its task instances now, and its status (id or unique prefix)."""
        return self._views([self._row(self._resolve(id_or_prefix))])[0]

    @translated
    def list_jobs(
        self,
        *,
        pipeline: str | None = None,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
        **where: str | None,
    ) -> list[JobView]:
        """The newest jobs first (created_at, then id, descending), of one pipeline and/or status.

        `where` narrows by more columns (repository=, ref=, and event= the
        trigger's), as the console's filters do; `offset` skips that many
        matches (a page). Status is derived, not stored, so a status filter
        reads pages of jobs until it has `limit` matches. A limit of 0 or
        less means no limit.
        """
        columns = {"pipeline": pipeline, **where}
        clauses = [f"{_FILTERS[k]} = ?" for k, v in columns.items() if v is not None]
        params: list = [v for v in columns.values() if v is not None]
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {JOB_COLUMNS} FROM jobs {sql_where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        wanted = limit + offset if limit > 0 else None
        page = _PAGE if status is not None or wanted is None else wanted
        found: list[JobView] = []
        at = 0
        while wanted is None or len(found) < wanted:
            rows = self._cx.execute(query, (*params, page, at)).fetchall()
            found += [v for v in self._views(rows) if status is None or v.status == status]
            if len(rows) < page:
                break
            at += page
        return found[offset:wanted]

    @translated
    def events(self, job_id: str, *, after: int = 0) -> list[JobEvent]:
        """A job's events with seq > `after`, oldest first (pass the last seq seen to follow a job)."""
        rows = self._cx.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after)
        )
        return [event_from_row(row) for row in rows]

    @translated
    def last_event(self, job_id: str, kind: str) -> JobEvent | None:
        """The job's newest event of a kind ("job.plan"), or None."""
        row = self._cx.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
            (job_id, kind),
        ).fetchone()
        return event_from_row(row) if row else None

    @translated
    def attempt_handle(self, job_id: str, task: str, number: int) -> dict | None:
        """The handle an attempt was started with (see start_attempt), or None."""
        row = self._cx.execute(
            "SELECT handle_json FROM attempts WHERE job_id = ? AND task = ? AND number = ?", (job_id, task, number)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    @translated
    def cancel_requested(self, job_id: str) -> bool:
        """Whether anyone asked to cancel the job."""
        row = self._cx.execute("SELECT 1 FROM cancel_requests WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None

    @translated
    def past_durations(self, pipeline: str, *, limit_jobs: int = 5, repository: str | None = None) -> dict[str, float]:
        """Task name -> median duration (seconds) of its last `limit_jobs` succeeded instances.

        Looks at the pipeline's most recent `limit_jobs * 10` jobs (of `repository` only, when given; one
        query); for critical-path ordering and `plan`'s estimates.
        """
        return median_durations(self._cx, pipeline, limit_jobs, repository)

    def log_path(self, job_id: str, task: str, attempt: int) -> Path:
        """Where an attempt's output goes: <state dir>/logs/<job id>/<task>/<attempt>.log (folders made)."""
        return self._folder.log_path(job_id, task, attempt)

    def data_dir(self, job_id: str) -> Path:
        """The job's pipeline data folder in the state folder (datafolder.job_folder), made if missing."""
        return self._folder.data_dir(job_id)

    # -- helpers

    def _event(
        self, cx: sqlite3.Connection, job_id: str, kind: str, task: str | None, data: Mapping, at: float | None
    ) -> int:
        try:
            seq = cx.execute(
                "INSERT INTO events (job_id, at, kind, task, data_json) VALUES (?, ?, ?, ?, ?)",
                (job_id, time.time() if at is None else at, kind, task, to_json(data)),
            ).lastrowid
        except sqlite3.IntegrityError as e:  # foreign key: no such job
            raise self._unknown(job_id) from e
        assert seq is not None  # every INSERT sets it
        return seq

    def _views(self, rows: list[sqlite3.Row | tuple]) -> list[JobView]:
        return read_views(self._cx, self._folder, [job_from_row(row) for row in rows], self._pipeline)

    def _pipeline(self, job: PipelineJob) -> Pipeline:
        """job.pipeline_model(), cached by spec id (normalising a 200-task spec takes milliseconds)."""
        model = self._pipelines.get(job.spec_id)
        if model is None:
            if len(self._pipelines) >= 64:
                self._pipelines.clear()
            model = self._pipelines[job.spec_id] = job.pipeline_model()
        return model

    def _resolve(self, id_or_prefix: str) -> str:
        """The id of the one job whose id is, or starts with, `id_or_prefix`."""
        if not id_or_prefix:
            raise JobRecordError("give a job id, or the first few characters of one")
        if self._cx.execute("SELECT 1 FROM jobs WHERE id = ?", (id_or_prefix,)).fetchone():
            return id_or_prefix
        ids = [
            r[0]
            for r in self._cx.execute(  # a range scan on the primary key, not LIKE
                "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 6",
                (id_or_prefix, id_or_prefix + "\U0010ffff"),
            )
        ]
        if not ids:
            raise self._unknown(id_or_prefix)
        if len(ids) > 1:
            more = ", ..." if len(ids) > 5 else ""
            raise JobRecordError(
                f"job id {id_or_prefix!r} is ambiguous in {self.state_dir}: it starts "
                f"{', '.join(ids[:5])}{more}; give more of the id"
            )
        return ids[0]

    @translated
    def _row(self, job_id: str) -> tuple:
        row = self._cx.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise self._unknown(job_id)
        return row

    def _unknown(self, job_id: str) -> JobRecordError:
        return JobRecordError(f"no job {job_id!r} in {self.state_dir}")
