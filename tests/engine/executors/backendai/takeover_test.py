"""A runner killed while its Backend.AI session still waits in the queue: the next runner must not run the task again.

Found by the chaos campaign (tests/chaos): a `kill -9` of the daemon after a
session was created but before it ran left no attempt in the store (an
attempt starts when its session runs); the session then ran and ended while
no runner followed it, and the runner that took over created a second
session of the same name (the manager reuses a name only while the session
lives), so the task ran twice. Now the executor hands the runner the
session's handle when it is enqueued (`started(handle, queued=True)`), and a
runner that takes over follows that session, ended or not.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import PATIENCE, await_until, console_script, git, wait_until
from engine.runner_test import make_job

from fasttrack_gitops.core.job import JobStatus, JobView, Outcome, TaskState
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.session_spec import session_name
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.launch import Launch, source_of
from fasttrack_gitops.engine.runner import QUEUED, JobRunner
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kill -9 of a real `run` process")


async def take_over(job, store: Store, workdir: Path) -> JobView:
    """What the next runner does with the job the dead one left: resume it on the Backend.AI executor."""
    runner = JobRunner(
        job, store, get_executor("backendai", poll_interval=0.05), workdir=lambda t: workdir, resume=True
    )
    try:
        return await asyncio.wait_for(runner.run(), PATIENCE)
    finally:
        await runner.executor.close()


def test_a_session_enqueued_by_a_runner_that_died_runs_once_even_when_it_ended_before_the_takeover(
    tmp_path: Path, emulated_cluster
):
    marks = tmp_path / "runs.txt"
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines" / "p.yaml").write_text(
        'version: "26.4.4"\nname: once\ntasks:\n'
        f"  - name: train\n    command: echo ran >> {marks}\n    environment: {{image: python}}\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    placed = threading.Event()
    emulated_cluster.sessions.gate = lambda session: placed.wait(PATIENCE)  # PENDING until the runner is dead
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [console_script(), "run", str(repo / "pipelines" / "p.yaml"), "--executor", "backendai"]
        + ["--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job_id = wait_until(lambda: _queued_job(state), what="the runner to keep its enqueued session's handle")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(PATIENCE)
    placed.set()  # the session runs and ends while no runner follows it
    session = emulated_cluster.sessions.sessions[0]
    wait_until(lambda: session.status == "TERMINATED", what=lambda: f"the session to end: {session.status}")

    view = _take_over(state, job_id)

    assert len(emulated_cluster.sessions.sessions) == 1, "the runner that took over made a second session"
    assert marks.read_text().splitlines() == ["ran"]
    assert view.status == JobStatus.SUCCEEDED and [a.number for a in view.tasks["train"].attempts] == [1]


def test_a_session_a_shutdown_stopped_before_it_ran_is_made_again_by_the_runner_that_takes_over(
    tmp_path: Path, emulated_cluster
):
    """The handle kept for a queued session must not stand for the task once a shutdown (interrupt) cancelled
    that session before it ran: the next runner starts the task, not reads the cancelled session as its end."""
    marks = tmp_path / "runs.txt"
    placed = threading.Event()
    emulated_cluster.sessions.gate = lambda session: placed.wait(PATIENCE)
    pipeline = f"""\
        version: "26.4.4"
        name: once
        tasks:
          - name: train
            command: echo ran >> {marks}
            environment: {{image: python}}
        """
    with Store(tmp_path / "state") as store:
        job = make_job(store, tmp_path, pipeline)

        async def shut_down_while_queued() -> None:
            runner = JobRunner(job, store, get_executor("backendai", poll_interval=0.05), workdir=lambda t: tmp_path)
            running = asyncio.ensure_future(runner.run())
            await await_until(lambda: _created(store, job.id))
            runner.interrupt("the daemon stopped (SIGTERM)")
            try:
                await running
            finally:
                await runner.executor.close()

        asyncio.run(shut_down_while_queued())
        placed.set()

        view = asyncio.run(take_over(job, store, tmp_path))

    assert [s.status for s in emulated_cluster.sessions.sessions] == ["CANCELLED", "TERMINATED"]
    assert marks.read_text().splitlines() == ["ran"]
    assert view.status == JobStatus.SUCCEEDED and [a.number for a in view.tasks["train"].attempts] == [1]


@pytest.mark.parametrize("lists_by_name", [True, False], ids=["graphql-by-name", "rest-only"])
def test_a_session_whose_runner_died_before_learning_its_id_and_that_ended_runs_once(
    tmp_path: Path, emulated_cluster, lists_by_name
):
    """Found by the chaos campaign's 100 commits: a kill -9 while POST /session was in flight. The session exists,
    the runner never learnt its id; once it ended, GET /session no longer finds it by name. Making it again ran
    the task twice as one attempt. 23.09's GraphQL lists a name's sessions, ended ones too, with their ids: its
    result is read by id. Where it cannot (another schema), the attempt is recorded interrupted (its result
    cannot be read) and retried as attempt 2. Either way no session is made twice for one attempt."""
    if not lists_by_name:
        emulated_cluster._gql_fields.pop("compute_session_list")
    marks = tmp_path / "runs.txt"
    pipeline = f"""\
        version: "26.4.4"
        name: once
        tasks:
          - name: train
            command: echo ran >> {marks}
            environment: {{image: python}}
            retry: {{max_attempts: 2}}
        """
    with Store(tmp_path / "state") as store:
        job = make_job(store, tmp_path, pipeline)
        name = session_name(job.id, "train", 1)
        # What the runner left: the task handed to the executor and the session's name kept, but no id ...
        store.set_task_state(job.id, "train", TaskState.SUBMITTED)
        store.add_event(job.id, QUEUED, task="train", data={"number": 1, "handle": {"session": name}})
        # ... and the session it asked for, which ran and ended while no runner followed it.
        asyncio.run(_create_session(name, f"echo ran >> {marks}"))
        session = emulated_cluster.sessions.get(name)
        wait_until(lambda: session.status == "TERMINATED", what=lambda: f"the session to end: {session.status}")

        view = asyncio.run(take_over(job, store, tmp_path))

    names = [s.name for s in emulated_cluster.sessions.sessions]
    attempts = view.tasks["train"].attempts
    assert view.status == JobStatus.SUCCEEDED, view.tasks
    if lists_by_name:  # read by its id: one session, one run, one attempt
        assert names == [name] and marks.read_text().splitlines() == ["ran"]
        assert [(a.number, a.outcome) for a in attempts] == [(1, Outcome.SUCCEEDED)]
    else:
        assert names == [name, session_name(job.id, "train", 2)], "a session was made twice for one attempt"
        assert marks.read_text().splitlines() == ["ran", "ran"]  # the session of attempt 1, and attempt 2's
        assert [(a.number, a.outcome) for a in attempts] == [(1, Outcome.INTERRUPTED), (2, Outcome.SUCCEEDED)]
        assert "ended meanwhile" in attempts[0].message


async def _create_session(name: str, command: str) -> None:
    client = Client(Credentials.from_env(), trust_env=False)
    try:
        body = {"name": name, "image": "python", "type": "batch", "startupCommand": command, "config": {}}
        await client.request("POST", "/session", json=body)
    finally:
        await client.aclose()


def _queued_job(state: Path) -> str | None:
    if not (state / "state.db").exists():
        return None
    with Store(state) as store:
        views = store.list_jobs()
        if views and _created(store, views[0].job.id):
            return views[0].job.id
    return None


def _created(store: Store, job_id: str) -> bool:
    """The runner kept the id of the session it enqueued (before that, only its name)."""
    return any(e.kind == QUEUED and (e.data.get("handle") or {}).get("session_id") for e in store.events(job_id))


def _take_over(state: Path, job_id: str):
    async def main():
        with Store(state) as store:
            job = store.job(job_id)
            executor = get_executor("backendai", poll_interval=0.05)
            try:
                launch = Launch(job, store, executor, source=source_of(job, store), resume=True)
                return await asyncio.wait_for(launch.run(), PATIENCE)
            finally:
                await executor.close()

    return asyncio.run(main())
