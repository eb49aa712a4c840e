"""A task launcher started before any executor wants it (sandbox.start_early, from `run`), and taken by the first.

Real processes: the plain launcher, its process found by pid, a real shell task through it.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from conftest import wait_until
from engine.executors import local_fixtures
from engine.executors.local_fixtures import log_of

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors import sandbox
from fasttrack_gitops.engine.executors.local import LocalExecutor

make_spec = local_fixtures.make_spec  # the fixture these tests use
pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the launcher needs Linux >= 5.3")


def early_pid() -> int:
    assert sandbox._early is not None
    return sandbox._early[2].pid


def test_the_executor_takes_the_launcher_started_early_and_runs_tasks_through_it(make_spec):
    sandbox.start_early(None)
    started = early_pid()
    spec = make_spec("echo through the early one")
    executor = LocalExecutor(bwrap=False)

    async def main():
        try:
            result = await executor.run(spec, cancel=asyncio.Event(), started=lambda handle=None: None)
            assert executor.plain_launcher is not None
            return result, executor.plain_launcher.pid
        finally:
            await executor.close()

    result, used = asyncio.run(main())
    assert result.outcome == Outcome.SUCCEEDED and log_of(spec) == "through the early one\n"
    assert used == started and sandbox._early is None


def test_only_a_start_with_the_same_prefix_takes_it():
    sandbox.start_early(["/nonexistent/bwrap", "--die-with-parent"])  # cannot start: nothing is kept, nothing said
    assert sandbox._early is None
    sandbox.start_early(None)
    plain = early_pid()
    assert sandbox._take_early(["/usr/bin/bwrap", "--unshare-pid"]) is None  # a sandbox's start does not take it
    assert early_pid() == plain
    taken = sandbox._take_early(None)
    assert taken is not None and taken[1].pid == plain and sandbox._early is None
    taken[0].close()  # its socket closed: it exits
    assert wait_until(lambda: _ended(plain))


def test_a_launcher_started_early_and_never_taken_ends_when_another_is_started_or_we_go():
    sandbox.start_early(None)
    first = early_pid()
    sandbox.start_early(None)  # the first one's socket is closed: it exits
    assert wait_until(lambda: _ended(first))
    second = early_pid()
    sandbox._end_early()
    assert wait_until(lambda: _ended(second))


def _ended(pid: int) -> bool:
    """Exited (a zombie until subprocess reaps it, or gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
