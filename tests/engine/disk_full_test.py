"""A full disk under the state folder: a task whose log cannot be written fails with one clear message, a store
write that does not fit is refused whole, and the database stays consistent. The disk is a real size-limited tmpfs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from commands.run_test import clean, cli, make_repo
from conftest import cannot_run
from engine.state.store_test import chain, make_job

from fasttrack_gitops.engine.state.errors import StoreUnavailableError
from fasttrack_gitops.engine.state.store import Store

LOUD = """\
version: "26.4.4"
name: loud
tasks:
  - name: shout
    command: head -c 3000000 /dev/zero | tr '\\0' a | fold -w 100; echo done
  - name: after
    dependencies: [shout]
    command: echo after
"""


@pytest.fixture
def small_disk():
    """mount(folder, size): a tmpfs of that size at the folder, unmounted after the test. Root only: elsewhere the
    test skips saying so; as root a mount that fails is cannot_run (a failure under CI, where root can mount)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str = "1m") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("a size-limited file system is a tmpfs mount, which needs root")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if done.returncode:
            cannot_run(f"cannot mount a {size} tmpfs at {folder}: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; the file (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        return filler
    finally:
        os.close(fd)


def sound(db: Path) -> None:
    with sqlite3.connect(db) as cx:
        assert cx.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert cx.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_log_that_fills_the_disk_fails_its_task_clearly_and_the_job_ends(capsys, tmp_path, small_disk):
    repo = tmp_path / "repo"
    make_repo(repo, {"loud.yaml": LOUD})
    state = tmp_path / "state"
    small_disk(state / "logs", "256k")  # the database beside it has room: only the logs are full
    code, out, err = cli(capsys, "run", repo / "loud.yaml", "--state-dir", state)
    clean(err)
    assert code == 1
    assert "cannot write the log" in out and "(No space left on device): the task was stopped" in out
    assert "fasttrack-gitops gc" in out and "dependency 'shout' failed" in out
    with Store(state) as store:
        (view,) = store.list_jobs(limit=0)
        assert view.status.value == "failed"
        assert view.tasks["shout"].attempts[0].outcome.value == "failed"
    sound(state / "state.db")


def test_a_store_write_on_a_full_disk_is_refused_whole_and_the_database_stays_sound(tmp_path, small_disk):
    state = small_disk(tmp_path / "state", "1m")
    big = chain(300)  # a 300-task job: its rows need many pages
    with Store(state) as store:
        store.create_job(make_job(job_id="before", now=1.0))
        filler = fill(state)
        refused = None
        for i in range(20):  # the WAL may have room for a few; then the disk is full
            try:
                store.create_job(make_job(big, job_id=f"big{i}", now=2.0 + i))
            except StoreUnavailableError as e:
                refused = (f"big{i}", e)
                break
        assert refused is not None, "the disk never filled"
        job_id, error = refused
        assert str(error).startswith(f"the disk holding {state / 'state.db'} is full (database or disk is full)")
        assert "nothing of this change was stored" in str(error) and error.exit_code == 3
        stored = {v.job.id for v in store.list_jobs(limit=0)}
        assert "before" in stored and job_id not in stored  # all or nothing
        filler.unlink()
        store.create_job(make_job(big, job_id="after", now=100.0))  # room again: it works again
        assert store.view("after").job.id == "after"
    sound(state / "state.db")


def test_run_on_a_full_disk_says_so_and_exits_3(capsys, tmp_path, small_disk):
    repo = tmp_path / "repo"
    make_repo(repo, {"loud.yaml": LOUD})
    state = small_disk(tmp_path / "state", "1m")
    Store(state).close()
    filler = fill(state)
    code, out, err = cli(capsys, "run", repo / "loud.yaml", "--state-dir", state)
    clean(err)
    assert code == 3 and "is full" in err and "nothing of this change was stored" in err, err
    filler.unlink()
    sound(state / "state.db")
    with Store(state) as store:
        assert store.list_jobs(limit=0) == []
