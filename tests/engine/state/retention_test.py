"""A collected job's rows: every table's go in one transaction, foreign keys hold, and the event log stays
append-only for everything else."""

from __future__ import annotations

import sqlite3

import pytest
from engine.state.store_test import make_job, run_task

from fasttrack_gitops.core.job import TaskState
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.outbox import Outbox
from fasttrack_gitops.engine.state.retention import delete_jobs, job_facts, row_counts


def daemon_job(store, job_id: str, trigger: str, *, run: bool = True) -> None:
    """A job as the daemon stores one: under its key, queued, every task run, its report owed to GitHub."""
    key = JobKey("acme/models", "c0ffee" * 6 + "beef", "pipelines/p.yaml", trigger)
    Ledger(store).add_job(key, make_job(job_id=job_id))
    if run:
        Ledger(store).mark_started(job_id)
        for task in ("prepare", "train"):
            run_task(store, job_id, task)
        store.set_task_cache(job_id, "train", key="k", ingredients={}, decision="recorded")
        store.request_cancel(job_id)
        Ledger(store).mark_done(job_id)
    Outbox(store).mark(job_id, ["github"], final=True)


def test_every_row_of_a_collected_job_goes_and_nothing_of_the_others(store):
    daemon_job(store, "gone", "push:1")
    daemon_job(store, "kept", "push:2")
    before = row_counts(store)
    deleted = delete_jobs(store, ["gone"])
    assert deleted["jobs"] == 1 and deleted["job_keys"] == 1 and deleted["queue"] == 1 and deleted["outbox"] == 1
    assert deleted["task_cache"] == 1 and deleted["cancel_requests"] == 1 and deleted["attempts"] == 2
    after = row_counts(store)
    assert {t: before[t] - after[t] for t in before} == deleted
    assert [f.id for f in job_facts(store)] == ["kept"]
    assert store.events("kept") and not store._cx.execute("SELECT 1 FROM events WHERE job_id = 'gone'").fetchall()
    assert store._cx.execute("PRAGMA foreign_key_check").fetchall() == []
    assert store._cx.execute("SELECT count(*) FROM collecting").fetchone() == (0,)


def test_a_job_that_has_not_ended_is_left_alone_whatever_the_caller_decided(store):
    daemon_job(store, "queued", "push:1", run=False)
    daemon_job(store, "running", "push:2")
    store.set_task_state("running", "train", TaskState.RUNNING)  # a re-run attempt, since the caller looked
    assert delete_jobs(store, ["queued", "running"])["jobs"] == 0
    assert {f.id for f in job_facts(store)} == {"queued", "running"}


def test_the_event_log_stays_append_only_outside_gc(store):
    daemon_job(store, "job", "push:1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._cx.execute("DELETE FROM events WHERE job_id = 'job'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._cx.execute("UPDATE events SET kind = 'x' WHERE job_id = 'job'")


def test_facts_say_what_the_decision_needs(store):
    daemon_job(store, "source", "push:1")
    daemon_job(store, "reuser", "push:2")
    store.set_task_state("reuser", "prepare", TaskState.REUSED, reused_from="source")
    facts = {f.id: f for f in job_facts(store)}
    assert facts["reuser"].reused_from == {"source"} and facts["source"].ended and facts["source"].owed
    assert facts["source"].trees == {"7" * 40}
