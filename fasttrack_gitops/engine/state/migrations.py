"""The state database file: its schema as an ordered list of migrations, opening it, its transactions.

The state package's modules use it (their queries live with them). A database records
how far it got in `PRAGMA user_version`; opening it applies the steps after
that, in order, in one transaction. To change the schema, append a step;
never edit a released one. A step is a tuple of single SQL statements (not
executescript, which would commit the migration transaction halfway).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fasttrack_gitops.engine.state import health
from fasttrack_gitops.engine.state.errors import StateFolderError, StoreError, StoreUnavailableError

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another one before giving up

# `PRAGMA application_id`: marks a SQLite file as ours ("FTG1" in ASCII).
APPLICATION_ID = 0x46544731

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: jobs, task instances, attempts, the append-only event log, cancel requests.
    (
        # A stored PipelineJob; never updated (a re-run is a new job).
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            pipeline_path TEXT NOT NULL,
            repository TEXT NOT NULL,
            source TEXT NOT NULL,
            commit_id TEXT,
            ref TEXT,
            tree TEXT NOT NULL,
            code_trees_json TEXT NOT NULL,
            spec_json TEXT NOT NULL,
            spec_id TEXT NOT NULL,
            trigger_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            rerun_of TEXT,
            dirty INTEGER NOT NULL
        )""",
        "CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC)",
        "CREATE INDEX jobs_by_pipeline ON jobs (pipeline, created_at DESC, id DESC)",
        """CREATE TRIGGER jobs_are_immutable BEFORE UPDATE ON jobs
           BEGIN SELECT RAISE(ABORT, 'pipeline jobs are immutable: a re-run is a new job'); END""",
        # One row per task of a job, made with the job; `position` is the pipeline's task order.
        """CREATE TABLE task_instances (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            name TEXT NOT NULL,
            position INTEGER NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            next_attempt_at REAL,
            PRIMARY KEY (job_id, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE attempts (
            job_id TEXT NOT NULL,
            task TEXT NOT NULL,
            number INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            exit_code INTEGER,
            outcome TEXT,
            message TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (job_id, task, number),
            FOREIGN KEY (job_id, task) REFERENCES task_instances (job_id, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            task TEXT,
            data_json TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX events_by_job ON events (job_id, seq)",
        """CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
           BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
        """CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
           BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
        # Kept apart from jobs so that the job row stays immutable.
        """CREATE TABLE cancel_requests (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            at REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 2: the daemon's ledger (ledger.py): invalid jobs' diagnostics, attempt handles for re-attaching,
    # one job per trigger, the queue of jobs, webhook deliveries, schedule ticks, fork approvals.
    (
        # A pipeline that was invalid at the commit is still a job: no tasks, its diagnostics instead.
        "ALTER TABLE jobs ADD COLUMN diagnostics_json TEXT NOT NULL DEFAULT '[]'",
        # How to find a running attempt again (a process group, a Backend.AI session) after a restart.
        "ALTER TABLE attempts ADD COLUMN handle_json TEXT",
        # One job per (repository, commit, pipeline file, trigger), however often the trigger is seen.
        """CREATE TABLE job_keys (
            repository TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            pipeline_path TEXT NOT NULL,
            trigger_key TEXT NOT NULL,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            PRIMARY KEY (repository, commit_id, pipeline_path, trigger_key)
        ) WITHOUT ROWID""",
        # Jobs the daemon owns: queued until a slot (and their concurrency group) lets them start.
        """CREATE TABLE queue (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            concurrency_group TEXT,
            cancel_in_progress INTEGER NOT NULL DEFAULT 0,
            queued_at REAL NOT NULL,
            started_at REAL,
            done_at REAL
        )""",
        "CREATE INDEX queue_open ON queue (done_at, queued_at)",
        """CREATE TABLE deliveries (
            provider TEXT NOT NULL,
            id TEXT NOT NULL,
            received_at REAL NOT NULL,
            event TEXT NOT NULL,
            result TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (provider, id)
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_by_time ON deliveries (received_at)",
        """CREATE TABLE schedule_ticks (
            repository TEXT NOT NULL,
            pipeline_path TEXT NOT NULL,
            cron TEXT NOT NULL,
            last_at REAL NOT NULL,
            PRIMARY KEY (repository, pipeline_path, cron)
        ) WITHOUT ROWID""",
        # Where the daemon last saw each followed ref, so a restart notices what moved while it was down.
        """CREATE TABLE positions (
            repository TEXT NOT NULL,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            PRIMARY KEY (repository, ref)
        ) WITHOUT ROWID""",
        # Pull requests from forks wait here for a member's /fasttrack ok-to-test.
        """CREATE TABLE pr_gates (
            repository TEXT NOT NULL,
            number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            event_json TEXT NOT NULL,
            held_at REAL NOT NULL,
            approved_by TEXT,
            approved_at REAL,
            PRIMARY KEY (repository, number, head_sha)
        ) WITHOUT ROWID""",
    ),
    # 3: the reporters' outbox (outbox.py): one row per (job, reporter), marked when the job
    # changes, sent (coalesced, retried) by the deliverer; `state_json` keeps a check run's id, a Slack ts.
    (
        """CREATE TABLE outbox (
            job_id TEXT NOT NULL,
            reporter TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            sent_version INTEGER NOT NULL DEFAULT 0,
            final INTEGER NOT NULL DEFAULT 0,
            state_json TEXT NOT NULL DEFAULT '{}',
            failures INTEGER NOT NULL DEFAULT 0,
            retry_at REAL NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            sent_at REAL,
            last_error TEXT NOT NULL DEFAULT '',
            gave_up TEXT,
            PRIMARY KEY (job_id, reporter)
        ) WITHOUT ROWID""",
        "CREATE INDEX outbox_pending ON outbox (reporter, retry_at) WHERE version > sent_version AND gave_up IS NULL",
    ),
    # 4: the task cache (engine/cache): a reused task instance names the job whose outputs stand in for it;
    # `task_cache` keeps each task instance's cache key, what it was made of, and what the cache decided.
    (
        "ALTER TABLE task_instances ADD COLUMN reused_from TEXT",
        """CREATE TABLE task_cache (
            job_id TEXT NOT NULL,
            task TEXT NOT NULL,
            key TEXT,
            ingredients_json TEXT NOT NULL DEFAULT '{}',
            decision TEXT NOT NULL DEFAULT '',
            digest TEXT,
            PRIMARY KEY (job_id, task),
            FOREIGN KEY (job_id, task) REFERENCES task_instances (job_id, name)
        ) WITHOUT ROWID""",
    ),
    # 5: `task_results` keeps the metrics a task instance's declared files held, and what was wrong with them.
    (
        """CREATE TABLE task_results (
            job_id TEXT NOT NULL,
            task TEXT NOT NULL,
            metrics_json TEXT NOT NULL DEFAULT '{}',
            problems_json TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (job_id, task),
            FOREIGN KEY (job_id, task) REFERENCES task_instances (job_id, name)
        ) WITHOUT ROWID""",
        "CREATE INDEX jobs_by_commit ON jobs (repository, commit_id, created_at DESC)",
    ),
    # 6: retention (retention.py): `collecting` names the jobs gc removes, inside its one transaction; a job's
    # events may be deleted only then, so the event log stays append-only for everything else.
    (
        "CREATE TABLE collecting (job_id TEXT PRIMARY KEY) WITHOUT ROWID",
        "DROP TRIGGER events_are_append_only_delete",
        """CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
           WHEN NOT EXISTS (SELECT 1 FROM collecting WHERE job_id = OLD.job_id)
           BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
        "CREATE INDEX task_instances_reused ON task_instances (reused_from) WHERE reused_from IS NOT NULL",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def connect(db: Path) -> sqlite3.Connection:
    """Open the state database (made if missing) in WAL mode and migrate it to SCHEMA_VERSION.

    A database of a newer schema, or of another program, is refused before
    anything writes to it.
    """
    try:
        cx = sqlite3.connect(db, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as e:
        raise unwritable(db.parent, str(e)) from e
    try:
        _prepare(cx, db)
    except BaseException as e:
        cx.close()
        translation = failure(e, db) if isinstance(e, sqlite3.Error) else None
        if translation is None:
            raise
        raise translation from e
    return cx


def _prepare(cx: sqlite3.Connection, db: Path) -> None:
    cx.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    with reading(cx):  # one snapshot: a concurrent first migration is seen whole or not at all
        version = cx.execute("PRAGMA user_version").fetchone()[0]
        app_id = cx.execute("PRAGMA application_id").fetchone()[0]
        objects = cx.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise _newer(db, version)
    if (version and app_id != APPLICATION_ID) or (not version and objects):
        raise StateFolderError(
            f"{db} is a SQLite database of some other program: move it aside or use another --state-dir"
        )
    if version:
        health.quick_check(cx, db)  # a damaged file is said at start, not in the middle of a job
    _use_wal(cx)
    cx.execute("PRAGMA synchronous = NORMAL")
    cx.execute("PRAGMA foreign_keys = ON")
    if version < SCHEMA_VERSION:
        with writing(cx):
            version = cx.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
            if version > SCHEMA_VERSION:
                raise _newer(db, version)
            if version < SCHEMA_VERSION:
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        cx.execute(statement)
                cx.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                cx.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _use_wal(cx: sqlite3.Connection) -> None:
    """Switch a new database to WAL, waiting for a writer that holds it (SQLite does not wait for this one)."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while cx.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cx.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _newer(db: Path, version: int) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"{db} was written by a newer fasttrack-gitops (schema {version}; this version knows "
        f"{SCHEMA_VERSION}): upgrade fasttrack-gitops or use another --state-dir"
    )


@contextmanager
def writing(cx: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction, committed on success and rolled back on any error.

    Inside another writing() (Store.batch) it joins that one: the outer one commits or rolls back it all.
    """
    if cx.in_transaction:
        yield cx
        return
    cx.execute("BEGIN IMMEDIATE")  # take the write lock now, so that the busy timeout applies
    try:
        yield cx
        cx.execute("COMMIT")
    except BaseException:
        if cx.in_transaction:
            cx.rollback()
        raise


@contextmanager
def reading(cx: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every query inside sees the same snapshot."""
    cx.execute("BEGIN")
    try:
        yield cx
    finally:
        if cx.in_transaction:
            cx.execute("COMMIT")


def translated(method):
    """Turn errors of the database file into a StoreError, on methods of an object with `_db` (its path)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with translating(self._db):
            return method(self, *args, **kwargs)

    return wrapper


@contextmanager
def translating(db: Path) -> Iterator[None]:
    """Errors of the database file `db` inside become a StoreError (a bug's stay as they are)."""
    try:
        yield
    except sqlite3.Error as e:
        translation = failure(e, db)
        if translation is None:
            raise
        raise translation from e


def unwritable(folder: Path, reason: str) -> StateFolderError:
    return StateFolderError(f"cannot use {folder} as the state folder ({reason}): make it writable or pass --state-dir")


def failure(e: sqlite3.Error, db: Path) -> StoreError | None:
    """The StoreError for an error of the database file (locked, full, corrupt, unopenable); None for a bug."""
    if not (isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError):
        return None
    text = str(e)
    if "not a database" in text or "malformed" in text:
        return health.damaged(db, [text])
    if "disk is full" in text or ("disk I/O error" in text and _nearly_full(db.parent)):
        # SQLite rolled the transaction back: nothing of it is stored. (Growing the WAL's index on a full disk is
        # an I/O error to SQLite: the free space says which it was.)
        return StoreUnavailableError(
            f"the disk holding {db} is full ({text}): nothing of this change was stored; free space there and try "
            "again (`fasttrack-gitops gc` removes old jobs)"
        )
    if "locked" in text or "busy" in text:
        return StoreUnavailableError(f"{db} stayed locked by another process for {BUSY_TIMEOUT:g} s: try again")
    if "unable to open" in text or "readonly" in text:
        return unwritable(db.parent, text)
    return StoreUnavailableError(f"{db}: {text}: check the file and the disk, or use another --state-dir")


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding `folder` has less than a few pages left."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 256 * 1024
