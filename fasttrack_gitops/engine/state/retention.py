"""Retention's rows: what core/retention.py decides on, read in one snapshot, and a collected job's rows removed.

A collected job goes whole or not at all: its task instances, attempts,
events, cache and results rows, cancel request, ledger rows (key, queue
entry) and outbox rows are deleted in one transaction, children before
parents so that every foreign key holds. Its events may be deleted only
because its id is in `collecting` for the length of that transaction
(migration 6): everywhere else the event log stays append-only. The job's
files go after the commit (engine/gc.py): a crash in between leaves files
without rows, which the next collection finds and removes, never rows
without their files' owner.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fasttrack_gitops.core.job import ENDED
from fasttrack_gitops.core.retention import JobFacts
from fasttrack_gitops.engine.state.migrations import reading, translating, writing
from fasttrack_gitops.engine.state.store import Store

_ENDED = tuple(sorted(s.value for s in ENDED))
_MARKS = ", ".join("?" * len(_ENDED))

# Children first: each table's rows go before the rows they reference.
_TABLES = (
    "attempts",
    "task_cache",
    "task_results",
    "events",
    "cancel_requests",
    "job_keys",
    "queue",
    "outbox",
    "task_instances",
    "jobs",
)


def job_facts(store: Store) -> list[JobFacts]:
    """Every stored job as the retention decision sees it (ended: by its rows; the caller asks the runner lock)."""
    cx = store._cx
    with translating(store._db), reading(cx):
        open_jobs = {
            r[0]
            for r in cx.execute(
                f"SELECT DISTINCT job_id FROM task_instances WHERE state NOT IN ({_MARKS})"
                " UNION SELECT job_id FROM queue WHERE done_at IS NULL AND started_at IS NULL",
                _ENDED,
            )
        }
        owed = {
            r[0]
            for r in cx.execute("SELECT DISTINCT job_id FROM outbox WHERE version > sent_version AND gave_up IS NULL")
        }
        reused: dict[str, set[str]] = {}
        for job_id, source in cx.execute(
            "SELECT job_id, reused_from FROM task_instances WHERE reused_from IS NOT NULL"
        ):
            reused.setdefault(job_id, set()).add(source)
        rows = cx.execute("SELECT id, repository, pipeline, created_at, rerun_of, tree, code_trees_json FROM jobs")
        return [
            JobFacts(
                id=job_id,
                repository=repository,
                pipeline=pipeline,
                created_at=created_at,
                ended=job_id not in open_jobs,
                owed=job_id in owed,
                reused_from=frozenset(reused.get(job_id, ())),
                rerun_of=rerun_of,
                trees=frozenset({tree, *json.loads(code_trees).values()}),
            )
            for job_id, repository, pipeline, created_at, rerun_of, tree, code_trees in rows
        ]


def delete_jobs(store: Store, job_ids: Sequence[str]) -> dict[str, int]:
    """Delete the jobs' rows in one transaction; rows deleted per table. A job that has not ended (by its rows, read
    again inside the transaction) is left alone, whatever the caller decided from an older snapshot."""
    cx = store._cx
    with translating(store._db), writing(cx):
        cx.execute("DELETE FROM collecting")  # a crash mid-transaction rolls back; this is belt and braces
        cx.executemany("INSERT OR IGNORE INTO collecting (job_id) VALUES (?)", [(j,) for j in job_ids])
        cx.execute(
            "DELETE FROM collecting WHERE job_id IN ("
            f" SELECT job_id FROM task_instances WHERE state NOT IN ({_MARKS})"
            " UNION SELECT job_id FROM queue WHERE done_at IS NULL AND started_at IS NULL)",
            _ENDED,
        )
        deleted = {}
        for table in _TABLES:
            column = "id" if table == "jobs" else "job_id"
            deleted[table] = cx.execute(
                f"DELETE FROM {table} WHERE {column} IN (SELECT job_id FROM collecting)"
            ).rowcount
        cx.execute("DELETE FROM collecting")
    return deleted


def row_counts(store: Store) -> dict[str, int]:
    """Rows per table that holds jobs' rows (for gc's report and the benchmark)."""
    with translating(store._db), reading(store._cx) as cx:
        return {t: cx.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES}
