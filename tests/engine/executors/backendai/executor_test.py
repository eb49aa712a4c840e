"""The `backendai` executor: real attempts against the emulator.

The emulator runs each batch session's startup command as a real /bin/sh
process with the pipeline vfolder linked the way the realstack agent without
a sandbox does it, so exit codes, logs and the files tasks exchange are real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import textwrap
from pathlib import Path

import pytest
from conftest import alive, await_until
from engine.executors.backendai import fixtures
from engine.executors.backendai.fixtures import FOLDER, JOB, TREE, attempt, run

from fasttrack_gitops.core.job import JobStatus, Outcome, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.engine.backendai.session_spec import session_name
from fasttrack_gitops.engine.executors import EXECUTORS, get_executor
from fasttrack_gitops.engine.executors.backendai import layout
from fasttrack_gitops.engine.executors.backendai.executor import BackendAIExecutor
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.store import Store

cluster, make_spec = fixtures.cluster, fixtures.make_spec  # the fixtures these tests use
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

CALLS = {
    ("GET", "/events/session"): 1,
    ("POST", "/session"): 1,
    ("POST", "/admin/gql"): 1,
    ("GET", "/session/{name}/logs"): 1,
}


def folder(emu) -> Path:
    return emu.vfolders.directory(FOLDER)


def test_the_registry_names_it_and_credentials_come_from_the_environment(monkeypatch):
    assert EXECUTORS["backendai"] == "fasttrack_gitops.engine.executors.backendai.executor:BackendAIExecutor"
    for name in ("BACKEND_ENDPOINT", "BACKEND_ACCESS_KEY", "BACKEND_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="BACKEND_ENDPOINT"):
        get_executor("backendai")
    monkeypatch.setenv("BACKEND_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("BACKEND_ACCESS_KEY", "AKIATEST")
    monkeypatch.setenv("BACKEND_SECRET_KEY", "s3cr3t")
    executor = get_executor("backendai")
    assert isinstance(executor, BackendAIExecutor) and executor.capacity() is None
    assert executor.client.credentials.access_key == "AKIATEST"
    asyncio.run(executor.close())


# -- real attempts --------------------------------------------------------------------------------------


def test_a_failing_task_reports_its_exit_code_and_log(cluster, make_spec):
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi; cat code.txt; exit 3")))
    assert (ran.result.outcome, ran.result.exit_code, ran.result.message) == (Outcome.FAILED, 3, "")
    assert ran.log == "hi\nthe task's code\n" and ran.started == 1
    assert (folder(cluster) / "jobs" / JOB / "tasks" / "train" / "outputs").is_dir()


def test_on_the_real_23_09_stack_running_and_the_exit_code_come_from_the_events(cluster, make_spec):
    cluster.sessions.like_realstack = True  # kernel_started only; GraphQL's exit code is the container's -1
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi; exit 3")))
    assert (ran.result.outcome, ran.result.exit_code, ran.started, ran.log) == (Outcome.FAILED, 3, 1, "hi\n")
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi", number=2)))
    assert (ran.result.outcome, ran.result.exit_code, ran.started) == (Outcome.SUCCEEDED, 0, 1)


def test_the_success_path_costs_four_calls_per_task_instance(cluster, make_spec):
    async def scenario(ex):
        first = await attempt(ex, make_spec("echo warm-up", task="prep"))
        return first, await attempt(ex, make_spec("echo done > $PIPELINE_OUTPUT_ROOT/done", task="train"))

    first, second = run(cluster, scenario)
    assert first.result.outcome == Outcome.SUCCEEDED and (first.result.exit_code, first.log) == (0, "warm-up\n")
    assert ("POST", "/folders") in first.calls  # the one-time work: negotiation, folder, code
    assert (second.result.outcome, second.result.exit_code, second.started) == (Outcome.SUCCEEDED, 0, 1)
    assert second.calls == CALLS  # 4 per task instance: stream, create, GraphQL result, logs
    assert (folder(cluster) / "jobs" / JOB / "tasks" / "train" / "outputs" / "done").read_text() == "done\n"
    assert second.result.started_at <= second.result.ended_at


def test_code_is_uploaded_once_per_tree_id(cluster, make_spec, tmp_path):
    def uploads():
        return len(cluster.requests_to(f"/folders/{FOLDER}/request-upload"))

    async def scenario(ex):
        await attempt(ex, make_spec("true", job_id="job-1"))
        after_first = uploads()
        await attempt(ex, make_spec("true", job_id="job-1", number=2))
        await attempt(ex, make_spec("true", job_id="job-2"))
        return after_first, uploads()

    after_first, after_three = run(cluster, scenario)
    assert after_first == 2 and after_three == 2  # code.txt and the marker, once
    again = run(cluster, lambda ex: attempt(ex, make_spec("cat code.txt", job_id="job-3")))  # a new runner process
    assert uploads() == 2 and again.log == "the task's code\n"
    assert again.calls[("GET", "/folders/{name}/files")] == 1  # it only looked for the marker
    other = run(cluster, lambda ex: attempt(ex, make_spec("true", job_id="job-4", code_tree="c" * 40)))
    assert other.result.outcome == Outcome.SUCCEEDED and uploads() == 4


def test_executable_bits_survive_the_upload(cluster, make_spec, tmp_path):
    tool = tmp_path / "code" / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    ran = run(cluster, lambda ex: attempt(ex, make_spec("./bin/tool", code_tree="")))  # no tree id: content id
    assert (ran.result.outcome, ran.log) == (Outcome.SUCCEEDED, "tool ran\n")
    assert next((folder(cluster) / "code").iterdir()).name.startswith("content-")


def test_a_chain_run_by_the_job_runner_passes_data_through_the_folder(cluster, tmp_path):
    text = textwrap.dedent("""\
        version: "26.4.4"
        name: demo
        tasks:
          - name: make
            command: echo from-make > $PIPELINE_OUTPUT_ROOT/data.txt; echo made
            environment: {image: python}
          - name: use
            dependencies: [make]
            command: cat $PIPELINE_INPUT1/data.txt; test ! -e /pipeline/outputs
            environment: {image: python}
        """)
    checked = check_pipeline(text.encode(), "pipelines/demo.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    code = tmp_path / "repo"
    code.mkdir()
    store = Store(tmp_path / "state")
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/demo.yaml",
        repository="/repos/demo",
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree=TREE,
        code_trees={},
    )
    store.create_job(job)

    async def scenario(ex):
        return await JobRunner(job, store, ex, workdir=lambda task: code).run()

    view = run(cluster, scenario)
    assert view.status == JobStatus.SUCCEEDED, {n: (i.state, i.reason) for n, i in view.tasks.items()}
    assert store.log_path(job.id, "use", 1).read_text() == "from-make\n"
    assert store.log_path(job.id, "make", 1).read_text() == "made\n"
    assert (folder(cluster) / "jobs" / job.id / "tasks" / "make" / "outputs" / "data.txt").read_text() == "from-make\n"
    assert [a.exit_code for a in view.tasks["use"].attempts] == [0]


def test_a_timeout_destroys_the_session(cluster, make_spec):
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo started; sleep 30", timeout=0.6)))
    assert ran.result.outcome == Outcome.TIMED_OUT and ran.result.message == "timed out after 0.6s"
    session = cluster.sessions.get(session_name(JOB, "train", 1))
    assert (session.status, session.status_info) == ("TERMINATED", "user-requested")
    assert not alive(session.process.pid) and ran.started == 1 and ran.log == "started\n"


def test_a_session_stuck_in_pending_is_noted_and_times_out(cluster, make_spec):
    cluster.sessions.stuck_next()
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo never", timeout=0.5)), pending_notice=0.2)
    assert ran.result.outcome == Outcome.TIMED_OUT and ran.started == 0
    assert ran.result.message == "timed out after 0.5s while the session was still PENDING (it never started)"
    assert "is still PENDING after 0.2s; waiting for the cluster's scheduler" in ran.log
    assert cluster.sessions.get(session_name(JOB, "train", 1)).status == "CANCELLED"


def test_a_status_we_do_not_know_is_waited_through_and_a_refused_destroy_is_forced(cluster, make_spec):
    cluster.sessions.unknown_status_next("WARMING_UP", hold=3)  # 23.09 refuses a plain destroy there
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo never", timeout=0.4)))
    assert ran.result.outcome == Outcome.TIMED_OUT and ran.started == 0
    assert ran.result.message == "timed out after 0.4s while the session was still WARMING_UP (it never started)"
    deletes = [r for r in cluster.requests if r.method == "DELETE"]
    assert [(r.status, "forced=true" in r.target) for r in deletes] == [(403, False), (200, True)]
    session = cluster.sessions.get(session_name(JOB, "train", 1))
    assert (session.status, session.status_info) == ("TERMINATED", "force-terminated")


def test_cancel_destroys_the_session(cluster, make_spec):
    async def scenario(ex):
        cancel = asyncio.Event()
        spec = make_spec("sleep 30")
        running = asyncio.ensure_future(attempt(ex, spec, cancel=cancel))
        await await_until(
            lambda: (
                cluster.sessions.sessions and cluster.sessions.get(session_name(JOB, "train", 1)).status == "RUNNING"
            ),
            what="the session to run",
        )
        cancel.set()
        return await running

    ran = run(cluster, scenario)
    assert (ran.result.outcome, ran.result.message, ran.result.exit_code) == (Outcome.CANCELLED, "cancelled", None)
    session = cluster.sessions.get(session_name(JOB, "train", 1))
    assert session.status == "TERMINATED" and not alive(session.process.pid)


def test_closing_the_executor_stops_what_runs(cluster, make_spec):
    async def scenario(ex):
        running = asyncio.ensure_future(attempt(ex, make_spec("sleep 30")))
        await await_until(
            lambda: cluster.sessions.sessions and cluster.sessions.sessions[0].status == "RUNNING",
            what="the session to run",
        )
        await ex.close()
        return await running

    ran = run(cluster, scenario)
    assert (ran.result.outcome, ran.result.message) == (Outcome.CANCELLED, "executor closed")
    assert cluster.sessions.sessions[0].status == "TERMINATED"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"image": "nope"}, "Backend.AI does not know the image 'nope'"),
        ({"image": None}, "task 'train' has no image: a Backend.AI session needs environment.image"),
        (
            {"resources": Resources(accelerators=(("cuda.device", 1),))},
            "the Backend.AI cluster has no resource slot cuda.device",
        ),
    ],
)
def test_what_the_cluster_refuses_is_an_error_with_its_reason(cluster, make_spec, change, expected):
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi", **change)))
    assert ran.result.outcome == Outcome.ERROR and ran.result.exit_code is None
    assert ran.result.message.startswith(expected) and "Traceback" not in ran.log
    assert ran.log == f"fasttrack-gitops: {ran.result.message}\n" and ran.started == 0


def test_quota_exceeded_is_an_error(cluster, make_spec):
    cluster.sessions.quota_next()
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi")))
    assert ran.result.outcome == Outcome.ERROR and "quota exceeded" in ran.result.message
    assert "You have reached your resource limit" in ran.result.message


def test_a_session_that_ends_in_error_fails_with_the_servers_reason(cluster, make_spec):
    cluster.sessions.error_next("failed-to-start", "KernelCreationFailed: no agent")
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo hi")))
    assert (ran.result.outcome, ran.result.exit_code, ran.started) == (Outcome.FAILED, None, 0)
    assert ran.result.message == (
        f"the Backend.AI session {session_name(JOB, 'train', 1)} ended in ERROR: "
        "failed-to-start; KernelCreationFailed: no agent"
    )


@pytest.mark.parametrize("after", [0, 2])
def test_a_dropped_stream_falls_back_to_polling(cluster, make_spec, after):
    cluster.sessions.drop_stream(after=after)
    ran = run(cluster, lambda ex: attempt(ex, make_spec("sleep 0.3; echo late; exit 4")))
    assert (ran.result.outcome, ran.result.exit_code, ran.log) == (Outcome.FAILED, 4, "late\n")
    assert ran.started == 1 and ran.calls[("GET", "/events/session")] == 1
    assert ran.calls[("POST", "/admin/gql")] >= 2  # polled


def test_secrets_reach_the_session_environ_and_nowhere_else(cluster, make_spec, caplog):
    secret = "hunter2-very-secret"
    spec = make_spec(f"echo token=$TOKEN; echo inline={secret}; exit 1", env={"TOKEN": secret}, masks=(secret,))
    with caplog.at_level(logging.DEBUG):
        ran = run(cluster, lambda ex: attempt(ex, spec))
    assert ran.log == "token=***\ninline=***\n" and ran.result.exit_code == 1
    assert secret not in ran.result.message and secret not in caplog.text
    for request in cluster.requests:
        if request.method == "POST" and request.target == "/session":
            body = json.loads(request.body)
            environ = body["config"].pop("environ")
            assert environ["TOKEN"] == secret and secret in environ[layout.COMMAND_VARIABLE]
            assert secret not in json.dumps(body)
        else:
            assert secret not in request.target + request.body.decode(errors="replace") + json.dumps(request.headers)
    assert all(secret not in r.path for r in cluster.vfolders.requests)


# -- a runner that died: reattach()


def test_reattach_reads_a_session_that_ended_meanwhile_without_running_it_again(cluster, make_spec):
    handles = []

    async def scenario(ex):
        spec = make_spec("echo first run; exit 3")
        first = await ex.run(
            spec, cancel=asyncio.Event(), started=lambda handle=None, queued=False: queued or handles.append(handle)
        )
        spec.log_path.unlink()
        before = ex.client.calls.copy()
        again = await ex.reattach(spec, handles[0], cancel=asyncio.Event(), started=lambda handle=None, **_: None)
        return first, again, {k: n for k, n in (ex.client.calls - before).items() if n}, spec.log_path.read_text()

    first, again, calls, log = run(cluster, scenario)
    assert handles[0]["session"] == session_name(JOB, "train", 1) and handles[0]["session_id"]
    assert (again.outcome, again.exit_code) == (first.outcome, first.exit_code) == (Outcome.FAILED, 3)
    assert ("POST", "/session") not in calls and len(cluster.sessions.sessions) == 1  # not run twice
    assert "ended while no runner followed it" in log and "first run" in log


def test_reattach_follows_a_live_session_by_its_id_and_never_asks_for_it_again(cluster, make_spec):
    """Asked for again by name, a session that ended in between (its name free again) would be made a second time
    (found by the chaos campaign on the real 23.09 manager): a live one is followed by the id in its handle."""
    from fasttrack_gitops.engine.backendai.sessions import create_batch_session

    async def scenario(ex):
        spec = make_spec("sleep 0.5; echo done; exit 4")
        created = await create_batch_session(ex.client, await ex._prepare(spec))  # as a runner that then died
        started = []
        before = ex.client.calls.copy()
        result = await ex.reattach(
            spec,
            {"session": session_name(JOB, "train", 1), "session_id": created.id},
            cancel=asyncio.Event(),
            started=lambda handle=None, queued=False: queued or started.append(handle),
        )
        return result, started, {k: n for k, n in (ex.client.calls - before).items() if n}

    result, started, calls = run(cluster, scenario)
    assert (result.outcome, result.exit_code) == (Outcome.FAILED, 4)
    assert len(cluster.sessions.sessions) == 1 and started and started[0]["session_id"]
    assert ("POST", "/session") not in calls


def test_reattach_while_the_manager_restarts_waits_for_its_answer_rather_than_run_the_task_again(cluster, make_spec):
    """The session ended while its runner was dead and the manager was down: once the manager answers, the
    result is read; creating the session again by its (free again) name would run the task twice."""
    handles = []

    async def scenario(ex):
        spec = make_spec("echo first run; exit 3")
        await ex.run(
            spec, cancel=asyncio.Event(), started=lambda handle=None, queued=False: queued or handles.append(handle)
        )
        before = ex.client.calls.copy()
        cluster.stop_serving()
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, cluster.start_serving)  # back after a few failed looks, before MAX_CHECK_ERRORS
        again = await ex.reattach(spec, handles[0], cancel=asyncio.Event(), started=lambda handle=None, **_: None)
        return again, {k: n for k, n in (ex.client.calls - before).items() if n}

    again, calls = run(cluster, scenario, poll_interval=0.2)
    assert (again.outcome, again.exit_code) == (Outcome.FAILED, 3)
    assert ("POST", "/session") not in calls and len(cluster.sessions.sessions) == 1  # not run twice


@pytest.mark.parametrize("lists_by_name", [True, False], ids=["graphql-by-name", "rest-only"])
def test_reattach_by_name_alone_takes_no_answer_for_neither_alive_nor_never_made(cluster, make_spec, lists_by_name):
    """Found by the chaos campaign on the real 23.09 manager: a runner died after POST /session and before it
    learnt the session's id; the next one asked for the session by name while the manager, restarting, answered
    500: "cannot say" was taken for "never made", the session (ended meanwhile, its name free again) was made a
    second time and the task ran twice. Now the manager is asked until it says. Its GraphQL lists the name's
    sessions, ended ones too, with their ids: the result is read by id. A manager whose GraphQL cannot list by
    name is asked GET /session and for the log: the session ended, so the attempt is interrupted."""
    from fasttrack_gitops.engine.backendai.sessions import create_batch_session

    name = session_name(JOB, "train", 1)
    if not lists_by_name:
        cluster._gql_fields.pop("compute_session_list")  # a GraphQL schema without it (an error, not "none")

    async def scenario(ex):
        spec = make_spec("echo first run")
        await create_batch_session(ex.client, await ex._prepare(spec))  # as a runner that then died
        await await_until(lambda: cluster.sessions.get(name).status == "TERMINATED")  # ended, no runner following
        cluster.fail(500, times=12, path="/admin/gql" if lists_by_name else f"/session/{name}")  # restarting
        before = ex.client.calls.copy()
        again = await ex.reattach(spec, {"session": name}, cancel=asyncio.Event(), started=lambda *_, **__: None)
        return again, {k: n for k, n in (ex.client.calls - before).items() if n}, spec.log_path

    again, calls, log = run(cluster, scenario, poll_interval=0.05)
    assert ("POST", "/session") not in calls and len(cluster.sessions.sessions) == 1  # not run twice
    if lists_by_name:
        assert again.outcome == Outcome.SUCCEEDED and "first run" in log.read_text()
    else:
        assert again.outcome == Outcome.INTERRUPTED and "the session ended meanwhile" in again.message


@pytest.mark.parametrize("lasts", ["running", "ended"])
def test_a_session_made_by_a_create_left_unanswered_runs_once(cluster, make_spec, lasts):
    """Found by the chaos campaign on the real 23.09 manager: stopped while it handled POST /session, the manager
    made the session and never answered; the attempt was an error and its retry ran the task a second time. Now
    the manager is asked what became of a session of that name (GraphQL lists it with its id, ended or not): it
    is followed by its id, live or ended, its result read, and no second POST is made for the attempt."""
    cluster.drop(path="/session", handled=True)
    command = "sleep 1; echo ran; exit 3" if lasts == "running" else "echo ran"
    ran = run(cluster, lambda ex: attempt(ex, make_spec(command)), poll_interval=0.2 if lasts == "running" else 2.0)
    assert len(cluster.sessions.sessions) == 1, "the task ran twice"
    assert len(cluster.requests_to("/session")) == 1
    expected = (Outcome.FAILED, 3) if lasts == "running" else (Outcome.SUCCEEDED, 0)
    assert (ran.result.outcome, ran.result.exit_code, ran.log) == (*expected, "ran\n")


def test_a_session_made_by_a_create_left_unanswered_that_ended_unread_is_interrupted(cluster, make_spec):
    """Where GraphQL cannot list sessions by name (not 23.09's schema), one that ended is known only by its log:
    its result cannot be read by name, so the attempt is interrupted, never run again as is."""
    cluster._gql_fields.pop("compute_session_list")
    cluster.drop(path="/session", handled=True)
    ran = run(cluster, lambda ex: attempt(ex, make_spec("echo ran")), poll_interval=2.0)
    assert len(cluster.sessions.sessions) == 1 and len(cluster.requests_to("/session")) == 1
    assert ran.result.outcome == Outcome.INTERRUPTED and ran.result.exit_code is None
    assert ran.result.message.startswith(f"interrupted: the manager made the session {session_name(JOB, 'train', 1)}")


# -- the task cache: where inputs are read, and the index beside them


@pytest.mark.parametrize(
    "input_jobs, expected",
    [
        (("job-1",), "task 'train' has 2 dependencies but 1 input jobs were given"),
        (("job-1", "../elsewhere"), "the outputs of 'b' are said to be in job '../elsewhere', which is not"),
        (("job-1", "-rf"), "the outputs of 'b' are said to be in job '-rf', which is not a job id"),
    ],
)
def test_input_jobs_that_do_not_name_one_job_per_dependency_are_an_error(cluster, make_spec, input_jobs, expected):
    spec = make_spec("echo never", dependencies=("a", "b"), inputs=(Path("a"), Path("b")), input_jobs=input_jobs)
    ran = run(cluster, lambda ex: attempt(ex, spec))
    assert ran.result.outcome == Outcome.ERROR and ran.result.message.startswith(expected)
    assert not cluster.sessions.sessions  # refused before any session


def test_parameter_values_reach_the_session_as_environ_not_in_the_command(cluster, tmp_path):
    text = textwrap.dedent("""\
        version: "26.4.4"
        name: tuned
        params:
          - {name: note, default: plain}
        tasks:
          - name: fit
            command: echo "note=$PARAM_NOTE"
            environment: {image: python}
        """)
    checked = check_pipeline(text.encode(), "pipelines/tuned.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    hostile = "a; echo pwned $(id) `id`"
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/tuned.yaml",
        repository="/repos/tuned",
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree=TREE,
        code_trees={},
        trigger={"event": "cli", "params": {"note": hostile}},
    )
    store = Store(tmp_path / "state")
    store.create_job(job)
    (tmp_path / "repo").mkdir()

    view = run(cluster, lambda ex: JobRunner(job, store, ex, workdir=lambda task: tmp_path / "repo").run())

    assert view.status == JobStatus.SUCCEEDED
    assert store.log_path(job.id, "fit", 1).read_text() == f"note={hostile}\n"
    [create] = [json.loads(r.body) for r in cluster.requests if r.method == "POST" and r.target == "/session"]
    environ = create["config"]["environ"]
    assert environ["PARAM_NOTE"] == hostile and hostile not in environ[layout.COMMAND_VARIABLE]
