"""The daemon's ledger in a real SQLite file: one job per key, the queue, deliveries, ticks, positions, gates."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import MINIMAL
from engine.state.store_test import make_job

from fasttrack_gitops.cli import main
from fasttrack_gitops.core.job import JobStatus, freeze_invalid
from fasttrack_gitops.engine.state import migrations as store_schema
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.store import Store

KEY = JobKey("acme/models", "c0ffee" * 6 + "beef", "pipelines/p.yaml", "push:refs/heads/main")


@pytest.fixture
def ledger(tmp_path):
    with Store(tmp_path / "state") as store:
        yield Ledger(store)


def test_one_job_per_key_however_often_it_is_added(ledger):
    first, created = ledger.add_job(KEY, make_job(job_id="j1"))
    again, created_again = ledger.add_job(KEY, make_job(job_id="j2"))
    assert (first, created, again, created_again) == ("j1", True, "j1", False)
    assert [v.job.id for v in ledger.store.list_jobs()] == ["j1"]  # j2 was never stored
    other = JobKey(KEY.repository, KEY.commit, KEY.pipeline_path, "pull_request:3")
    assert ledger.add_job(other, make_job(job_id="j3")) == ("j3", True)


def test_a_queued_job_shows_queued_and_an_unstarted_one_can_be_cancelled_and_stays_in_history(ledger):
    ledger.add_job(KEY, make_job(job_id="j1"), group="acme/models:deploy", cancel_in_progress=True)
    assert ledger.store.view("j1").status == JobStatus.QUEUED
    (entry,) = ledger.open_queue()
    assert (entry.job_id, entry.group, entry.cancel_in_progress, entry.started_at) == (
        "j1",
        "acme/models:deploy",
        True,
        None,
    )
    assert ledger.queue_depth() == 1
    assert ledger.end_unstarted("j1", "superseded by job j9") is True
    view = ledger.store.view("j1")
    assert view.status == JobStatus.CANCELLED
    assert {i.reason for i in view.tasks.values()} == {"superseded by job j9"}
    assert ledger.open_queue() == [] and ledger.end_unstarted("j1", "again") is False
    kinds = [e.kind for e in ledger.store.events("j1")]
    assert kinds[0] == "job.created" and kinds[-1] == "job.cancelled"


def test_a_started_job_is_not_ended_by_end_unstarted(ledger):
    ledger.add_job(KEY, make_job(job_id="j1"))
    ledger.mark_started("j1")
    assert ledger.end_unstarted("j1", "nope") is False
    assert ledger.store.view("j1").status == JobStatus.INTERRUPTED  # started, and no runner holds it
    ledger.mark_done("j1")
    assert ledger.open_queue() == []


def test_open_counts_are_the_open_queue_counted(ledger):
    assert ledger.open_counts() == (0, 0)
    for n in range(1, 5):
        ledger.add_job(
            JobKey(KEY.repository, KEY.commit, f"pipelines/p{n}.yaml", KEY.trigger_key), make_job(job_id=f"j{n}")
        )
    ledger.mark_started("j1")
    ledger.mark_started("j2")
    ledger.mark_done("j2")
    ledger.end_unstarted("j3", "superseded")
    open_queue = ledger.open_queue()
    assert ledger.open_counts() == (1, 1)
    assert ledger.open_counts() == (
        sum(e.started_at is None for e in open_queue),
        sum(e.started_at is not None for e in open_queue),
    )


def test_an_invalid_job_carries_its_diagnostics_and_no_tasks(ledger, tmp_path, capsys):
    diagnostics = [
        {
            "file": "pipelines/p.yaml",
            "line": 3,
            "column": 5,
            "severity": "error",
            "code": "FT101",
            "message": "unknown key 'nme'",
            "path": "$.tasks[0].nme",
        }
    ]
    job = freeze_invalid(
        "p",
        diagnostics,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        commit=KEY.commit,
        ref="refs/heads/main",
        tree="7" * 40,
        trigger={"event": "push"},
    )
    ledger.add_job(KEY, job)
    view = ledger.store.view(job.id)
    assert (view.status, view.tasks, view.job.diagnostics) == (JobStatus.INVALID, {}, tuple(diagnostics))
    assert ledger.open_queue() == []  # nothing to run
    state = str(tmp_path / "state")
    assert main(["jobs", "show", job.id, "--state-dir", state]) == 0
    assert "pipelines/p.yaml:3:5: error FT101: unknown key 'nme'" in capsys.readouterr().out
    assert main(["jobs", "rerun", job.id, "--state-dir", state]) == 2
    assert "was not valid at commit" in capsys.readouterr().err


def test_a_daemon_job_is_rerun_through_the_daemon_not_the_cli(ledger, tmp_path, capsys):
    ledger.add_job(KEY, make_job(job_id="j1"))
    assert main(["jobs", "rerun", "j1", "--state-dir", str(tmp_path / "state")]) == 2
    assert "made by the daemon from acme/models" in capsys.readouterr().err


def test_deliveries_are_recorded_once(ledger):
    assert ledger.record_delivery("github", "d-1", "push", "received") is True
    assert ledger.record_delivery("github", "d-1", "push", "received") is False
    assert ledger.record_delivery("gitlab", "d-1", "Push Hook", "received") is True
    assert ledger.seen_delivery("github", "d-1") and not ledger.seen_delivery("github", "d-2")
    assert ledger.forget_deliveries(before=float("inf")) == 2


def test_ticks_positions_and_gates_survive_a_reopen(tmp_path):
    with Store(tmp_path) as store:
        ledger = Ledger(store)
        ledger.set_tick("acme/models", "pipelines/p.yaml", "0 3 * * *", 100.0)
        ledger.set_tick("acme/models", "pipelines/p.yaml", "0 3 * * *", 200.0)
        ledger.set_positions("acme/models", [("refs/heads/main", "a" * 40), ("refs/heads/old", "b" * 40)])
        ledger.set_positions("acme/models", [("refs/heads/old", None)])
        assert ledger.hold("acme/models", 9, "c" * 40, {"number": 9}) is True
        assert ledger.hold("acme/models", 9, "c" * 40, {"number": 9}) is False
    with Store(tmp_path) as store:
        ledger = Ledger(store)
        assert ledger.last_tick("acme/models", "pipelines/p.yaml", "0 3 * * *") == 200.0
        assert ledger.positions("acme/models") == {"refs/heads/main": "a" * 40}
        assert [g.number for g in ledger.gates()] == [9]
        gate = ledger.approve("acme/models", 9, "alice")
        assert (gate.approved_by, gate.event) == ("alice", {"number": 9})
        assert ledger.gates() == [] and ledger.approve("acme/models", 10, "alice") is None


def test_a_version_1_database_is_migrated_with_its_jobs_kept(tmp_path):
    import json

    job = make_job(MINIMAL, job_id="old")
    db = tmp_path / "state.db"
    cx = sqlite3.connect(db, isolation_level=None)
    for statement in store_schema.MIGRATIONS[0]:
        cx.execute(statement)
    cx.execute(
        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.pipeline,
            job.pipeline_path,
            job.repository,
            job.source,
            job.commit,
            job.ref,
            job.tree,
            json.dumps(job.code_trees),
            json.dumps(job.spec),
            job.spec_id,
            json.dumps(job.trigger),
            job.created_at,
            None,
            0,
        ),
    )
    for i, name in enumerate(("prepare", "train")):
        cx.execute(
            "INSERT INTO task_instances (job_id, name, position, state) VALUES (?, ?, ?, 'succeeded')",
            (job.id, name, i),
        )
    cx.execute(f"PRAGMA application_id = {store_schema.APPLICATION_ID}")
    cx.execute("PRAGMA user_version = 1")
    cx.close()
    with Store(tmp_path) as store:  # opening migrates: the ledger's tables and columns are added
        view = store.view("old")
        assert (view.status, view.job.diagnostics, view.job.spec) == (JobStatus.SUCCEEDED, (), job.spec)
        assert Ledger(store).open_queue() == []
    with sqlite3.connect(db) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == store_schema.SCHEMA_VERSION
