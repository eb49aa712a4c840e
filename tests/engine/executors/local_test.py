"""The local executor with real processes and real files: what a task sees, how it ends, what its log keeps."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from engine.executors import local_fixtures
from engine.executors.local_fixtures import gone, log_of, run, written_pid

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors import EXECUTORS, get_executor, local, processes
from fasttrack_gitops.engine.executors.local import LocalExecutor

group, make_spec = local_fixtures.group, local_fixtures.make_spec  # the fixtures these tests use
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


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
    assert time.monotonic() - began < 5  # the bound is the behaviour: the timeout fires, long before the sleep ends
    assert result.outcome == Outcome.TIMED_OUT
    assert result.message == "timed out after 0.5s"
    assert result.ended_at - result.started_at >= 0.5
    assert gone(int((tmp_path / "child").read_text()))


def test_a_task_ignoring_sigterm_is_killed_after_the_grace(make_spec, tmp_path):
    spec = make_spec(f"trap '' TERM; echo $$ > {tmp_path}/pid; while :; do sleep 0.05; done", timeout=0.3)
    began = time.monotonic()
    result = run(spec, grace=0.3)
    assert 0.6 <= time.monotonic() - began < 5  # the bounds are the behaviour: the grace is given, then the kill comes
    assert result.outcome == Outcome.TIMED_OUT and result.exit_code == -9
    assert gone(int((tmp_path / "pid").read_text()))


def test_cancel_stops_a_running_task(make_spec, tmp_path):
    spec = make_spec(f"echo $$ > {tmp_path}/pid; sleep 30")
    began = time.monotonic()
    result = run(spec, cancel_after=0.3)
    assert time.monotonic() - began < 5  # the bound is the behaviour: cancelling stops it, long before the sleep ends
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
    assert time.monotonic() - began < 5  # the bound is the behaviour: closing stops it, long before the sleep ends


def test_a_background_child_left_behind_is_killed_and_does_not_hold_the_run(make_spec, tmp_path):
    # The child keeps the output pipe open; run() must not wait for it to close. Had it waited, the child
    # would have lived out its sleep and left its mark.
    spec = make_spec(f"(sleep 300; touch {tmp_path}/outlived) & echo $! > {tmp_path}/child; echo parent done")
    result = run(spec)
    assert result.outcome == Outcome.SUCCEEDED
    assert gone(int((tmp_path / "child").read_text()))
    assert not (tmp_path / "outlived").exists()
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


def test_a_gigabyte_of_output_is_capped_with_flat_memory(make_spec):
    """The output streams through the executor into the log's head and tail; it is never held in memory.

    How fast it goes is bench/log_bench.py's figure.
    """
    size = 1_000_000_000
    spec = make_spec(f"head -c {size} /dev/zero | tr '\\0' x; echo; echo the end")
    forget_peak_memory()
    before = memory_kib("VmRSS")
    result = run(spec)
    grown = memory_kib("VmHWM") - before
    assert result.outcome == Outcome.SUCCEEDED
    assert grown < 100 * 1024, f"this process's peak memory grew by {grown // 1024} MiB for 1 GB of output"
    data = spec.log_path.read_bytes()
    head = tail = 1 << 20
    total = size + len(b"\nthe end\n")
    marker = b"\n[... %d bytes omitted ...]\n" % (total - head - tail)
    assert data == b"x" * head + marker + b"x" * (tail - 9) + b"\nthe end\n"


def forget_peak_memory() -> None:
    """Reset this process's peak resident memory (VmHWM) to what it uses now; Linux only."""
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        pytest.skip("the peak memory is read from Linux's /proc")
    clear_refs.write_text("5")


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/self/status has no {field}")


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


# -- a runner that died: the handle, and reattach() ------------------------------------------------------


def test_run_hands_the_runner_the_handle_of_the_task_shell(make_spec):
    handles = []
    spec = make_spec("echo $$")

    async def main():
        return await LocalExecutor(bwrap=False).run(spec, cancel=asyncio.Event(), started=handles.append)

    assert asyncio.run(main()).outcome == Outcome.SUCCEEDED
    (handle,) = handles
    assert handle["pgid"] == int(log_of(spec)) and handle["start"] is not None


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
