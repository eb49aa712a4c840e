"""The local executor with real processes and real files: what a task sees, how it ends, what its log keeps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import alive

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine.executors import EXECUTORS, get_executor, local, processes
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec
from fasttrack_gitops.engine.executors.local import LocalExecutor

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


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
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def bwrap_usable() -> bool:
    return asyncio.run(LocalExecutor().sandboxed())


needs_bwrap = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is not installed or does not work here")


# -- success, output, environment -------------------------------------------


def test_a_task_succeeds_and_its_output_goes_to_the_log(make_spec):
    spec = make_spec("echo hello; echo to stderr >&2; pwd")
    result = run(spec)
    assert result.outcome == Outcome.SUCCEEDED and result.exit_code == 0 and result.message == ""
    assert result.started_at <= result.ended_at
    assert log_of(spec) == f"hello\nto stderr\n{spec.workdir}\n"


def test_started_is_called_once_the_process_runs(make_spec, tmp_path):
    calls = []
    spec = make_spec("true")

    async def main():
        return await LocalExecutor(bwrap=False).run(
            spec, cancel=asyncio.Event(), started=lambda handle=None: calls.append(1)
        )

    assert asyncio.run(main()).outcome == Outcome.SUCCEEDED
    assert calls == [1]


def test_the_task_gets_its_env_and_the_pipeline_paths_but_no_ftg_secrets(make_spec, monkeypatch):
    monkeypatch.setenv("FTG_SECRET_X", "parent-secret")
    monkeypatch.setenv("SOME_PARENT_VAR", "inherited")
    monkeypatch.setenv("PIPELINE_INPUT3", "/pipeline/input3")  # we run inside a FastTrack task ourselves
    spec = make_spec("env", env={"LR": "0.01", "PIPELINE_VFROOT": "overridden?", "TOKEN": "from-spec"})
    assert run(spec).outcome == Outcome.SUCCEEDED
    env = dict(line.split("=", 1) for line in log_of(spec).splitlines() if "=" in line)
    assert env["LR"] == "0.01" and env["TOKEN"] == "from-spec" and env["SOME_PARENT_VAR"] == "inherited"
    assert not any(name.startswith("FTG_SECRET_") for name in env)
    assert "PIPELINE_INPUT3" not in env
    assert env["PIPELINE_OUTPUT_ROOT"] == str(spec.outputs)
    assert env["PIPELINE_INPUT1"] == str(spec.inputs[0]) == env["PIPELINE_INPUT_ROOT"]
    assert env["PIPELINE_INPUT2"] == str(spec.inputs[1])
    assert env["PIPELINE_VFROOT"] == str(spec.vfroot)  # the PIPELINE_* variables win


def test_a_task_writes_its_outputs_and_reads_its_second_input(make_spec):
    spec = make_spec('cat "$PIPELINE_INPUT2/data.txt" > "$PIPELINE_OUTPUT_ROOT/model.txt"')
    assert not spec.outputs.exists()  # the executor creates it
    assert run(spec).outcome == Outcome.SUCCEEDED
    assert (spec.outputs / "model.txt").read_text() == "from the second\n"


# -- how a task ends ----------------------------------------------------------


def test_a_non_zero_exit_fails_with_its_code(make_spec):
    result = run(make_spec("echo oops; exit 3"))
    assert (result.outcome, result.exit_code, result.message) == (Outcome.FAILED, 3, "")


def test_a_task_killed_by_a_signal_fails_with_minus_the_signal(make_spec):
    result = run(make_spec("kill -9 $$"))
    assert (result.outcome, result.exit_code, result.message) == (Outcome.FAILED, -9, "killed by signal 9")


def test_a_timeout_kills_the_whole_group(make_spec, tmp_path):
    spec = make_spec(f"sleep 30 & echo $! > {tmp_path}/child; wait", timeout=0.5)
    began = time.monotonic()
    result = run(spec)
    assert time.monotonic() - began < 5
    assert result.outcome == Outcome.TIMED_OUT
    assert result.message == "timed out after 0.5s"
    assert result.ended_at - result.started_at >= 0.5
    assert gone(int((tmp_path / "child").read_text()))


def test_a_task_ignoring_sigterm_is_killed_after_the_grace(make_spec, tmp_path):
    spec = make_spec(f"trap '' TERM; echo $$ > {tmp_path}/pid; while :; do sleep 0.05; done", timeout=0.3)
    began = time.monotonic()
    result = run(spec, grace=0.3)
    assert 0.6 <= time.monotonic() - began < 5
    assert result.outcome == Outcome.TIMED_OUT and result.exit_code == -9
    assert gone(int((tmp_path / "pid").read_text()))


def test_cancel_stops_a_running_task(make_spec, tmp_path):
    spec = make_spec(f"echo $$ > {tmp_path}/pid; sleep 30")
    began = time.monotonic()
    result = run(spec, cancel_after=0.3)
    assert time.monotonic() - began < 5
    assert result.outcome == Outcome.CANCELLED
    assert gone(int((tmp_path / "pid").read_text()))


def test_an_attempt_cancelled_before_it_starts_does_not_run(make_spec, tmp_path):
    spec = make_spec(f"touch {tmp_path}/ran")

    async def main():
        cancel = asyncio.Event()
        cancel.set()
        return await LocalExecutor(bwrap=False).run(spec, cancel=cancel, started=lambda handle=None: None)

    assert asyncio.run(main()).outcome == Outcome.CANCELLED
    assert not (tmp_path / "ran").exists()


def test_closing_the_executor_stops_what_still_runs(make_spec):
    spec = make_spec("sleep 30")

    async def main():
        executor = LocalExecutor(bwrap=False)
        attempt = asyncio.ensure_future(executor.run(spec, cancel=asyncio.Event(), started=lambda handle=None: None))
        await asyncio.sleep(0.2)
        await executor.close()
        return attempt.result()

    began = time.monotonic()
    result = asyncio.run(main())
    assert result.outcome == Outcome.CANCELLED and result.message == "executor closed"
    assert time.monotonic() - began < 5


def test_a_background_child_left_behind_is_killed_and_does_not_hold_the_run(make_spec, tmp_path):
    # The child keeps the output pipe open; run() must not wait for it to close.
    spec = make_spec(f"sleep 300 & echo $! > {tmp_path}/child; echo parent done")
    began = time.monotonic()
    result = run(spec)
    assert time.monotonic() - began < 2
    assert result.outcome == Outcome.SUCCEEDED
    assert gone(int((tmp_path / "child").read_text()))
    assert log_of(spec) == "parent done\n"


def test_cancelling_the_run_coroutine_kills_the_task(make_spec, tmp_path):
    spec = make_spec(f"echo $$ > {tmp_path}/pid; sleep 30")

    async def main():
        attempt = asyncio.ensure_future(
            LocalExecutor(bwrap=False).run(spec, cancel=asyncio.Event(), started=lambda handle=None: None)
        )
        await asyncio.sleep(0.3)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt

    asyncio.run(main())
    assert gone(int((tmp_path / "pid").read_text()))


def test_without_pidfds_the_exit_is_polled(make_spec, monkeypatch, tmp_path):
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # before Linux 5.3, or not Linux
    assert run(make_spec("exit 4")).exit_code == 4
    spec = make_spec(f"sleep 300 & echo $! > {tmp_path}/child; sleep 30", timeout=0.3)
    assert run(spec).outcome == Outcome.TIMED_OUT
    assert gone(int((tmp_path / "child").read_text()))


# -- what cannot start ----------------------------------------------------------


def test_a_missing_working_directory_is_an_error_not_an_exception(make_spec, tmp_path):
    spec = make_spec("true", workdir=tmp_path / "nowhere")
    result = run(spec)
    assert result.outcome == Outcome.ERROR and result.exit_code is None
    assert result.message == f"working directory missing: {tmp_path / 'nowhere'}"
    assert "working directory missing" in log_of(spec)


def test_a_missing_shell_is_an_error(make_spec, tmp_path):
    spec = make_spec("true")
    result = run(spec, shell=str(tmp_path / "no-such-sh"))
    assert result.outcome == Outcome.ERROR
    assert "cannot start the task" in result.message and "no-such-sh" in result.message


def test_a_task_without_a_command_is_an_error(make_spec):
    result = run(make_spec(""))
    assert result.outcome == Outcome.ERROR and "has no command" in result.message


# -- the log ---------------------------------------------------------------------


def test_a_gigabyte_of_output_is_capped_quickly_with_flat_memory(make_spec):
    size = 1_000_000_000
    spec = make_spec(f"head -c {size} /dev/zero | tr '\\0' x; echo; echo the end")
    began = time.monotonic()
    result = run(spec)
    elapsed = time.monotonic() - began
    assert result.outcome == Outcome.SUCCEEDED
    assert elapsed < 60, f"1 GB took {elapsed:.1f}s"
    data = spec.log_path.read_bytes()
    head = tail = 1 << 20
    total = size + len(b"\nthe end\n")
    marker = b"\n[... %d bytes omitted ...]\n" % (total - head - tail)
    assert data == b"x" * head + marker + b"x" * (tail - 9) + b"\nthe end\n"


def test_head_and_tail_sizes_are_options(make_spec):
    spec = make_spec("seq 1 1000")
    assert run(spec, head=8, tail=13).outcome == Outcome.SUCCEEDED
    assert log_of(spec) == "1\n2\n3\n4\n[... 3872 bytes omitted ...]\n998\n999\n1000\n"


def test_secrets_are_masked_in_the_log_even_split_between_reads(make_spec, monkeypatch):
    monkeypatch.setattr(local, "READ_CHUNK", 7)  # tiny reads: every secret straddles several
    secret = "hunter2-correct-horse"
    spec = make_spec(
        'for i in 1 2 3 4 5 6 7 8; do printf "%.${i}s%s\\n" ........ "$TOKEN"; done; echo "$TOKEN" | cut -c1-10',
        env={"TOKEN": secret},
        masks=(secret,),
    )
    assert run(spec).outcome == Outcome.SUCCEEDED
    assert log_of(spec) == "".join(f"{'.' * i}***\n" for i in range(1, 9)) + secret[:10] + "\n"


def test_a_secret_in_a_big_output_is_masked(make_spec):
    secret = "hunter2-" + "s" * 40
    script = (
        'i=0; while [ $i -lt 40 ]; do head -c $((65536 - 20 + i)) /dev/zero | tr "\\0" "."; '
        'printf "%s\\n" "$TOKEN"; i=$((i + 1)); done'
    )
    spec = make_spec(script, env={"TOKEN": secret}, masks=(secret,))
    assert run(spec, head=1 << 30).outcome == Outcome.SUCCEEDED
    log = log_of(spec)
    assert secret not in log and log.count("***\n") == 40


def test_errors_are_masked_too(make_spec, tmp_path):
    spec = make_spec("true", workdir=tmp_path / "pw-is-letmein", masks=("letmein",))
    result = run(spec)
    assert "letmein" not in log_of(spec) and "pw-is-***" in log_of(spec)
    assert result.message.endswith("pw-is-***")


# -- the registry ------------------------------------------------------------------


def test_get_executor_builds_the_local_executor_with_options():
    executor = get_executor("local", bwrap=False, head=10)
    assert isinstance(executor, LocalExecutor) and executor.head == 10
    assert executor.name == "local" and executor.capacity() is None
    assert "local" in EXECUTORS


def test_an_unknown_executor_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown executor 'slurm'; known executors: backendai, local"):
        get_executor("slurm")


# -- bubblewrap ----------------------------------------------------------------------


@needs_bwrap
def test_under_bwrap_the_task_sees_the_pipeline_folder_where_fasttrack_mounts_it(make_spec):
    spec = make_spec(
        "env | grep ^PIPELINE_ | sort; cat /pipeline/input1/data.txt /pipeline/input2/data.txt; "
        "echo out > /pipeline/outputs/a; echo seed > /pipeline/output/b; echo shared > /pipeline/vfroot/c; "
        "test -d /usr && pwd"
    )
    result = run(spec, bwrap=True)
    assert result.outcome == Outcome.SUCCEEDED, log_of(spec)
    assert log_of(spec) == (
        "PIPELINE_INPUT1=/pipeline/input1\nPIPELINE_INPUT2=/pipeline/input2\nPIPELINE_INPUT_ROOT=/pipeline/input1\n"
        "PIPELINE_OUTPUT_ROOT=/pipeline/outputs\nPIPELINE_VFROOT=/pipeline/vfroot\n"
        f"from the first\nfrom the second\n{spec.workdir}\n"
    )
    assert (spec.outputs / "a").read_text() == "out\n" and (spec.outputs / "b").read_text() == "seed\n"
    assert (spec.vfroot / "c").read_text() == "shared\n"
    assert not os.path.lexists("/pipeline")  # nothing made on the host


@needs_bwrap
def test_under_bwrap_a_killed_shell_shows_as_exit_128_plus_the_signal(make_spec):
    result = run(make_spec("kill -9 $$"), bwrap=True)
    assert (result.outcome, result.exit_code, result.message) == (Outcome.FAILED, 137, "")


@needs_bwrap
def test_under_bwrap_a_timeout_still_kills_the_whole_group(make_spec, tmp_path):
    spec = make_spec(f"sleep 30 & echo $! > {tmp_path}/child; wait", timeout=0.5)
    began = time.monotonic()
    result = run(spec, bwrap=None)
    assert result.outcome == Outcome.TIMED_OUT and time.monotonic() - began < 5
    assert gone(int((tmp_path / "child").read_text()))


@needs_bwrap
def test_under_bwrap_a_left_behind_child_is_killed(make_spec, tmp_path):
    spec = make_spec(f"sleep 300 & echo $! > {tmp_path}/child")
    began = time.monotonic()
    assert run(spec, bwrap=True).outcome == Outcome.SUCCEEDED
    assert time.monotonic() - began < 2
    assert gone(int((tmp_path / "child").read_text()))


def test_without_bwrap_the_executor_falls_back_quietly_or_errors_when_required(make_spec, monkeypatch):
    monkeypatch.setattr(local.shutil, "which", lambda name: None)
    spec = make_spec('echo "$PIPELINE_OUTPUT_ROOT"')
    assert run(spec, bwrap=None).outcome == Outcome.SUCCEEDED
    assert log_of(spec) == f"{spec.outputs}\n"
    required = run(spec, bwrap=True)
    assert required.outcome == Outcome.ERROR
    assert required.message == "bubblewrap is required but does not work here: bwrap is not installed"


def test_the_bwrap_probe_runs_once_per_executor(make_spec, monkeypatch):
    probes = []
    original = LocalExecutor._probe_bwrap

    async def counting(self):
        probes.append(1)
        return await original(self)

    monkeypatch.setattr(LocalExecutor, "_probe_bwrap", counting)
    executor = LocalExecutor()

    async def main():
        cancel = asyncio.Event()
        return await asyncio.gather(
            *(
                executor.run(make_spec("true", log_path=spec_log(i)), cancel=cancel, started=lambda handle=None: None)
                for i in range(4)
            )
        )

    def spec_log(i: int) -> Path:
        return make_spec("true").log_path.with_name(f"{i}.log")

    assert all(r.outcome == Outcome.SUCCEEDED for r in asyncio.run(main()))
    assert probes == [1]


# -- handles: finding, and stopping, what a runner that died left running ---------------------------------------


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
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.01)
    return int(path.read_text())


def test_the_handle_names_the_group_leader_its_start_time_and_the_boot(group):
    proc = group("sleep 300")
    handle = processes.process_handle(proc.pid)
    assert handle["pgid"] == proc.pid == os.getpgid(proc.pid)
    assert isinstance(handle["start"], int)
    assert handle["start"] == int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    assert handle["boot"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert json.loads(json.dumps(handle)) == handle  # stored as JSON with the attempt


def test_run_hands_the_runner_the_handle_of_the_task_shell(make_spec):
    handles = []
    spec = make_spec("echo $$")

    async def main():
        return await LocalExecutor(bwrap=False).run(spec, cancel=asyncio.Event(), started=handles.append)

    assert asyncio.run(main()).outcome == Outcome.SUCCEEDED
    (handle,) = handles
    assert handle["pgid"] == int(log_of(spec)) and handle["start"] is not None


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

    time.sleep(0.2)
    assert stranger.poll() is None and alive(stranger.pid)


def test_a_handle_from_before_the_machine_restarted_is_not_signalled(group):
    proc = group("sleep 300")
    handle = {**processes.process_handle(proc.pid), "boot": "00000000-0000-0000-0000-000000000000"}

    assert processes.stop_orphan(handle) == f"its process group {proc.pid} ended with the machine's restart"

    time.sleep(0.2)
    assert proc.poll() is None


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


def test_reattach_stops_the_orphan_and_reports_the_attempt_interrupted(make_spec, group, tmp_path):
    spec = make_spec("sleep 300")
    spec.log_path.parent.mkdir(parents=True)
    spec.log_path.write_text("what the task wrote before its runner died\n")
    proc = group(f"sleep 300 & echo $! > {tmp_path}/child; wait")
    child = written_pid(tmp_path / "child")

    async def main():
        return await LocalExecutor(bwrap=False).reattach(
            spec, processes.process_handle(proc.pid), cancel=asyncio.Event(), started=lambda handle=None: None
        )

    result = asyncio.run(main())

    message = f"interrupted: the runner stopped while it ran; its process group {proc.pid}, still running, was stopped"
    assert (result.outcome, result.exit_code, result.message) == (Outcome.INTERRUPTED, None, message)
    assert proc.wait(timeout=30) == -signal.SIGKILL and gone(child, within=30)
    assert log_of(spec) == f"what the task wrote before its runner died\n\nfasttrack-gitops: {message}\n"
