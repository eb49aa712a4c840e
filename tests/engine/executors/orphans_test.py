"""No task process outlives the process that runs the local executor, even one killed with SIGKILL (issue 16, item 4).

A real Python process runs real tasks through a LocalExecutor (with the sandbox's launcher, with a bubblewrap per
task, without bubblewrap) and is killed with SIGKILL; every process the tasks started is found from /proc by a
variable it inherits (local_fixtures.marked), seen running before the kill, and must be gone within a second after:
in the task's group or not (setsid, a double fork, a group of its own), ignoring SIGTERM and SIGHUP, left behind by
a shell that ended at once, or started while the runner died.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PATIENCE, await_until, require_bwrap, wait_until
from engine.executors import local_fixtures
from engine.executors.local_fixtures import MARK, marked, none_marked_within

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors.local import LocalExecutor

make_spec = local_fixtures.make_spec  # the fixture a test here uses
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PID namespaces, subreapers and /proc are Linux's")

# The runner: one LocalExecutor running every command as a task at once, until it is killed.
RUNNER = """
import asyncio, json, sys
from pathlib import Path
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine.executors.base import AttemptSpec
from fasttrack_gitops.engine.executors.local import LocalExecutor

args = json.loads(sys.argv[1])
folder = Path(args["folder"])

async def main():
    executor = LocalExecutor(bwrap=args["bwrap"], launcher=args["launcher"])
    runs = []
    for i, command in enumerate(args["commands"]):
        spec = AttemptSpec(
            job_id="20261203-121500-0a0b0c", task=Task(name=f"t{i}", command=command), number=1, workdir=folder,
            outputs=folder / f"t{i}" / "outputs", inputs=(), vfroot=folder / "vfroot", env=args["env"],
            log_path=folder / f"t{i}.log", timeout=None,
        )
        runs.append(executor.run(spec, cancel=asyncio.Event(), started=lambda handle=None: None))
    await asyncio.gather(*runs)

asyncio.run(main())
"""

SETPGID = f"{sys.executable} -c 'import os, time; os.setpgid(0, 0); time.sleep(305)'"

# command -> the command line of the process it leaves that the test waits to see running
ESCAPES = {
    "sleep 301 & wait": "sleep 301",  # a background child in the task's group
    "setsid sleep 302 & wait": "sleep 302",  # a session (and group) of its own
    "(sleep 303 &); exec sleep 3030": "sleep 303",  # a double fork: its parent gone at once, it is reparented
    "trap '' TERM HUP; sleep 304 & wait": "sleep 304",  # ignores SIGTERM and SIGHUP (inherited)
    f"{SETPGID} & wait": SETPGID.replace("'", ""),  # the task's child moves to a group of its own
}
# The shell ends at once; its setsid child stays (but for a bubblewrap per task: its PID namespace ends with the
# shell), unless the group is killed (at the shell's end) before the child's setsid: it may be gone before we look.
ENDS_AT_ONCE = "setsid sleep 306 & exit 0"

MODES = [
    pytest.param({"bwrap": False, "launcher": True}, id="no-sandbox"),
    pytest.param({"bwrap": True, "launcher": True}, id="sandbox-launcher"),
    pytest.param({"bwrap": True, "launcher": False}, id="bwrap-per-task"),
]


def start_runner(tmp_path: Path, mode: dict, commands: list[str], mark: str) -> subprocess.Popen:
    (tmp_path / "vfroot").mkdir(exist_ok=True)
    args = {**mode, "folder": str(tmp_path), "commands": commands, "env": {MARK: mark}}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "runner.err", "wb"),  # noqa: SIM115 - the child holds it; read when a test fails
        env={**os.environ, "FTG_BWRAP": "1" if mode["bwrap"] else "0"},
        start_new_session=True,  # its own group, as `run` started from a shell is; our SIGKILL is for it alone
    )


def kill_leftovers(mark: str) -> None:
    for pid in marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def runners():
    """runners(tmp_path, mode, commands, mark) -> a started runner; whatever is left is killed at the end."""
    started: list[tuple[subprocess.Popen, str]] = []

    def _start(tmp_path: Path, mode: dict, commands: list[str], mark: str) -> subprocess.Popen:
        if mode["bwrap"]:
            require_bwrap()
        proc = start_runner(tmp_path, mode, commands, mark)
        started.append((proc, mark))
        return proc

    yield _start
    for proc, mark in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_leftovers(mark)


def running_all(mark: str, wanted: list[str], runner: subprocess.Popen, err: Path) -> dict[int, str]:
    if runner.poll() is not None:
        raise AssertionError(f"the runner exited with {runner.returncode}: {err.read_text()[-3000:]}")
    found = marked(mark)
    return found if all(w in found.values() for w in wanted) else {}


@pytest.mark.parametrize("mode", MODES)
def test_after_sigkill_of_the_runner_nothing_its_tasks_started_runs_within_a_second(runners, tmp_path, mode):
    mark = f"orphans-{os.getpid()}-{tmp_path.name}"
    runner = runners(tmp_path, mode, [*ESCAPES, ENDS_AT_ONCE], mark)
    wanted = list(ESCAPES.values())
    before = wait_until(
        lambda: running_all(mark, wanted, runner, tmp_path / "runner.err"),
        what=lambda: f"every escape running; running: {marked(mark)}",
    )
    assert len(before) >= len(ESCAPES) + 2  # and the shells still waiting, and the double fork's exec'd parent

    runner.send_signal(signal.SIGKILL)
    assert runner.wait(PATIENCE) == -signal.SIGKILL

    none_marked_within(mark, 1.0)


@pytest.mark.parametrize("mode", MODES)
def test_a_runner_killed_while_tasks_are_still_being_started_leaves_none_of_them(runners, tmp_path, mode):
    mark = f"starting-{os.getpid()}-{tmp_path.name}"
    commands = [f"setsid sleep {400 + i} & wait" for i in range(40)]
    runner = runners(tmp_path, mode, commands, mark)
    # the first task's child runs: the others are being started, or about to be
    wait_until(lambda: marked(mark) or runner.poll() is not None, interval=0.001, what="a first task to start")
    assert runner.poll() is None, (tmp_path / "runner.err").read_text()

    runner.send_signal(signal.SIGKILL)
    assert runner.wait(PATIENCE) == -signal.SIGKILL

    none_marked_within(mark, 1.0)


@pytest.mark.parametrize("mode", MODES[:2])
def test_a_normal_end_of_the_executor_leaves_nothing_either(runners, tmp_path, mode):
    """A task that ends at once leaving a setsid child: the executor's close (the end of `run`) ends the child."""
    if mode["bwrap"]:
        require_bwrap()
    mark = f"closed-{os.getpid()}-{tmp_path.name}"
    (tmp_path / "vfroot").mkdir()
    code = RUNNER.replace(
        "    await asyncio.gather(*runs)", "    await asyncio.gather(*runs)\n    await executor.close()"
    )
    args = {**mode, "folder": str(tmp_path), "commands": ["setsid sleep 501 & exit 0"], "env": {MARK: mark}}
    try:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, timeout=PATIENCE)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert (tmp_path / "t0.log").exists()
        none_marked_within(mark, 1.0)
    finally:
        kill_leftovers(mark)


