"""After `kill -9` of the process that drove a job, the next runner takes its Backend.AI sessions over.

The real 23.09 manager runs the session while no runner is alive: a runner
with resume=True either finds the live session again by its deterministic
name and follows it, or reads the result of one that ended meanwhile by the
id recorded with the attempt. Either way the task ran once (attempt 1).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import git, wait_until

from fasttrack_gitops.core.job import JobStatus, TaskState
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.launch import Launch, source_of
from fasttrack_gitops.engine.state.store import Store

# ~20 s each on a warm stack, but they wait up to 120 s for the manager to schedule the session, then follow it.
pytestmark = pytest.mark.timeout(300)

IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"
PIPELINE = f"""\
version: "23.09"
name: realstack-reattach
tasks:
  - name: slow
    command: sleep SECONDS; echo finished after the runner died
    environment: {{image: {IMAGE}}}
    resources: {{cpu: 1, mem: 512m}}
"""


def start_and_kill(tmp_path, seconds: int):
    """Run the pipeline in a separate process, kill -9 it once its session runs; (store, job id)."""
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines" / "p.yaml").write_text(PIPELINE.replace("SECONDS", str(seconds)))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    state = tmp_path / "state"
    exe = os.path.join(os.path.dirname(sys.executable), "fasttrack-gitops")
    proc = subprocess.Popen(
        [exe, "run", str(repo / "pipelines" / "p.yaml"), "--executor", "backendai", "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def running_job() -> str | None:
            if not state.joinpath("state.db").exists():
                return None
            with Store(state) as store:
                views = store.list_jobs()
            return views[0].job.id if views and views[0].tasks["slow"].state == TaskState.RUNNING else None

        job = wait_until(running_job, timeout=120, interval=0.2, what="the session to start running")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    return state, job


def resume(state, job_id):
    async def main():
        with Store(state) as store:
            job = store.job(job_id)
            executor = get_executor("backendai", poll_interval=1.0)
            try:
                launch = Launch(job, store, executor, source=source_of(job, store), resume=True)
                return await asyncio.wait_for(launch.run(), 180)
            finally:
                await executor.close()

    return asyncio.run(main())


def test_a_live_session_is_found_again_and_followed(tmp_path):
    state, job = start_and_kill(tmp_path, seconds=20)
    with Store(state) as store:
        assert store.view(job).status == JobStatus.INTERRUPTED  # nobody drives it now
    view = resume(state, job)
    slow = view.tasks["slow"]
    assert view.status == JobStatus.SUCCEEDED and [a.number for a in slow.attempts] == [1]
    log = (state / "logs" / job / "slow" / "1.log").read_text()
    assert "finished after the runner died" in log


def test_a_session_that_ended_meanwhile_is_read_not_run_again(tmp_path):
    state, job = start_and_kill(tmp_path, seconds=2)
    time.sleep(15)  # the session ends while no runner follows it
    view = resume(state, job)
    slow = view.tasks["slow"]
    assert view.status == JobStatus.SUCCEEDED and [a.number for a in slow.attempts] == [1]
    log = (state / "logs" / job / "slow" / "1.log").read_text()
    assert "ended while no runner followed it" in log and "finished after the runner died" in log
