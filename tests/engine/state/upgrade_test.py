"""A state folder written by version 1 of the schema, opened by today's Store: upgraded through every migration.

tests/data/state-v1/ holds what fasttrack-gitops wrote at schema version 1
(commit 7db1c9d; `make.sh` there is how): four jobs run by its `run`,
`jobs rerun` and `jobs cancel` — one that succeeded with a retried task, one
that failed with skipped tasks, its re-run, and one cancelled while a task
ran — as the SQL dump of its database, and the attempts' logs. Nothing here
writes a version-1 row by hand: the rows are the ones version 1 wrote.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import DATA, MINIMAL
from engine.state.store_test import make_job

from fasttrack_gitops.cli import main
from fasttrack_gitops.core.job import JobStatus, Outcome, TaskState
from fasttrack_gitops.engine.state import migrations
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.outbox import Outbox
from fasttrack_gitops.engine.state.store import Store

V1 = DATA / "state-v1"


@pytest.fixture
def v1_state(tmp_path: Path) -> Path:
    """A state folder as version 1 left it: state.db at user_version 1, and logs/."""
    folder = tmp_path / "state"
    shutil.copytree(V1 / "logs", folder / "logs")
    cx = sqlite3.connect(folder / "state.db")
    cx.executescript((V1 / "state.sql").read_text(encoding="utf-8"))
    cx.close()
    with raw(folder) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == 1
    return folder


def raw(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(folder / "state.db")


def schema(cx: sqlite3.Connection) -> list[tuple]:
    return cx.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def by_pipeline(store: Store) -> dict[str, list]:
    """The jobs, newest first, grouped by pipeline."""
    jobs: dict[str, list] = {}
    for view in store.list_jobs(limit=0):
        jobs.setdefault(view.job.pipeline, []).append(view)
    return jobs


def test_migration_1_is_still_the_schema_version_1_made(v1_state, tmp_path):
    """A released step is never edited: today's first migration makes exactly the tables version 1 made."""
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    for statement in migrations.MIGRATIONS[0]:
        fresh.execute(statement)
    fresh.execute("INSERT INTO events (job_id, at, kind) VALUES ('x', 0, 'k')")  # AUTOINCREMENT's table appears
    with raw(v1_state) as old:
        assert schema(fresh) == schema(old)
    fresh.close()


def test_opening_a_version_1_folder_upgrades_it_through_every_migration_and_keeps_every_job(v1_state):
    with raw(v1_state) as cx:
        before = {
            table: cx.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("jobs", "task_instances", "attempts", "events", "cancel_requests")
        }
    assert before == {"jobs": 4, "task_instances": 11, "attempts": 7, "events": 45, "cancel_requests": 1}

    with Store(v1_state) as store:
        jobs = by_pipeline(store)

    with raw(v1_state) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == migrations.SCHEMA_VERSION
        assert cx.execute("PRAGMA application_id").fetchone()[0] == migrations.APPLICATION_ID
        tables = {r[0] for r in cx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"job_keys", "queue", "deliveries", "schedule_ticks", "positions", "pr_gates", "outbox"} <= tables
        assert {table: cx.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in before} == before
    assert sorted((p, [v.status for v in views]) for p, views in jobs.items()) == [
        ("broken", [JobStatus.FAILED, JobStatus.FAILED]),
        ("slow", [JobStatus.CANCELLED]),
        ("train", [JobStatus.SUCCEEDED]),
    ]

    (train,) = jobs["train"]
    assert train.job.trigger == {"event": "cli"} and train.job.diagnostics == () and not train.job.invalid
    assert train.job.spec["environment"] == {"envs": {"STAGE": "v1"}}
    assert [t["name"] for t in train.job.spec["tasks"]] == list(train.tasks) == ["prepare", "fit", "report"]
    assert all(i.state == TaskState.SUCCEEDED for i in train.tasks.values())
    fit = train.tasks["fit"]
    assert [(a.number, a.exit_code, a.outcome) for a in fit.attempts] == [
        (1, 1, Outcome.FAILED),
        (2, 0, Outcome.SUCCEEDED),
    ]
    assert all(a.duration is not None and a.duration >= 0 for a in fit.attempts)

    rerun, first = jobs["broken"]
    assert rerun.job.rerun_of == first.job.id and rerun.job.trigger == {"event": "rerun", "of": first.job.id}
    for view in (first, rerun):
        tasks = {name: (i.state, i.exit_code, i.reason) for name, i in view.tasks.items()}
        assert tasks == {
            "check": (TaskState.FAILED, 3, "exit code 3"),
            "publish": (TaskState.SKIPPED, None, "dependency 'check' failed"),
            "docs": (TaskState.SKIPPED, None, "skip: true"),
        }

    (slow,) = jobs["slow"]
    assert slow.cancel_requested and not slow.runner_alive
    assert [(i.state, i.reason) for i in slow.tasks.values()] == [(TaskState.CANCELLED, "the job was cancelled")] * 2
    assert [a.outcome for a in slow.tasks["wait"].attempts] == [Outcome.CANCELLED]


