"""The state store: pipeline jobs, their task instances and attempts, and each job's append-only event log.

One SQLite file, `<state dir>/state.db`, in WAL mode: a job's runner writes
short transactions while any number of readers (`status`, `logs`, the daemon)
read consistent snapshots, and two runs against one state folder both work.
All SQL lives here and in store_schema.py (the migrations).

Whether a runner still drives a job is not a row (a runner killed with -9
could not clear it) but a lock: the runner holds an exclusive flock on
`<state dir>/runners/<job id>.lock` (`Store.claim`); the kernel drops it when
the process dies, however it dies, and readers test it with a shared one.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.job import (
    Attempt,
    JobStatus,
    JobView,
    Outcome,
    PipelineJob,
    TaskInstance,
    TaskState,
    job_status,
)
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.state.migrations import (
    StateFolderError,
    StoreError,
    StoreUnavailableError,
    connect,
    reading,
    translated,
    unwritable,
    writing,
)

__all__ = [
    "JobEvent",
    "JobRecordError",
    "StateFolderError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "default_state_dir",
]

DB_NAME = "state.db"
CLAIM_PATIENCE = 0.25  # seconds a claim retries: a reader's liveness test holds the lock for microseconds
_PAGE = 50  # jobs per query when list_jobs filters by status
_LOOKBACK = 10  # past_durations looks at most limit_jobs * _LOOKBACK jobs back
_STATES = {s.value: s for s in TaskState}  # faster than TaskState(value), which shows in view()
_OUTCOMES = {o.value: o for o in Outcome}
_JOB_COLUMNS = (
    "id, pipeline, pipeline_path, repository, source, commit_id, ref, tree, code_trees_json,"
    " spec_json, spec_id, trigger_json, created_at, rerun_of, dirty, diagnostics_json"
)


def default_state_dir() -> Path:
    """$FTG_STATE_DIR, else $XDG_STATE_HOME/fasttrack-gitops, else ~/.local/state/fasttrack-gitops."""
    if os.environ.get("FTG_STATE_DIR"):
        return Path(os.environ["FTG_STATE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore a relative one
        return Path(xdg) / "fasttrack-gitops"
    return Path.home() / ".local" / "state" / "fasttrack-gitops"


class JobRecordError(UsageError):
    """A job, task instance or attempt that the store does not hold as asked; exit code 2.

    A job id (or prefix) that names no job or several, a task or attempt the
    job does not have, one stored twice: the caller must ask for another.
    (A StoreError is the other kind: the state folder or database cannot be used.)
    """


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's append-only event log (not a repository event: core/events.py)."""

    seq: int  # increases across the whole store
    job_id: str
    at: float
    kind: str  # "job.created", "task.running", "attempt.ended", ...
    task: str | None
    data: dict


