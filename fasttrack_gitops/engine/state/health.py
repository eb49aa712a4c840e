"""The state database's health: an integrity check at open, `state check`, and `state backup` (SQLite's online backup).

A damaged database is found when it is opened (`PRAGMA quick_check`: it
reads every page but compares no index with its table, so it costs a few
milliseconds per megabyte; bench/gc_bench.py measures it) rather than in
the middle of a job, with a message that names the file and the way out:
put back a copy `state backup` made, or move the file aside and start a new
one (the jobs' logs and data folders stay where they are). `state check`
runs the full `integrity_check` and the foreign key check, and exits 1 on
any problem. A backup is a consistent snapshot taken while runners write.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.engine.state.errors import StoreUnavailableError

_SHOWN = 5  # problems named in a message; `state check` lists them all


def quick_check(cx: sqlite3.Connection, db: Path) -> None:
    """StoreUnavailableError naming the file and the way out when its pages are damaged."""
    problems = _lines(cx.execute(f"PRAGMA quick_check({_SHOWN})"))
    if problems != ["ok"]:
        raise damaged(db, problems)


def _lines(rows) -> list[str]:
    """SQLite's check rows as one problem a line (a row may hold several), without its "*** in database" banners."""
    return [line for (row,) in rows for line in str(row).splitlines() if line and not line.startswith("***")]


def damaged(db: Path, problems: list[str]) -> StoreUnavailableError:
    shown = "; ".join(problems[:_SHOWN]) + ("; ..." if len(problems) >= _SHOWN else "")
    return StoreUnavailableError(
        f"{db} is damaged ({shown}): put back a copy made by `fasttrack-gitops state backup`, or move the file "
        f"aside (mv {db} {db}.damaged) to start with an empty one; the jobs' logs and data folders stay. "
        f"`fasttrack-gitops state check --state-dir {db.parent}` lists every problem"
    )


def check(db: Path) -> list[str]:
    """Every problem SQLite's integrity and foreign key checks find in the file (read only); [] when it is sound."""
    if not db.is_file():
        raise UsageError(f"{db} does not exist: pass the --state-dir that `run` or `serve` use")
    try:
        cx = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as e:
        return [f"cannot open it: {e}"]
    try:
        for pragma in ("integrity_check", f"quick_check({_SHOWN})"):  # the second when the first stops at damage
            try:
                problems = _lines(cx.execute(f"PRAGMA {pragma}"))
                break
            except sqlite3.DatabaseError as e:
                problems = [str(e)]
        if problems != ["ok"]:
            return problems
        return [
            f"row {rowid} of {table} refers to a missing row of {parent}"
            for table, rowid, parent, _ in cx.execute("PRAGMA foreign_key_check")
        ]
    except sqlite3.DatabaseError as e:
        return [str(e)]
    finally:
        cx.close()


def backup(db: Path, to: Path | None = None) -> Path:
    """Copy the database to `to` (default: <state dir>/backups/state-<UTC time>.db) through SQLite's online backup
    API, consistent while others write; a file already at `to` is never overwritten."""
    if not db.is_file():
        raise UsageError(f"{db} does not exist: pass the --state-dir that `run` or `serve` use")
    if to is None:
        to = db.parent / "backups" / time.strftime("state-%Y%m%dT%H%M%SZ.db", time.gmtime())
    if to.exists():
        raise UsageError(f"{to} already exists: a backup never overwrites a file; give another --to")
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write a backup in {to.parent} ({e.strerror or e}): give another --to") from e
    partial = to.with_name(f".{to.name}.partial")
    try:
        source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        partial.rename(to)  # complete or absent
    except sqlite3.Error as e:
        partial.unlink(missing_ok=True)
        raise StoreUnavailableError(f"cannot back {db} up to {to} ({e}): check the disk, or give another --to") from e
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise StoreUnavailableError(f"cannot back {db} up to {to} ({e.strerror or e}): give another --to") from e
    return to
