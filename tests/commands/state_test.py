"""`state check`, `state backup`, and a damaged state database found when it is opened, by every command."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from commands.run_test import clean, cli
from engine.state.store_test import make_job

from fasttrack_gitops.engine.state.errors import StoreUnavailableError
from fasttrack_gitops.engine.state.store import Store

PAGE = 4096


def stored(state: Path, n: int = 200) -> Path:
    """A state folder holding n jobs (enough pages to damage one in the middle); its state.db."""
    with Store(state) as store:
        for i in range(n):
            store.create_job(make_job(job_id=f"job{i:04d}", now=1_700_000_000.0 + i))
    return state / "state.db"


def damage(db: Path) -> None:
    """Overwrite the cell pointers of two pages in the middle of the file, as a torn write or bad sector would."""
    data = bytearray(db.read_bytes())
    for page in (5, 9):
        data[page * PAGE + 8 : page * PAGE + 200] = b"\xff" * 192
    db.write_bytes(bytes(data))


def test_state_check_says_ok_for_a_sound_database(capsys, tmp_path):
    db = stored(tmp_path / "state", 5)
    code, out, err = cli(capsys, "state", "check", "--state-dir", tmp_path / "state")
    assert (code, out, err) == (0, f"{db}: ok\n", "")


def test_a_damaged_database_is_refused_at_open_with_the_file_and_the_way_out(capsys, tmp_path):
    db = stored(tmp_path / "state")
    damage(db)
    before = db.read_bytes()
    with pytest.raises(StoreUnavailableError) as refused:
        Store(tmp_path / "state")
    message = str(refused.value)
    assert message.startswith(f"{db} is damaged (On tree page ")
    assert "state backup" in message and f"mv {db} {db}.damaged" in message and "state check" in message
    assert db.read_bytes() == before, "a damaged file is left as it is"

    for argv in (["jobs", "list"], ["gc", "--max-age", "1d"], ["gc", "--keep-per-pipeline", "1", "--dry-run"]):
        code, out, err = cli(capsys, *argv, "--state-dir", tmp_path / "state")
        clean(err)
        assert code == 3 and out == "" and f"{db} is damaged" in err, (argv, err)

    code, out, err = cli(capsys, "state", "check", "--state-dir", tmp_path / "state")
    clean(err)
    assert code == 1 and out == ""
    assert err.startswith(f"{db}: ") and "problem(s)" in err and "On tree page" in err
    assert db.read_bytes() == before


def test_a_file_that_is_no_database_at_all_is_named_too(capsys, tmp_path):
    (tmp_path / "state").mkdir()
    db = tmp_path / "state" / "state.db"
    db.write_bytes(b"this is not SQLite" * 1000)
    code, _, err = cli(capsys, "jobs", "list", "--state-dir", tmp_path / "state")
    clean(err)
    assert code == 3 and f"{db} is damaged" in err and "state backup" in err
    code, _, err = cli(capsys, "state", "check", "--state-dir", tmp_path / "state")
    assert code == 1 and "not a database" in err


def test_state_check_and_backup_of_a_folder_without_a_database_are_usage_errors(capsys, tmp_path):
    for argv in (["state", "check"], ["state", "backup"]):
        code, _, err = cli(capsys, *argv, "--state-dir", tmp_path / "none")
        clean(err)
        assert code == 2 and "does not exist" in err and "--state-dir" in err
    assert not (tmp_path / "none").exists()


def test_a_backup_taken_while_a_runner_writes_opens_whole_and_is_never_overwritten(capsys, tmp_path):
    state = tmp_path / "state"
    stored(state, 50)
    writing = threading.Event()
    done = threading.Event()

    def writer():  # a runner writing events the whole time
        with Store(state) as store:
            while not done.is_set():
                store.add_event("job0001", "note", data={"text": "x" * 200})
                writing.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        writing.wait(10)
        to = tmp_path / "copies" / "state.db"
        code, out, err = cli(capsys, "state", "backup", "--state-dir", state, "--to", to)
        assert (code, out, err) == (0, f"{to}\n", "")
    finally:
        done.set()
        thread.join()
    with sqlite3.connect(to) as cx:
        assert cx.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert cx.execute("SELECT count(*) FROM jobs").fetchone() == (50,)
    assert len(Store(to.parent).list_jobs(limit=0)) == 50  # a copy is a state folder's database as it is

    code, _, err = cli(capsys, "state", "backup", "--state-dir", state, "--to", to)
    clean(err)
    assert code == 2 and f"{to} already exists" in err

    code, out, _ = cli(capsys, "state", "backup", "--state-dir", state)  # the default: beside it, by time
    made = Path(out.strip())
    assert code == 0 and made.parent == state / "backups" and made.name.startswith("state-") and made.is_file()
