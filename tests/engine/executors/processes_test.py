"""Local task processes: a process group followed to its end, and the handle that finds, and stops, one after a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import alive
from engine.executors import local_fixtures
from engine.executors.local_fixtures import gone, run, written_pid

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors import processes

group, make_spec = local_fixtures.group, local_fixtures.make_spec  # the fixtures these tests use
pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")


# -- a process group followed on the event loop ------------------------------------------------------------------


def test_without_pidfds_the_exit_is_polled(make_spec, monkeypatch, tmp_path):
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # before Linux 5.3, or not Linux
    assert run(make_spec("exit 4")).exit_code == 4
    spec = make_spec(f"sleep 300 & echo $! > {tmp_path}/child; sleep 30", timeout=0.3)
    assert run(spec).outcome == Outcome.TIMED_OUT
    assert gone(int((tmp_path / "child").read_text()))


# -- handles: finding, and stopping, what a runner that died left running ---------------------------------------


def test_the_handle_names_the_group_leader_its_start_time_and_the_boot(group):
    proc = group("sleep 300")
    handle = processes.process_handle(proc.pid)
    assert handle["pgid"] == proc.pid == os.getpgid(proc.pid)
    assert isinstance(handle["start"], int)
    assert handle["start"] == int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    assert handle["boot"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert json.loads(json.dumps(handle)) == handle  # stored as JSON with the attempt


def test_stop_orphan_kills_the_whole_group_it_names(group, tmp_path):
    proc = group(f"sleep 300 & echo $! > {tmp_path}/child; wait")
    child = written_pid(tmp_path / "child")
    handle = processes.process_handle(proc.pid)

    assert processes.stop_orphan(handle) == f"its process group {proc.pid}, still running, was stopped"

    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert gone(child, within=30)


def test_stop_orphan_of_a_group_that_ended_says_so(group):
    proc = group("true")
    handle = processes.process_handle(proc.pid)
    assert proc.wait(timeout=30) == 0

    assert processes.stop_orphan(handle) == f"its process group {proc.pid} had already ended"


def test_stop_orphan_kills_what_is_left_of_a_group_whose_leader_ended(group, tmp_path):
    proc = group(f"sleep 300 & echo $! > {tmp_path}/child")  # the shell exits, its child stays in the group
    handle = processes.process_handle(proc.pid)
    child = written_pid(tmp_path / "child")
    assert proc.wait(timeout=30) == 0  # reaped: no process has the leader's pid, the group still has its id
    assert alive(child) and os.getpgid(child) == proc.pid

    try:
        assert processes.stop_orphan(handle) == f"its process group {proc.pid}, still running, was stopped"

        assert gone(child, within=30)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_pid_now_used_by_another_process_is_not_signalled(group):
    """The kernel gave the pid to someone else: its start time differs from the one recorded."""
    stranger = group("sleep 300")
    handle = {**processes.process_handle(stranger.pid)}
    handle["start"] -= 1  # the process the handle was made for started one tick earlier: not this one

    assert processes.stop_orphan(handle) == f"its process group {stranger.pid} had already ended"

    assert dies_of_the_next_signal(stranger)


def test_a_handle_from_before_the_machine_restarted_is_not_signalled(group):
    proc = group("sleep 300")
    handle = {**processes.process_handle(proc.pid), "boot": "00000000-0000-0000-0000-000000000000"}

    assert processes.stop_orphan(handle) == f"its process group {proc.pid} ended with the machine's restart"

    assert dies_of_the_next_signal(proc)


def dies_of_the_next_signal(proc: subprocess.Popen) -> bool:
    """Whether the process, sent SIGPROF now, dies of it: proof, without waiting a while, that no signal came before.

    SIGKILL ends a process at once, and a lower-numbered signal still pending (SIGTERM, ...) is delivered
    before SIGPROF: either way it would die of that one instead.
    """
    proc.send_signal(signal.SIGPROF)
    return proc.wait(timeout=10) == -signal.SIGPROF


# Never a handle whose pgid is, or could be taken for, 1 (True == 1): as root, killpg(1) is every process of
# init's group, whoever calls it. Handles that would hit the caller's own group are tried in a child process.


@pytest.mark.parametrize("handle", [None, {}, {"pgid": None}, {"pgid": "1234"}, {"pgid": 12.0}])
def test_without_a_usable_handle_nothing_is_signalled(handle):
    assert processes.stop_orphan(handle) == "no process was recorded for it"


def test_a_handle_naming_our_own_group_or_no_real_group_is_refused():
    """killpg(0) (or False) is the caller's own group, killpg(-n) an error: checked in a child in a session of
    its own, so a regression kills only that child."""
    script = textwrap.dedent("""\
        import os
        from fasttrack_gitops.engine.executors.processes import stop_orphan
        print(os.getpgrp())
        for pgid in (os.getpgrp(), 0, -5):
            print(stop_orphan({"pgid": pgid}))
        print(stop_orphan({"pgid": False}))
        print("survived")
        """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, start_new_session=True
    )
    own, *lines = done.stdout.splitlines()
    assert lines[-1:] == ["survived"], done.stderr
    assert lines[:3] == [
        f"the recorded process group {pgid} is not a task's own, so it was left alone" for pgid in (own, 0, -5)
    ]
    assert lines[3] == "no process was recorded for it"
