"""The local executor under bubblewrap: the task sees the pipeline data folder where FastTrack mounts it.

Tests marked needs_bwrap run only where bubblewrap works (under CI they fail where it does not); the fallback and
the probe run anywhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import await_until
from engine.executors import local_fixtures
from engine.executors.local_fixtures import MARK, log_of, marked, none_marked_within, run

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.engine.executors.bubblewrap import Bubblewrap
from fasttrack_gitops.engine.executors.local import LocalExecutor

make_spec = local_fixtures.make_spec  # the fixture these tests use
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


needs_bwrap = pytest.mark.usefixtures("bwrap_works")


@needs_bwrap
@pytest.mark.parametrize("launcher", [True, False], ids=["launcher", "bwrap-per-task"])
def test_under_bwrap_the_task_sees_the_pipeline_folder_where_fasttrack_mounts_it(make_spec, launcher):
    spec = make_spec(
        "env | grep ^PIPELINE_ | sort; cat /pipeline/input1/data.txt /pipeline/input2/data.txt; "
        "echo out > /pipeline/outputs/a; echo seed > /pipeline/output/b; echo shared > /pipeline/vfroot/c; "
        "test -d /usr && pwd"
    )
    result = run(spec, bwrap=True, launcher=launcher)
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
def test_in_the_sandbox_a_killed_shell_shows_as_killed_by_the_signal(make_spec):
    result = run(make_spec("kill -9 $$"), bwrap=True)
    assert (result.outcome, result.exit_code, result.message) == (Outcome.FAILED, -9, "killed by signal 9")


@needs_bwrap
def test_under_a_bwrap_per_task_a_killed_shell_shows_as_exit_128_plus_the_signal(make_spec):
    # without the launcher (where nested user namespaces are not allowed) the shell is bwrap's child
    result = run(make_spec("kill -9 $$"), bwrap=True, launcher=False)
    assert (result.outcome, result.exit_code, result.message) == (Outcome.FAILED, 137, "")


# Under bubblewrap a task's pids ($$, $!) are its PID namespace's: these tests find its processes by a variable
# they inherit (local_fixtures.marked), with the pids this test sees.


@needs_bwrap
@pytest.mark.parametrize("launcher", [True, False], ids=["launcher", "bwrap-per-task"])
def test_under_bwrap_a_timeout_still_kills_the_whole_group(make_spec, tmp_path, launcher):
    mark = f"timeout-{launcher}"
    spec = make_spec("sleep 30 & wait", timeout=1.5, env={MARK: mark})
    seen: list[dict[int, str]] = []
    executor = LocalExecutor(bwrap=True, launcher=launcher)

    async def main():
        cancel = asyncio.Event()
        attempt = asyncio.ensure_future(executor.run(spec, cancel=cancel, started=lambda handle=None: None))
        try:
            seen.append(await await_until(lambda: "sleep 30" in marked(mark).values() and marked(mark)))
            return await attempt
        finally:
            await executor.close()

    began = time.monotonic()
    result = asyncio.run(main())
    # the bound is the behaviour: the timeout fires, long before the sleep ends
    assert result.outcome == Outcome.TIMED_OUT and time.monotonic() - began < 5
    assert seen, "the task's child was seen running"
    none_marked_within(mark)


@needs_bwrap
@pytest.mark.parametrize("launcher", [True, False], ids=["launcher", "bwrap-per-task"])
def test_under_bwrap_a_left_behind_child_is_killed(make_spec, tmp_path, launcher):
    # not waited for either: had it been, the child would have lived out its sleep and left its mark
    mark = f"left-{launcher}"
    spec = make_spec(f"(sleep 300; touch {tmp_path}/outlived) & echo started", env={MARK: mark})
    assert run(spec, bwrap=True, launcher=launcher).outcome == Outcome.SUCCEEDED
    assert log_of(spec) == "started\n"
    none_marked_within(mark)
    assert not (tmp_path / "outlived").exists()


def test_without_bwrap_the_executor_falls_back_quietly_or_errors_when_required(make_spec, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    spec = make_spec('echo "$PIPELINE_OUTPUT_ROOT"')
    assert run(spec, bwrap=None).outcome == Outcome.SUCCEEDED
    assert log_of(spec) == f"{spec.outputs}\n"
    required = run(spec, bwrap=True)
    assert required.outcome == Outcome.ERROR
    assert required.message == "bubblewrap is required but does not work here: bwrap is not installed"


def test_the_bwrap_probe_runs_once_per_executor(make_spec, monkeypatch):
    probes = []
    original = Bubblewrap._probe

    async def counting(self):
        probes.append(1)
        return await original(self)

    monkeypatch.setattr(Bubblewrap, "_probe", counting)
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
