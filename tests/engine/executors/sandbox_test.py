"""The sandbox's launcher (sandbox.py, sandbox_init.py): one bubblewrap, each task with a /pipeline of its own.

Real processes throughout: the launcher under bubblewrap, real shells, real folders. Where bubblewrap does
not work these tests do not run (under CI they fail instead, like every needs_bwrap test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import await_until
from engine.executors import local_fixtures
from engine.executors.local_fixtures import MARK, descendants, log_of, marked, none_marked_within, process_table

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine.executors.local import LocalExecutor

make_spec = local_fixtures.make_spec  # the fixture these tests use
GLIBC_INTERNAL_SIGNALS = 1 << 31 | 1 << 32  # SigIgn's bits for signals 32 and 33
pytestmark = [pytest.mark.skipif(os.name != "posix", reason="POSIX shells"), pytest.mark.usefixtures("bwrap_works")]


def attempts(executor: LocalExecutor, specs, *, during=None):
    """Run the specs at once on one executor (closed after); `during(executor)` runs while they do."""

    async def main():
        cancel = asyncio.Event()
        runs = [executor.run(s, cancel=cancel, started=lambda handle=None: None) for s in specs]
        try:
            if during is None:
                return await asyncio.gather(*runs)
            gathered = asyncio.gather(*runs)
            await during(executor)
            return await gathered
        finally:
            await executor.close()

    return asyncio.run(main())


def task_spec(make_spec, tmp_path: Path, name: str, command: str):
    spec = make_spec(command)
    return dataclasses.replace(
        spec,
        task=Task(name=name, command=command),
        outputs=tmp_path / "data" / name / "outputs",
        log_path=tmp_path / "logs" / name / "1.log",
    )


def test_tasks_running_at_once_each_see_their_own_outputs_at_the_same_path(make_spec, tmp_path):
    specs = [
        task_spec(make_spec, tmp_path, name, f"sleep 0.2; echo {name} > /pipeline/outputs/who; ls /pipeline")
        for name in ("a", "b", "c")
    ]
    results = attempts(LocalExecutor(bwrap=True), specs)
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED] * 3, [log_of(s) for s in specs]
    for spec in specs:
        assert (spec.outputs / "who").read_text() == f"{spec.task.name}\n"
        assert log_of(spec).split() == ["input1", "input2", "output", "outputs", "vfroot"]
    assert not os.path.lexists("/pipeline")  # nothing made on the host


def test_a_task_keeps_our_user_and_group_ids_and_starts_with_default_signal_handling(make_spec, tmp_path):
    spec = make_spec("id -u; id -g; touch /pipeline/outputs/mine; grep SigIgn /proc/$$/status")
    (result,) = attempts(LocalExecutor(bwrap=True), [spec])
    assert result.outcome == Outcome.SUCCEEDED, log_of(spec)
    uid, gid, label, ignored = log_of(spec).split()
    assert [uid, gid, label] == [str(os.getuid()), str(os.getgid()), "SigIgn:"]
    # nothing ignored: not SIGINT (the launcher's), nor SIGPIPE and SIGXFSZ (Python's); but for glibc's own 32 and 33,
    # which its posix_spawn leaves ignored and no program can use (glibc's SIGRTMIN is 34; it sets them up itself)
    assert int(ignored, 16) & ~GLIBC_INTERNAL_SIGNALS == 0, ignored
    assert (spec.outputs / "mine").stat().st_uid == os.getuid()


def test_a_task_inherits_no_descriptor_of_ours_but_its_three(make_spec):
    spec = make_spec("ls /proc/self/fd")
    (result,) = attempts(LocalExecutor(bwrap=True), [spec])
    assert result.outcome == Outcome.SUCCEEDED
    assert set(log_of(spec).split()) <= {"0", "1", "2", "3"}  # 3: ls's own listing of the folder


def test_a_timeout_kills_the_whole_group_started_through_the_launcher(make_spec, tmp_path):
    spec = make_spec("sleep 30 & wait", timeout=1.5, env={MARK: "timeout"})
    seen: list[dict[int, str]] = []

    async def look(executor: LocalExecutor) -> None:
        seen.append(await await_until(lambda: "sleep 30" in marked("timeout").values() and marked("timeout")))

    began = time.monotonic()
    (result,) = attempts(LocalExecutor(bwrap=True), [spec], during=look)
    assert result.outcome == Outcome.TIMED_OUT and time.monotonic() - began < 5
    assert seen, "the task's child was seen running"
    none_marked_within("timeout")


def test_a_task_sees_its_own_pids_in_its_own_proc(make_spec):
    # the sandbox's PID namespace comes with a /proc of its own: the pid a task has is the one /proc shows it as
    spec = make_spec('read pid rest < /proc/self/stat; echo "$$ $pid"; ls /proc | grep -c "^[0-9]"')
    (result,) = attempts(LocalExecutor(bwrap=True), [spec])
    assert result.outcome == Outcome.SUCCEEDED, log_of(spec)
    mine, own_view, processes = log_of(spec).split()
    assert mine == own_view
    assert int(processes) < 10  # the sandbox's few (its init, the launcher, this task, ls, grep), not the host's


def test_a_launcher_killed_from_outside_ends_its_tasks_and_the_next_task_gets_a_new_one(make_spec, tmp_path):
    first = task_spec(make_spec, tmp_path, "first", f"touch {tmp_path}/pid; sleep 30 & exec sleep 31")
    first = dataclasses.replace(first, env={MARK: "killed-launcher"})
    second = task_spec(make_spec, tmp_path, "second", "echo second > /pipeline/outputs/x")

    async def kill_the_launcher(executor: LocalExecutor) -> None:
        await await_until(lambda: len(marked("killed-launcher")) == 2)
        launcher = executor.launcher
        assert launcher is not None and launcher.pid is not None
        os.kill(launcher.pid, signal.SIGKILL)  # bwrap: the launcher dies with it (--die-with-parent)

    executor = LocalExecutor(bwrap=True)

    async def main():
        cancel = asyncio.Event()
        try:
            run_first = asyncio.ensure_future(executor.run(first, cancel=cancel, started=lambda handle=None: None))
            await kill_the_launcher(executor)
            ended = await asyncio.wait_for(run_first, 10)
            again = await executor.run(second, cancel=cancel, started=lambda handle=None: None)
            return ended, again
        finally:
            await executor.close()

    ended, again = asyncio.run(main())
    assert ended.outcome == Outcome.FAILED and ended.exit_code == -9  # its process died with the launcher
    none_marked_within("killed-launcher")  # and its child: the launcher's PID namespace ended
    assert again.outcome == Outcome.SUCCEEDED, log_of(second)
    assert (second.outputs / "x").read_text() == "second\n"


def test_closing_the_executor_ends_its_launcher(make_spec):
    executor = LocalExecutor(bwrap=True)
    (result,) = attempts(executor, [make_spec("true")])
    assert result.outcome == Outcome.SUCCEEDED
    assert executor.launcher is not None and not executor.launcher.running and executor.launcher.pid is None


def test_a_large_environment_reaches_the_task_whole(make_spec):
    # 400 KB in all: far beyond one datagram of the launcher's socket, within what execve takes
    env = {f"BIG{i}": str(i) * 100_000 for i in range(4)}
    spec = dataclasses.replace(make_spec('echo ${#BIG0} ${#BIG1} ${#BIG2} ${#BIG3} "${BIG3%"${BIG3#?}"}"'), env=env)
    (result,) = attempts(LocalExecutor(bwrap=True), [spec])
    assert result.outcome == Outcome.SUCCEEDED, log_of(spec)
    assert log_of(spec) == "100000 100000 100000 100000 3\n"


def test_a_fan_of_three_hundred_tasks_started_at_once_all_start(make_spec, tmp_path):
    """More requests at once than the launcher's socket queues (EAGAIN): they wait for room, none fails to start.
    Found by the console's 200-task browser test, where a 198-task fan failed 'Resource temporarily unavailable'."""
    specs = [task_spec(make_spec, tmp_path, f"t{i:03d}", "echo ok > /pipeline/outputs/x") for i in range(300)]
    zombies: list[int] = []

    async def count_zombies(executor: LocalExecutor) -> None:
        # once every task has ended and been reaped: the launcher holds no zombie (the reap requests got through)
        while any(not (s.outputs / "x").exists() for s in specs):
            await asyncio.sleep(0.05)
        launcher = executor.launcher
        assert launcher is not None and launcher.pid is not None
        for _ in range(100):
            zombies[:] = _zombie_children_below(launcher.pid)
            if not zombies:
                return
            await asyncio.sleep(0.05)

    results = attempts(LocalExecutor(bwrap=True), specs, during=count_zombies)
    failed = [(s.task.name, r.outcome, r.message) for s, r in zip(specs, results) if r.outcome != Outcome.SUCCEEDED]
    assert failed == [], failed[:3]
    assert zombies == []


def _zombie_children_below(pid: int) -> list[int]:
    """Zombies among the descendants of `pid` (bubblewrap -> launcher -> tasks), from /proc."""
    table = process_table()
    return [child for child in descendants(pid, table) if table[child][1] == "Z"]
