"""What `run` shows while a job runs: a live table on a terminal, one line per change anywhere else.

A real `fasttrack-gitops run` process runs a small real pipeline (a real
git repository, the local executor). On a terminal it is given a pseudo-
terminal of a fixed size (TIOCSWINSZ, and COLUMNS/LINES for good measure) and
the test reads every byte it drew; the table's frames are read back with
the ANSI escapes stripped. Off a terminal its stderr is a pipe.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from conftest import console_script, git

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals and POSIX shells")

COLUMNS, LINES = 100, 30
PATIENCE = 60.0  # seconds the run may take before the test fails

# prepare runs long enough to be drawn running; train fails; report is skipped for it, docs by its own skip.
PIPELINE = """\
version: "26.4.4"
name: demo
tasks:
  - name: prepare
    command: sleep 1; echo prepared
  - name: train
    dependencies: [prepare]
    command: echo diverged; exit 1
  - name: report
    dependencies: [train]
    command: echo reported
  - name: docs
    skip: true
    command: echo docs
"""
FINAL = {
    "prepare": ("✓", "succeeded", ""),
    "train": ("✗", "failed", "exit code 1"),
    "report": ("-", "skipped", "dependency 'train' failed"),
    "docs": ("-", "skipped", "skip: true"),
}
ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")  # CSI (colour, cursor, erase) and OSC
TITLE = re.compile(r"^demo  job (?P<job>\S+)  (?P<done>\d+)/4 done  \d+s$")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines" / "demo.yaml").write_text(PIPELINE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "demo")
    return repo


def environment(tmp_path: Path) -> dict[str, str]:
    """A plain terminal session's variables; nothing of the test runner's that would change how rich draws."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(LINES),
        "FTG_BWRAP": "0",
    }


def command(repo: Path, state: Path) -> list[str]:
    return [
        console_script(),
        "run",
        str(repo / "pipelines/demo.yaml"),
        "--executor",
        "local",
        "--state-dir",
        str(state),
    ]


def run_on_a_terminal(repo: Path, state: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run on a pseudo-terminal of COLUMNS x LINES; (exit code, everything it wrote there, decoded)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    try:
        proc = subprocess.Popen(
            command(repo, state), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    drawn = bytearray()
    deadline = time.monotonic() + PATIENCE
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"run did not end within {PATIENCE:g}s; it drew:\n{drawn.decode(errors='replace')}"
                )
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not chunk:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(PATIENCE), drawn.decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def frames(drawn: str) -> list[tuple[re.Match, list[dict[str, str]]]]:
    """Each frame the live table drew: (its title's match, its rows as {column heading: cell})."""
    lines = [ESCAPE.sub("", line).rstrip() for line in re.split(r"\r\n|\r|\n", drawn)]
    found = []
    for i, line in enumerate(lines):
        if title := TITLE.match(line):
            found.append((title, [cells(lines[i + 1], row) for row in lines[i + 2 : i + 2 + len(FINAL)]]))
    return found


def cells(header: str, row: str) -> dict[str, str]:
    """A row cut where the column headings begin (the icon's column has none)."""
    headings = ["task", "state", "time", "attempts", "note"]
    assert header.split() == headings, header
    starts = [0, *(header.index(f" {h}") + 1 for h in headings), len(row) + 1]
    return {name: row[a:b].strip() for name, a, b in zip(["icon", *headings], starts, starts[1:])}


def test_on_a_terminal_the_live_table_shows_each_tasks_final_state(tmp_path, repo):
    code, drawn = run_on_a_terminal(repo, tmp_path / "state", environment(tmp_path))

    assert code == 1, drawn
    drawn_frames = frames(drawn)
    assert len(drawn_frames) >= 2, f"the table was not redrawn as the job ran:\n{drawn}"
    title, rows = drawn_frames[-1]
    assert title["done"] == "4"
    assert {r["task"]: (r["icon"], r["state"], r["note"]) for r in rows} == FINAL
    assert [r["task"] for r in rows] == list(FINAL), "the tasks in the pipeline's order"
    assert [r["attempts"] for r in rows] == ["1", "1", "", ""]
    earlier = [{r["task"]: r["state"] for r in rows} for _, rows in drawn_frames[:-1]]
    assert any(states["prepare"] == "running" for states in earlier), "a running task is drawn running"
    assert len({t["job"] for t, _ in drawn_frames}) == 1
    plain = [ESCAPE.sub("", line) for line in re.split(r"\r\n|\r|\n", drawn)]
    assert max(len(line) for line in plain) <= COLUMNS, "the table fits the terminal"
    assert "\x1b[1A" in drawn, "each frame is drawn over the one before"
    # transient: the table gives way to the job's summary, which is printed after it
    summary = drawn[drawn.rindex("\x1b[2K") :]
    assert f"job {title['job']}  demo  failed" in ESCAPE.sub("", summary)


def test_off_a_terminal_each_change_is_one_line(tmp_path, repo):
    proc = subprocess.run(
        command(repo, tmp_path / "state"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=PATIENCE,
    )

    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr, "no drawing where nothing can be redrawn"
    first, *changes = proc.stderr.splitlines()
    assert re.fullmatch(r"job \S+: demo \(4 tasks\)", first), first
    parsed = [re.fullmatch(r"\d\d:\d\d:\d\d (\S+) (.+)", line) for line in changes]
    assert all(parsed), changes
    said: dict[str, list[str]] = {}
    for match in parsed:
        said.setdefault(match[1], []).append(re.sub(r" in [0-9][0-9.hms]*", " in T", match[2]))
    assert said == {
        "prepare": ["submitted", "running attempt 1", "succeeded in T"],
        "train": ["submitted", "running attempt 1", "failed in T: exit code 1"],
        "report": ["skipped: dependency 'train' failed"],
        "docs": ["skipped: skip: true"],
    }
