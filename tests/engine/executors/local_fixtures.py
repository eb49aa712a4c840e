"""Attempts to hand the local executor, and real process groups, for the tests of local.py, bubblewrap.py, processes.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import alive, wait_until

from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec
from fasttrack_gitops.engine.executors.local import LocalExecutor


@pytest.fixture
def make_spec(tmp_path: Path):
    """make_spec('echo hi', timeout=1) -> an AttemptSpec with two inputs, in folders under tmp_path."""
    for name in ("work", "in1", "in2", "vfroot"):
        (tmp_path / name).mkdir()
    (tmp_path / "in1" / "data.txt").write_text("from the first\n")
    (tmp_path / "in2" / "data.txt").write_text("from the second\n")

    def _make(command: str, **changes) -> AttemptSpec:
        spec = AttemptSpec(
            job_id="20261128-101530-3fa9c1",
            task=Task(name="train", command=command),
            number=1,
            workdir=tmp_path / "work",
            outputs=tmp_path / "data" / "train" / "outputs",
            inputs=(tmp_path / "in1", tmp_path / "in2"),
            vfroot=tmp_path / "vfroot",
            env={},
            log_path=tmp_path / "logs" / "train" / "1.log",
            timeout=None,
        )
        return dataclasses.replace(spec, **changes)

    return _make


def run(
    spec: AttemptSpec, *, executor: LocalExecutor | None = None, cancel_after: float | None = None, **options
) -> AttemptResult:
    """One attempt on a fresh loop; by default without bubblewrap, so results do not depend on the machine."""
    options.setdefault("bwrap", False)
    executor = executor or LocalExecutor(**options)

    async def main() -> AttemptResult:
        cancel = asyncio.Event()
        if cancel_after is not None:
            asyncio.get_running_loop().call_later(cancel_after, cancel.set)
        return await executor.run(spec, cancel=cancel, started=lambda handle=None: None)

    return asyncio.run(main())


def log_of(spec: AttemptSpec) -> str:
    return spec.log_path.read_text()


def gone(pid: int, within: float = 2.0) -> bool:
    """True once process pid has ended; fails the test, naming it, when it still runs after `within` seconds."""
    return wait_until(lambda: not alive(pid), timeout=within, interval=0.01, what=f"process {pid} to end")


@pytest.fixture
def group(tmp_path):
    """group('sh command') -> a real process group (a shell leading its own session); killed at the end."""
    started: list[subprocess.Popen] = []

    def _start(command: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command], cwd=tmp_path, start_new_session=True, stdin=subprocess.DEVNULL
        )
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        if proc.poll() is None:  # not reaped: the pid, and so the group id, is still this one's
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def written_pid(path: Path) -> int:
    return int(wait_until(lambda: path.exists() and path.read_text().strip(), what=f"a pid in {path}"))


MARK = "FTG_TEST_MARK"  # a variable every process of a test's tasks inherits, by which the test finds them


def marked(mark: str) -> dict[int, str]:
    """Living processes (pids as this test sees them) whose environment holds FTG_TEST_MARK=mark, with their
    command lines: every process a task started, in its group or not, in a PID namespace or not, is found, since
    a task's pids ($$, $!) may be its namespace's and so name nothing here."""
    wanted = f"{MARK}={mark}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # ended meanwhile, or not ours
            continue
        if wanted in environ.split(b"\0") and alive(int(entry)):
            found[int(entry)] = command.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def none_marked_within(mark: str, seconds: float = 1.0) -> None:
    """Fails, naming what still runs, unless no process of the mark's is alive within `seconds`."""
    wait_until(lambda: not marked(mark), timeout=seconds, interval=0.01, what=lambda: f"these to end: {marked(mark)}")


def process_table() -> dict[int, tuple[int, str]]:
    """Every process now, from /proc: pid -> (its parent's pid, its state letter: R, S, Z...)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()  # after the name
        except (OSError, IndexError):  # ended meanwhile
            continue
        table[int(entry)] = (int(fields[1]), fields[0].decode())
    return table


def descendants(pid: int, table: dict[int, tuple[int, str]]) -> list[int]:
    """The pids below `pid` in `table` (process_table), children and theirs."""
    children: dict[int, list[int]] = {}
    for child, (parent, _state) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found