def test_a_plain_launcher_killed_from_outside_ends_its_tasks_and_the_next_task_gets_a_new_one(make_spec, tmp_path):
    """Without the sandbox: its tasks' shells die with it (their parent-death signal), the next task starts."""
    first = make_spec("sleep 30", env={MARK: "plain-killed"})
    second = dataclasses.replace(make_spec("echo second"), log_path=tmp_path / "second.log")
    executor = LocalExecutor(bwrap=False)

    async def main():
        cancel = asyncio.Event()
        try:
            running = asyncio.ensure_future(executor.run(first, cancel=cancel, started=lambda handle=None: None))
            await await_until(lambda: "sleep 30" in marked("plain-killed").values())
            launcher = executor.plain_launcher
            assert launcher is not None and launcher.pid is not None
            os.kill(launcher.pid, signal.SIGKILL)
            ended = await asyncio.wait_for(running, PATIENCE)
            again = await executor.run(second, cancel=cancel, started=lambda handle=None: None)
            return ended, again
        finally:
            await executor.close()

    ended, again = asyncio.run(main())
    assert (ended.outcome, ended.exit_code) == (Outcome.FAILED, -9)  # the shell, `exec`ed into sleep, died with it
    none_marked_within("plain-killed", 1.0)
    assert again.outcome == Outcome.SUCCEEDED and (tmp_path / "second.log").read_text() == "second\n"


def test_a_plain_launcher_asked_to_stop_ends_what_its_tasks_left_first(make_spec):
    spec = make_spec("setsid sleep 30 & exec sleep 31", env={MARK: "plain-terminated"})
    executor = LocalExecutor(bwrap=False)

    async def main():
        try:
            running = asyncio.ensure_future(executor.run(spec, cancel=asyncio.Event(), started=lambda h=None: None))
            await await_until(lambda: {"sleep 30", "sleep 31"} <= set(marked("plain-terminated").values()))
            launcher = executor.plain_launcher
            assert launcher is not None and launcher.pid is not None
            os.kill(launcher.pid, signal.SIGTERM)
            return await asyncio.wait_for(running, PATIENCE)
        finally:
            await executor.close()

    ended = asyncio.run(main())
    assert (ended.outcome, ended.exit_code) == (Outcome.FAILED, -9)
    none_marked_within("plain-terminated", 1.0)  # the setsid escapee too