def test_the_event_logs_and_attempt_logs_of_version_1_read_as_they_were_written(v1_state):
    with raw(v1_state) as cx:
        written = cx.execute("SELECT seq, job_id, kind, task, data_json FROM events ORDER BY seq").fetchall()

    with Store(v1_state) as store:
        jobs = by_pipeline(store)
        (train,) = jobs["train"]
        events = {job: store.events(job) for job in {row[1] for row in written}}
        later = store.events(train.job.id, after=events[train.job.id][5].seq)
        logs = {
            (task, attempt.number): store.log_path(train.job.id, task, attempt.number).read_text()
            for task, instance in train.tasks.items()
            for attempt in instance.attempts
        }
        durations = store.past_durations("train")

    read = sorted(
        ((e.seq, e.job_id, e.kind, e.task, e.data) for job_events in events.values() for e in job_events),
        key=lambda e: e[0],
    )
    assert read == [(seq, job, kind, task, json.loads(data)) for seq, job, kind, task, data in written]
    kinds = [e.kind for e in events[train.job.id]]
    assert kinds[0] == "job.created" and kinds.count("attempt.started") == 4 and kinds[-1] == "task.succeeded"
    assert events[train.job.id][0].data["trigger"] == {"event": "cli"}
    assert later == events[train.job.id][6:]
    assert logs == {
        ("prepare", 1): "prepared the data\n",
        ("fit", 1): "out of memory\n",
        ("fit", 2): "fitted the model\n",
        ("report", 1): "reported\n",
    }
    assert set(durations) == {"prepare", "fit", "report"}


def test_the_daemon_tables_added_by_the_upgrade_work_beside_the_old_jobs(v1_state):
    with Store(v1_state) as store:
        old = store.list_jobs(limit=0)
        ledger, outbox = Ledger(store), Outbox(store)
        assert ledger.open_queue() == [], "version 1 had no daemon: a new one owns none of the old jobs"

        new = make_job(MINIMAL, job_id="daemon-job", now=old[0].job.created_at + 60)
        key = JobKey("acme/models", new.commit or "", new.pipeline_path, "push")
        assert ledger.add_job(key, new) == ("daemon-job", True)
        assert ledger.add_job(key, make_job(MINIMAL, job_id="again")) == ("daemon-job", False)
        assert [q.job_id for q in ledger.open_queue()] == ["daemon-job"]
        assert ledger.record_delivery("github", "d-1", "push", "received") is True
        assert ledger.seen_delivery("github", "d-1")
        ledger.set_positions("acme/models", [("refs/heads/main", "a" * 40)])
        assert ledger.positions("acme/models") == {"refs/heads/main": "a" * 40}
        ledger.set_tick("acme/models", "pipelines/p.yaml", "0 3 * * *", 100.0)
        assert ledger.last_tick("acme/models", "pipelines/p.yaml", "0 3 * * *") == 100.0
        assert ledger.hold("acme/models", 7, "b" * 40, {"number": 7})
        assert ledger.approve("acme/models", 7, "alice").approved_by == "alice"

        # an old job can be reported like a new one: the outbox keys on the job id alone
        outbox.mark(old[-1].job.id, ["github"], final=True)
        outbox.mark("daemon-job", ["github", "slack"])
        due = outbox.due("github", now=1e12)
        assert [row.job_id for row in due] == sorted([old[-1].job.id, "daemon-job"])
        outbox.sent(due[0], {"check_run_id": 4}, min_interval=0)
        assert outbox.row(due[0].job_id, "github")["state_json"] == '{"check_run_id": 4}'
        assert outbox.pending() == {"github": 1, "slack": 1}

        assert [v.job.id for v in store.list_jobs(limit=0)] == ["daemon-job", *(v.job.id for v in old)]
        assert store.view("daemon-job").status == JobStatus.QUEUED

    with Store(v1_state) as store:  # opening the upgraded folder again migrates nothing twice
        assert len(store.list_jobs(limit=0)) == 5
        assert Ledger(store).positions("acme/models") == {"refs/heads/main": "a" * 40}


def test_the_jobs_commands_show_the_version_1_jobs(v1_state, capsys):
    assert main(["jobs", "list", "--state-dir", str(v1_state), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((j["pipeline"], j["status"]) for j in listed) == [
        ("broken", "failed"),
        ("broken", "failed"),
        ("slow", "cancelled"),
        ("train", "succeeded"),
    ]
    train = next(j["id"] for j in listed if j["pipeline"] == "train")

    assert main(["jobs", "logs", train, "fit", "--state-dir", str(v1_state)]) == 0
    assert capsys.readouterr().out == "fitted the model\n"
    assert main(["jobs", "show", train, "--state-dir", str(v1_state)]) == 0
    shown = capsys.readouterr().out
    assert "succeeded" in shown and "fit" in shown
