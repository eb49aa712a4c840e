"""The state database file: its pragmas, its migrations in order, and the files it refuses to touch."""

from __future__ import annotations

import pytest
from engine.state.store_test import make_job, raw

from fasttrack_gitops.core.errors import OperationalError
from fasttrack_gitops.engine.state import migrations as store_schema
from fasttrack_gitops.engine.state.errors import StoreError
from fasttrack_gitops.engine.state.store import Store


def test_a_fresh_database_gets_every_migration_in_wal_mode(store, tmp_path):
    with raw(tmp_path / "state") as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == store_schema.SCHEMA_VERSION == 6
        assert cx.execute("PRAGMA application_id").fetchone()[0] == store_schema.APPLICATION_ID
        assert cx.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in cx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "jobs",
        "task_instances",
        "attempts",
        "events",
        "cancel_requests",
        "job_keys",
        "queue",
        "deliveries",
        "schedule_ticks",
        "positions",
        "pr_gates",
        "outbox",
        "task_cache",
        "task_results",
        "collecting",
    } <= tables
    pragmas = {
        p: store._cx.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "foreign_keys", "busy_timeout")
    }
    assert pragmas == {"synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}  # 1 is NORMAL


def test_an_older_database_gets_the_missing_steps_in_order_and_keeps_its_jobs(tmp_path, monkeypatch):
    with Store(tmp_path) as store:
        store.create_job(make_job(job_id="old"))
    steps = [
        *store_schema.MIGRATIONS,
        ("CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('2')"),
        ("INSERT INTO notes SELECT text || '+3' FROM notes",),
    ]
    monkeypatch.setattr(store_schema, "MIGRATIONS", steps)
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", len(steps))
    with Store(tmp_path) as store:
        assert store.job("old").id == "old"
    with raw(tmp_path) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == len(steps)
        assert [r[0] for r in cx.execute("SELECT text FROM notes ORDER BY rowid")] == ["2", "2+3"]


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    Store(tmp_path).close()
    steps = [*store_schema.MIGRATIONS, ("CREATE TABLE notes (text TEXT)", "INSERT INTO nowhere VALUES (1)")]
    monkeypatch.setattr(store_schema, "MIGRATIONS", steps)
    current = store_schema.SCHEMA_VERSION
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", current + 1)
    with pytest.raises(StoreError, match="no such table: nowhere"):
        Store(tmp_path)
    with raw(tmp_path) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == current
        assert not cx.execute("SELECT 1 FROM sqlite_master WHERE name = 'notes'").fetchall()


@pytest.mark.parametrize("made_by", ["an older store", "hand"])
def test_a_database_from_a_newer_version_is_refused_and_left_untouched(tmp_path, made_by):
    if made_by == "an older store":
        Store(tmp_path).close()
    with raw(tmp_path) as cx:  # by hand: rollback-journal mode, which opening must not switch to WAL
        cx.execute("CREATE TABLE IF NOT EXISTS future (x)")
        cx.execute("PRAGMA user_version = 99")  # far ahead: other branches add migrations too
    db = tmp_path / "state.db"
    before = db.read_bytes()
    with pytest.raises(StoreError) as refused:
        Store(tmp_path)
    assert str(refused.value) == (
        f"{db} was written by a newer fasttrack-gitops (schema 99; this version knows {store_schema.SCHEMA_VERSION}): "
        "upgrade fasttrack-gitops or use another --state-dir"
    )
    assert refused.value.exit_code == 3 and isinstance(refused.value, OperationalError)
    assert db.read_bytes() == before


def test_a_database_of_another_program_is_refused(tmp_path):
    with raw(tmp_path) as cx:
        cx.execute("CREATE TABLE contacts (name TEXT)")
    with pytest.raises(StoreError, match="some other program.*--state-dir") as refused:
        Store(tmp_path)
    assert refused.value.exit_code == 2  # the state folder given is the wrong one


def test_a_state_db_that_is_a_folder_is_a_store_error(tmp_path):
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StoreError, match="--state-dir"):
        Store(tmp_path)


def test_a_corrupt_database_is_a_store_error_not_a_traceback(tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not SQLite at all\n" * 200)
    with pytest.raises(StoreError) as corrupt:
        Store(tmp_path)
    assert str(tmp_path / "state.db") in str(corrupt.value) and "move the file aside" in str(corrupt.value)
