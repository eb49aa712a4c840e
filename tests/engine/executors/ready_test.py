"""How the task launcher starts a task's process (sandbox_init.py): in the sandbox, forked before the task is asked
for (a ready child, Launcher._fork_ready); without it, with posix_spawn.

Real processes: the launcher (plain, or under bubblewrap), its ready child found in /proc, real shells.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from conftest import await_until, require_bwrap
from engine.executors import local_fixtures
from engine.executors.local_fixtures import descendants, log_of, process_table

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors.local import LocalExecutor
from fasttrack_gitops.engine.executors.sandbox import SandboxLauncher

make_spec = local_fixtures.make_spec  # the fixture these tests use
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX processes")


@pytest.fixture(params=["plain", "sandbox"])
def executor(request) -> LocalExecutor:
    if request.param == "sandbox":
        require_bwrap()
    return LocalExecutor(bwrap=request.param == "sandbox")


def launcher_of(executor: LocalExecutor) -> SandboxLauncher:
    launcher = executor.launcher if executor.bwrap else executor.plain_launcher
    assert launcher is not None and launcher.pid is not None
    return launcher


def ready_children(launcher: SandboxLauncher) -> list[int]:
    """The launcher's children that are still the launcher's program (forked, not exec'd yet): its ready ones."""
    assert launcher.pid is not None
    table = process_table()

    def is_launcher(pid: int) -> bool:  # Python running sandbox_init.py (not bubblewrap, whose argv names it too)
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return Path(os.fsdecode(argv[0])).name.startswith("python") and any(
            a.endswith(b"/sandbox_init.py") for a in argv
        )

    below = descendants(launcher.pid, table)  # under bubblewrap the launcher is bubblewrap's descendant
    return [pid for pid in below if is_launcher(pid) and is_launcher(table[pid][0])]


@pytest.fixture
def sandboxed(bwrap_works) -> LocalExecutor:
    return LocalExecutor(bwrap=True)


def test_between_tasks_the_next_tasks_process_is_forked_and_waits(sandboxed, make_spec):
    executor = sandboxed

    async def main():
        cancel = asyncio.Event()
        try:
            first = await executor.run(make_spec("true"), cancel=cancel, started=lambda handle=None: None)
            launcher = launcher_of(executor)
            await await_until(lambda: len(ready_children(launcher)) == 1)
            return first
        finally:
            await executor.close()

    assert asyncio.run(main()).outcome == Outcome.SUCCEEDED


def test_a_ready_process_killed_while_it_waited_is_replaced_and_the_task_runs(sandboxed, make_spec):
    executor = sandboxed
    spec = make_spec("echo second")

    async def main():
        cancel = asyncio.Event()
        try:
            await executor.run(make_spec("true"), cancel=cancel, started=lambda handle=None: None)
            launcher = launcher_of(executor)
            await await_until(lambda: len(ready_children(launcher)) == 1)
            (ready,) = ready_children(launcher)
            os.kill(ready, signal.SIGKILL)
            # Dead (a zombie the launcher has not reaped): killed while a request is on its way to it instead, the
            # task fails as one killed from outside just as it starts would.
            await await_until(lambda: Path(f"/proc/{ready}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z")
            return await executor.run(spec, cancel=cancel, started=lambda handle=None: None)
        finally:
            await executor.close()

    result = asyncio.run(main())
    assert result.outcome == Outcome.SUCCEEDED, result.message
    assert log_of(spec) == "second\n"


def test_without_the_sandbox_no_process_is_forked_ahead(make_spec):
    executor = LocalExecutor(bwrap=False)

    async def main():
        try:
            await executor.run(make_spec("true"), cancel=asyncio.Event(), started=lambda handle=None: None)
            await asyncio.sleep(0.2)
            return ready_children(launcher_of(executor))
        finally:
            await executor.close()

    assert asyncio.run(main()) == []


def test_a_task_starts_with_the_default_handling_of_every_signal_a_program_can_use(executor, make_spec):
    spec = make_spec("grep -E 'Sig(Ign|Blk)' /proc/$$/status")

    async def main():
        try:
            return await executor.run(spec, cancel=asyncio.Event(), started=lambda handle=None: None)
        finally:
            await executor.close()

    assert asyncio.run(main()).outcome == Outcome.SUCCEEDED
    masks = dict(line.split(":") for line in log_of(spec).splitlines())
    assert int(masks["SigBlk"], 16) == 0  # nothing blocked
    # nothing ignored (the launcher ignores SIGINT, Python SIGPIPE and SIGXFSZ) but glibc's own 32 and 33, which
    # its posix_spawn leaves ignored; no program can use them (glibc's SIGRTMIN is 34, and it sets them up itself)
    assert int(masks["SigIgn"], 16) & ~(1 << 31 | 1 << 32) == 0, masks


def test_the_handle_names_the_tasks_process_and_its_start_time(executor, make_spec):
    """The launcher reads the start time (the handle's guard against a reused pid) before the task is asked for:
    it must still be that of the process running the task."""
    handles: list[dict] = []
    seen: list[int] = []

    async def main():
        cancel = asyncio.Event()
        try:
            running = asyncio.ensure_future(
                executor.run(make_spec("sleep 2"), cancel=cancel, started=lambda handle=None: handles.append(handle))
            )
            await await_until(lambda: handles)
            pid = handles[0]["pgid"]
            await await_until(lambda: b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes())  # the shell exec'd it
            seen.append(int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19]))
            cancel.set()
            return await running
        finally:
            await executor.close()

    assert asyncio.run(main()).outcome == Outcome.CANCELLED
    assert handles[0]["start"] == seen[0]
