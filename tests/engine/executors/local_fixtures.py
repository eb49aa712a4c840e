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