class Store:
    """The state database of one state folder. One per thread; any number per process or machine."""

    def __init__(self, state_dir: Path):
        """Create the folder if needed, open `state.db`, and bring its schema up to date."""
        self._dir = Path(state_dir)
        self._db = self._dir / DB_NAME
        self._pipelines: dict[str, Pipeline] = {}  # spec_id -> model, for job_status
        self._made: set[Path] = set()  # folders already created
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise unwritable(self._dir, e.strerror or str(e)) from e
        self._cx = connect(self._db)

    @property
    def state_dir(self) -> Path:
        """The state folder: state.db, runners/, logs/ and data/."""
        return self._dir

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
            cx.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.pipeline,
                    job.pipeline_path,
                    job.repository,
                    job.source,
                    job.commit,
                    job.ref,
                    job.tree,
                    _json(job.code_trees),
                    _json(job.spec),
                    job.spec_id,
                    _json(job.trigger),
                    job.created_at,
                    job.rerun_of,
                    int(job.dirty),
                    json.dumps(list(job.diagnostics)),
                ),
            )
        except sqlite3.IntegrityError as e:
            raise JobRecordError(
                f"job {job.id} is already stored in {self._dir}: a job is stored once; a re-run is a new job"
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

    @translated
    def set_task_state(
        self,
        job_id: str,
        task: str,
        state: TaskState,
        *,
        reason: str = "",
        next_attempt_at: float | None = None,
        at: float | None = None,
    ) -> None:
        """Set a task instance's state (and why, and when its next attempt may start); event "task.<state>"."""
        state = TaskState(state)
        with writing(self._cx) as cx:
            changed = cx.execute(
                "UPDATE task_instances SET state = ?, reason = ?, next_attempt_at = ? WHERE job_id = ? AND name = ?",
                (state.value, reason, next_attempt_at, job_id, task),
            ).rowcount
            if not changed:
                raise JobRecordError(f"no task {task!r} in job {job_id!r} in {self._dir}")
            data = (
                {"reason": reason}
                if next_attempt_at is None
                else {"reason": reason, "next_attempt_at": next_attempt_at}
            )
            self._event(cx, job_id, f"task.{state.value}", task, data, at)

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
                    (job_id, task, number, started_at, None if handle is None else _json(handle)),
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
    ) -> None:
        """Record how a started attempt ended; event "attempt.ended"."""
        outcome = Outcome(outcome)
        with writing(self._cx) as cx:
            changed = cx.execute(
                "UPDATE attempts SET ended_at = ?, exit_code = ?, outcome = ?, message = ?"
                " WHERE job_id = ? AND task = ? AND number = ?",
                (ended_at, exit_code, outcome.value, message, job_id, task, number),
            ).rowcount
            if not changed:
                raise JobRecordError(f"no attempt {number} of task {task!r} in job {job_id!r} in {self._dir}")
            self._event(
                cx,
                job_id,
                "attempt.ended",
                task,
                {"number": number, "exit_code": exit_code, "outcome": outcome.value, "message": message},
                ended_at,
            )

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
        """Hold the job's runner lock while driving it; StoreError if another process holds it.

        The lock is an flock on a descriptor that child processes do not
        inherit, so a task's process outliving a killed runner does not keep
        the job looking alive. The lock file is removed on release. With
        new=True the job may not be stored yet: the runner claims it first
        and stores it then, so nobody sees a stored job without its runner.
        """
        if not new:
            self._row(job_id)  # the job exists
        path = self._lock_path(job_id)
        try:
            path.parent.mkdir(exist_ok=True)
            fd = self._lock(path, job_id)
        except OSError as e:
            raise unwritable(self._dir, f"{path}: {e.strerror or e}") from e
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            try:
                path.unlink(missing_ok=True)  # while still locked: a waiting claimer re-checks the inode
            finally:
                os.close(fd)

    # -- reading (any process, while runners write)

    @translated
    def job(self, id_or_prefix: str) -> PipelineJob:
        """The stored job whose id is, or uniquely starts with, `id_or_prefix`."""
        return _job(self._row(self._resolve(id_or_prefix)))

    @translated
    def view(self, id_or_prefix: str) -> JobView:
        """The job, its task instances now, and its status (id or unique prefix)."""
        return self._views([self._row(self._resolve(id_or_prefix))])[0]

    @translated
    def list_jobs(
        self, *, pipeline: str | None = None, status: JobStatus | None = None, limit: int = 20
    ) -> list[JobView]:
        """The newest jobs first (created_at, then id, descending), of one pipeline and/or status.

        Status is derived, not stored, so a status filter reads pages of jobs
        until it has `limit` matches. A limit of 0 or less means no limit.
        """
        where, params = ("WHERE pipeline = ?", [pipeline]) if pipeline is not None else ("", [])
        query = f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        wanted = limit if limit > 0 else None
        page = _PAGE if status is not None or wanted is None else wanted
        found: list[JobView] = []
        offset = 0
        while wanted is None or len(found) < wanted:
            rows = self._cx.execute(query, (*params, page, offset)).fetchall()
            found += [v for v in self._views(rows) if status is None or v.status == status]
            if len(rows) < page:
                break
            offset += page
        return found[:wanted]

    @translated
    def events(self, job_id: str, *, after: int = 0) -> list[JobEvent]:
        """A job's events with seq > `after`, oldest first (pass the last seq seen to follow a job)."""
        rows = self._cx.execute(
            "SELECT seq, job_id, at, kind, task, data_json FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
            (job_id, after),
        )
        return [JobEvent(seq, job, at, kind, task, json.loads(data)) for seq, job, at, kind, task, data in rows]

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
    def past_durations(self, pipeline: str, *, limit_jobs: int = 5) -> dict[str, float]:
        """Task name -> median duration (seconds) of its last `limit_jobs` succeeded instances.

        Looks at the pipeline's most recent `limit_jobs * 10` jobs; a task's
        duration is from its first attempt's start to its last one's end,
        retries included. For critical-path ordering; tasks never seen are absent.
        """
        rows = self._cx.execute(
            """
            WITH recent AS (
                SELECT id, created_at FROM jobs WHERE pipeline = ? ORDER BY created_at DESC, id DESC LIMIT ?),
            spans AS (
                SELECT t.name, max(a.ended_at) - min(a.started_at) AS duration,
                       row_number() OVER (PARTITION BY t.name ORDER BY r.created_at DESC, r.id DESC) AS nth
                FROM recent r
                JOIN task_instances t ON t.job_id = r.id AND t.state = 'succeeded'
                JOIN attempts a ON a.job_id = t.job_id AND a.task = t.name
                GROUP BY t.job_id, t.name HAVING count(a.ended_at) = count(*))
            SELECT name, duration FROM spans WHERE nth <= ?""",
            (pipeline, limit_jobs * _LOOKBACK, limit_jobs),
        ).fetchall()
        durations: dict[str, list[float]] = {}
        for name, duration in rows:
            durations.setdefault(name, []).append(duration)
        return {name: statistics.median(values) for name, values in durations.items()}

    def log_path(self, job_id: str, task: str, attempt: int) -> Path:
        """Where an attempt's output goes: <state dir>/logs/<job id>/<task>/<attempt>.log (folders made)."""
        folder = self._dir / "logs" / _component(job_id) / _component(task)
        self._mkdir(folder)
        return folder / f"{int(attempt)}.log"

    def data_dir(self, job_id: str) -> Path:
        """The job's pipeline data folder in the state folder (datafolder.job_folder), made if missing."""
        folder = datafolder.job_folder(self._dir, _component(job_id))
        self._mkdir(folder)
        return folder

    # -- helpers

    def _event(
        self, cx: sqlite3.Connection, job_id: str, kind: str, task: str | None, data: Mapping, at: float | None
    ) -> int:
        try:
            seq = cx.execute(
                "INSERT INTO events (job_id, at, kind, task, data_json) VALUES (?, ?, ?, ?, ?)",
                (job_id, time.time() if at is None else at, kind, task, _json(data)),
            ).lastrowid
        except sqlite3.IntegrityError as e:  # foreign key: no such job
            raise self._unknown(job_id) from e
        assert seq is not None  # every INSERT sets it
        return seq

    def _views(self, rows: list[sqlite3.Row | tuple]) -> list[JobView]:
        """Views of stored jobs; liveness is tested before the snapshot is read, so a runner
        that ends the job and exits in between is never mistaken for a dead one."""
        jobs = [_job(row) for row in rows]
        alive = [self._runner_alive(job.id) for job in jobs]
        ids = [job.id for job in jobs]
        marks = ",".join("?" * len(ids))
        instances: dict[str, list[tuple]] = {i: [] for i in ids}
        attempts: dict[tuple[str, str], list[Attempt]] = {}
        with reading(self._cx) as cx:
            for row in cx.execute(
                f"SELECT job_id, name, state, reason, next_attempt_at FROM task_instances"
                f" WHERE job_id IN ({marks}) ORDER BY job_id, position",
                ids,
            ):
                instances[row[0]].append(row[1:])
            for job_id, task, number, started, ended, code, outcome, message in cx.execute(
                f"SELECT job_id, task, number, started_at, ended_at, exit_code, outcome, message"
                f" FROM attempts WHERE job_id IN ({marks}) ORDER BY job_id, task, number",
                ids,
            ):
                attempts.setdefault((job_id, task), []).append(
                    Attempt(number, started, ended, code, _OUTCOMES.get(outcome), message)
                )
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
                name: TaskInstance(name, _STATES[state], tuple(attempts.get((job.id, name), ())), reason, next_at)
                for name, state, reason, next_at in instances[job.id]
            }
            if job.invalid:
                views.append(JobView(job, tasks, JobStatus.INVALID, runner_alive, job.id in cancelled))
                continue
            status = job_status(self._pipeline(job), tasks, runner_alive=runner_alive, queued=job.id in queued)
            views.append(JobView(job, tasks, status, runner_alive, job.id in cancelled))
        return views

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
                f"job id {id_or_prefix!r} is ambiguous in {self._dir}: it starts "
                f"{', '.join(ids[:5])}{more}; give more of the id"
            )
        return ids[0]

    @translated
    def _row(self, job_id: str) -> tuple:
        row = self._cx.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise self._unknown(job_id)
        return row

    def _lock_path(self, job_id: str) -> Path:
        return self._dir / "runners" / f"{_component(job_id)}.lock"

    def _lock(self, path: Path, job_id: str) -> int:
        """An exclusively flocked descriptor of the lock file at `path` (retried briefly)."""
        deadline = time.monotonic() + CLAIM_PATIENCE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    pid = path.read_text().strip() if path.exists() else ""
                    raise StoreUnavailableError(
                        f"job {job_id} is already being run by another process"
                        f"{f' (pid {pid})' if pid else ''}: wait for it to end, or cancel it"
                    ) from None
                time.sleep(0.01)
                continue
            try:  # a runner that just ended unlinks the file it held: then lock the new one
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def _runner_alive(self, job_id: str) -> bool:
        """Whether some process holds the job's claim: try a shared lock without waiting."""
        try:
            fd = os.open(self._lock_path(job_id), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing also drops the shared lock we may have taken
        return False

    def _mkdir(self, folder: Path) -> None:
        if folder in self._made:  # a 200-task job asks for the same folders a thousand times
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise unwritable(self._dir, f"{folder}: {e.strerror or e}") from e
        self._made.add(folder)

    def _unknown(self, job_id: str) -> JobRecordError:
        return JobRecordError(f"no job {job_id!r} in {self._dir}")


def _json(value: Mapping) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _job(row: sqlite3.Row | tuple) -> PipelineJob:
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


def _component(name: str) -> str:
    """A job id or task name as one path component (they are generated or schema-checked; this is a guard)."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise JobRecordError(f"{name!r} cannot name a folder in the state folder")
    return name
