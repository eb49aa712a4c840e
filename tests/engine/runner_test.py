"""JobRunner driving real jobs: real shell commands on the local executor, a real SQLite store in tmp_path.

Each test builds a pipeline, freezes it into a stored job, runs it to its end
with `asyncio.run(runner.run())`, and asserts what the store recorded: task
states and reasons, attempts with their exit codes and times, the job status,
the events and the logs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import MINIMAL, alive, await_until

from fasttrack_gitops.core.job import JobStatus, JobView, Outcome, PipelineJob, TaskState, freeze, tolerated_failures
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.executors.processes import process_handle
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.errors import StoreError
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


def make_job(store: Store, tmp_path: Path, text: str) -> PipelineJob:
    """A stored job for the pipeline text (dedented)."""
    checked = check_pipeline(textwrap.dedent(text).encode(), "pipelines/p.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/p.yaml",
        repository=str(tmp_path),
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
    )
    store.create_job(job)
    return job


def make_runner(tmp_path: Path, text: str, **options) -> tuple[JobRunner, Store, PipelineJob]:
    store = Store(tmp_path / "state")
    job = make_job(store, tmp_path, text)
    options.setdefault("workdir", lambda task: tmp_path)
    # Without bubblewrap: tests here look for the pids a task writes, which under it are its PID namespace's.
    runner = JobRunner(job, store, get_executor("local", bwrap=False), **options)
    return runner, store, job


async def drive(runner: JobRunner) -> JobView:
    try:
        return await runner.run()
    finally:
        await runner.executor.close()


def run_job(tmp_path: Path, text: str, **options) -> tuple[JobView, Store, PipelineJob]:
    """Run the pipeline to its end; (the view runner.run returned, the store, the job)."""
    runner, store, job = make_runner(tmp_path, text, **options)
    returned = asyncio.run(drive(runner))
    assert returned.status == store.view(job.id).status
    return store.view(job.id), store, job


def states(view: JobView) -> dict[str, str]:
    return {name: str(i.state) for name, i in view.tasks.items()}


def exit_codes(view: JobView, task: str) -> list[int | None]:
    return [a.exit_code for a in view.tasks[task].attempts]


def output(store: Store, job: PipelineJob, task: str, name: str) -> str:
    return (datafolder.outputs_folder(store.data_dir(job.id), task) / name).read_text()


def log(store: Store, job: PipelineJob, task: str, attempt: int = 1) -> str:
    return store.log_path(job.id, task, attempt).read_text()


async def when(runner: JobRunner, condition) -> None:
    """Wait (inside the runner's loop) until condition(runner) holds; a failure shows every task's state."""
    await await_until(lambda: condition(runner), what=lambda: f"the condition on the tasks (now {states_of(runner)})")


def states_of(runner: JobRunner) -> dict[str, str]:
    return {name: str(i.state) for name, i in runner.tasks.items()}


# -- order and data flow -------------------------------------------------------------------------


def test_a_chain_runs_in_dependency_order(tmp_path: Path):
    order = tmp_path / "order"
    # File order is the reverse of the dependency order: the DAG decides, not the file.
    view, _, _ = run_job(
        tmp_path,
        f"""\
        version: "26.4.4"
        name: chain
        tasks:
          - name: c
            dependencies: [b]
            command: echo c >> {order}
          - name: b
            dependencies: [a]
            command: sleep 0.2; echo b >> {order}
          - name: a
            command: sleep 0.2; echo a >> {order}
        """,
    )

    assert view.status == JobStatus.SUCCEEDED
    assert states(view) == {"c": "succeeded", "b": "succeeded", "a": "succeeded"}
    assert order.read_text() == "a\nb\nc\n"
    a, b, c = (view.tasks[n].attempts for n in "abc")
    assert [len(a), len(b), len(c)] == [1, 1, 1]
    assert a[0].ended_at <= b[0].started_at
    assert b[0].ended_at <= c[0].started_at
    assert a[0].duration >= 0.2 and b[0].duration >= 0.2
    assert all(x[0].exit_code == 0 and x[0].outcome == Outcome.SUCCEEDED for x in (a, b, c))


def test_outputs_reach_dependents_as_inputs(tmp_path: Path):
    view, store, job = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: flow
        tasks:
          - name: a
            command: echo hello from a > "$PIPELINE_OUTPUT_ROOT/x"
          - name: b
            dependencies: [a]
            command: cat "$PIPELINE_INPUT1/x" > "$PIPELINE_OUTPUT_ROOT/got"; cat "$PIPELINE_INPUT1/x"
        """,
    )

    assert view.status == JobStatus.SUCCEEDED, view.tasks
    assert output(store, job, "a", "x") == "hello from a\n"
    assert output(store, job, "b", "got") == "hello from a\n"
    assert log(store, job, "b") == "hello from a\n"


def test_the_order_of_dependencies_decides_input1_and_input2(tmp_path: Path):
    view, store, job = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: two-inputs
        tasks:
          - name: first
            command: echo first > "$PIPELINE_OUTPUT_ROOT/x"
          - name: second
            command: echo second > "$PIPELINE_OUTPUT_ROOT/x"
          - name: join
            dependencies: [second, first]
            command: cat "$PIPELINE_INPUT1/x" "$PIPELINE_INPUT2/x" > "$PIPELINE_OUTPUT_ROOT/joined"
          - name: join-again
            dependencies: [first, second]
            command: cat "$PIPELINE_INPUT1/x" "$PIPELINE_INPUT2/x" > "$PIPELINE_OUTPUT_ROOT/joined"
        """,
    )

    assert view.status == JobStatus.SUCCEEDED, view.tasks
    assert output(store, job, "join", "joined") == "second\nfirst\n"
    assert output(store, job, "join-again", "joined") == "first\nsecond\n"


# -- working directories -------------------------------------------------------------------------


def test_a_working_directory_being_prepared_holds_up_no_other_task(tmp_path: Path):
    # The slow task's working directory is ready only once the quick task has ended: the runner must go on
    # driving the quick one meanwhile. The wait's timeout only ends a stuck loop; it measures nothing.
    quick_ended = threading.Event()
    waited: list[bool] = []

    def workdir(task: str) -> Path:
        if task == "slow":
            waited.append(quick_ended.wait(timeout=30))
        return tmp_path

    def on_change(change) -> None:
        if change.task == "quick" and change.instance.state == TaskState.SUCCEEDED:
            quick_ended.set()

    view, _, _ = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: two
        tasks:
          - name: slow
            command: "true"
          - name: quick
            command: "true"
        """,
        workdir=workdir,
        on_change=on_change,
    )

    assert waited == [True], "the quick task could not end while the slow task's working directory was prepared"
    assert view.status == JobStatus.SUCCEEDED


# -- skip, failure, continue_on_failure ----------------------------------------------------------


def test_skip_true_never_runs_and_its_dependents_see_an_empty_input(tmp_path: Path):
    marker = tmp_path / "ran"
    view, store, job = run_job(
        tmp_path,
        f"""\
        version: "26.4.4"
        name: skipping
        tasks:
          - name: a
            skip: true
            command: touch {marker}; echo x > "$PIPELINE_OUTPUT_ROOT/x"
          - name: b
            dependencies: [a]
            command: test -d "$PIPELINE_INPUT1" && ls -A "$PIPELINE_INPUT1" | wc -l > "$PIPELINE_OUTPUT_ROOT/count"
        """,
    )

    a, b = view.tasks["a"], view.tasks["b"]
    assert a.state == TaskState.SKIPPED
    assert a.reason == "skip: true"
    assert a.attempts == ()
    assert not marker.exists()
    assert not store.log_path(job.id, "a", 1).exists()
    assert b.state == TaskState.SUCCEEDED, b
    assert output(store, job, "b", "count").strip() == "0"
    assert view.status == JobStatus.SUCCEEDED


def test_a_failed_task_skips_its_dependents_and_fails_the_job(tmp_path: Path):
    ran = tmp_path / "ran"
    view, store, job = run_job(
        tmp_path,
        f"""\
        version: "26.4.4"
        name: failing
        tasks:
          - name: x
            command: echo about to fail; exit 3
          - name: y
            dependencies: [x]
            command: touch {ran}
          - name: z
            dependencies: [y]
            command: touch {ran}
          - name: other
            command: echo independent
        """,
    )

    assert view.status == JobStatus.FAILED
    x = view.tasks["x"]
    assert x.state == TaskState.FAILED
    assert x.reason == "exit code 3"
    assert exit_codes(view, "x") == [3]
    assert x.attempts[0].outcome == Outcome.FAILED
    assert view.tasks["y"].state == TaskState.SKIPPED
    assert view.tasks["y"].reason == "dependency 'x' failed"
    assert view.tasks["y"].attempts == ()
    assert view.tasks["z"].state == TaskState.SKIPPED
    assert view.tasks["z"].reason == "dependency 'y' was skipped"
    assert view.tasks["other"].state == TaskState.SUCCEEDED
    assert not ran.exists()
    assert log(store, job, "x") == "about to fail\n"
    assert tolerated_failures(job.pipeline_model(), view.tasks) == []


def test_continue_on_failure_lets_dependents_run_and_the_job_succeed(tmp_path: Path):
    view, store, job = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: tolerant
        tasks:
          - name: x
            continue_on_failure: true
            command: exit 3
          - name: y
            dependencies: [x]
            command: echo y ran > "$PIPELINE_OUTPUT_ROOT/y"
        """,
    )

    assert view.tasks["x"].state == TaskState.FAILED
    assert exit_codes(view, "x") == [3]
    assert view.tasks["y"].state == TaskState.SUCCEEDED
    assert output(store, job, "y", "y") == "y ran\n"
    assert view.status == JobStatus.SUCCEEDED
    assert tolerated_failures(job.pipeline_model(), view.tasks) == ["x"]


# -- retry and timeout ---------------------------------------------------------------------------


def test_retry_until_it_succeeds(tmp_path: Path):
    counter = tmp_path / "counter"
    view, store, job = run_job(
        tmp_path,
        f"""\
        version: "26.4.4"
        name: retrying
        tasks:
          - name: flaky
            command: n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo try $n; [ $n -ge 3 ]
            retry: {{max_attempts: 3, delay: 0.1}}
        """,
    )

    flaky = view.tasks["flaky"]
    assert flaky.state == TaskState.SUCCEEDED
    assert [a.number for a in flaky.attempts] == [1, 2, 3]
    assert exit_codes(view, "flaky") == [1, 1, 0]
    assert [a.outcome for a in flaky.attempts] == [Outcome.FAILED, Outcome.FAILED, Outcome.SUCCEEDED]
    for before, after in zip(flaky.attempts, flaky.attempts[1:]):
        assert after.started_at - before.ended_at >= 0.1
    assert counter.read_text() == "3\n"
    assert [log(store, job, "flaky", n) for n in (1, 2, 3)] == ["try 1\n", "try 2\n", "try 3\n"]
    assert view.status == JobStatus.SUCCEEDED
    kinds = [e.kind for e in store.events(job.id) if e.task == "flaky" and e.kind.startswith("task.")]
    assert kinds == ["task.submitted", "task.running", "task.waiting"] * 2 + [
        "task.submitted",
        "task.running",
        "task.succeeded",
    ]


def test_retry_gives_up_after_max_attempts(tmp_path: Path):
    view, _, _ = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: hopeless
        tasks:
          - name: broken
            command: exit 4
            retry: {max_attempts: 2, delay: 0.1}
        """,
    )

    broken = view.tasks["broken"]
    assert broken.state == TaskState.FAILED
    assert len(broken.attempts) == 2
    assert exit_codes(view, "broken") == [4, 4]
    assert broken.reason == "exit code 4"
    assert view.status == JobStatus.FAILED


def test_a_timeout_kills_the_task(tmp_path: Path):
    started = time.monotonic()
    view, _, _ = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: slow
        tasks:
          - name: sleeper
            command: sleep 30
            timeout: 1
        """,
    )
    took = time.monotonic() - started

    sleeper = view.tasks["sleeper"]
    assert sleeper.state == TaskState.FAILED
    assert len(sleeper.attempts) == 1
    assert sleeper.attempts[0].outcome == Outcome.TIMED_OUT
    assert sleeper.attempts[0].message == "timed out after 1s"
    assert sleeper.reason == "timed out after 1s"
    # the bounds are the behaviour: the timeout fires after its second, long before the sleep ends
    assert 1.0 <= sleeper.attempts[0].duration < 10
    assert took < 10
    assert view.status == JobStatus.FAILED


# -- cancel --------------------------------------------------------------------------------------

CANCELLABLE = """\
    version: "26.4.4"
    name: cancellable
    tasks:
      - name: long
        command: sleep 30
      - name: after
        dependencies: [long]
        command: echo never
      - name: flaky
        command: exit 1
        retry: {max_attempts: 3, delay: 30}
    """


def test_cancel_stops_running_waiting_and_pending_tasks(tmp_path: Path):
    runner, store, job = make_runner(tmp_path, CANCELLABLE)

    async def main() -> float:
        task = asyncio.ensure_future(drive(runner))
        # the long task runs, the flaky one waits for its retry, `after` is pending
        await when(
            runner, lambda r: r.tasks["long"].state == TaskState.RUNNING and r.tasks["flaky"].state == TaskState.WAITING
        )
        await asyncio.sleep(0.3)
        asyncio.get_running_loop().call_soon(runner.cancel)
        cancelled_at = time.monotonic()
        await task
        return time.monotonic() - cancelled_at

    took = asyncio.run(main())

    view = store.view(job.id)
    assert took < 5  # the bound is the behaviour: the cancel stops the job, long before the sleep ends
    assert view.status == JobStatus.CANCELLED
    assert not view.runner_alive
    long, after, flaky = view.tasks["long"], view.tasks["after"], view.tasks["flaky"]
    assert long.state == TaskState.CANCELLED
    assert len(long.attempts) == 1
    assert long.attempts[0].outcome == Outcome.CANCELLED
    assert long.attempts[0].ended_at is not None
    assert long.reason == "the job was cancelled"
    assert after.state == TaskState.CANCELLED
    assert after.reason == "the job was cancelled"
    assert after.attempts == ()
    assert flaky.state == TaskState.CANCELLED
    assert flaky.reason == "the job was cancelled"
    assert exit_codes(view, "flaky") == [1]  # the retry never started


def test_a_cancel_requested_through_another_store_is_noticed(tmp_path: Path):
    runner, store, job = make_runner(tmp_path, CANCELLABLE)
    other = Store(tmp_path / "state")  # as `jobs cancel` in another process would open it

    async def main() -> float:
        task = asyncio.ensure_future(drive(runner))
        await when(runner, lambda r: r.tasks["long"].state == TaskState.RUNNING)
        await asyncio.sleep(0.3)
        other.request_cancel(job.id)
        requested_at = time.monotonic()
        await task
        return time.monotonic() - requested_at

    took = asyncio.run(main())

    view = other.view(job.id)
    assert took < 5  # the bound is the behaviour: the request is noticed, long before the sleep ends
    assert view.cancel_requested
    assert view.status == JobStatus.CANCELLED
    assert view.tasks["long"].state == TaskState.CANCELLED
    assert view.tasks["long"].attempts[0].outcome == Outcome.CANCELLED
    assert view.tasks["after"].state == TaskState.CANCELLED
    kinds = [e.kind for e in other.events(job.id)]
    assert kinds.count("job.cancel_requested") == 1
    other.close()


# -- secrets and events --------------------------------------------------------------------------


def test_secrets_reach_the_task_and_are_masked_in_its_log(tmp_path: Path):
    secret = "s3cr3t-VALUE-42"
    view, store, job = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: secretive
        environment:
          envs: {TOKEN: "${{ secrets.API_TOKEN }}"}
        tasks:
          - name: use
            command: printf %s "$TOKEN" > "$PIPELINE_OUTPUT_ROOT/token"; echo "token=$TOKEN"; echo "cmd=${{ secrets.API_TOKEN }}"
        """,
        secrets={"API_TOKEN": secret, "UNUSED": "not-referenced"},
    )

    assert view.status == JobStatus.SUCCEEDED, view.tasks
    assert output(store, job, "use", "token") == secret
    text = log(store, job, "use")
    assert text == "token=***\ncmd=***\n"
    assert secret not in text
    for e in store.events(job.id):  # nothing recorded shows the value
        assert secret not in repr(e.data)


def test_events_of_one_task_are_recorded_in_order(tmp_path: Path):
    view, store, job = run_job(
        tmp_path,
        """\
        version: "26.4.4"
        name: eventful
        tasks:
          - name: only
            command: echo hi
        """,
    )

    assert view.status == JobStatus.SUCCEEDED
    events = store.events(job.id)
    assert events[0].kind == "job.created"
    assert events[0].task is None
    mine = [e for e in events if e.task == "only"]
    assert [e.kind for e in mine] == [
        "task.submitted",
        "attempt.started",
        "task.running",
        "attempt.ended",
        "task.succeeded",
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    ended = next(e for e in mine if e.kind == "attempt.ended")
    assert ended.data["number"] == 1
    assert ended.data["exit_code"] == 0
    assert ended.data["outcome"] == "succeeded"
    started = next(e for e in mine if e.kind == "attempt.started")
    assert started.at <= ended.at
    # following from the last seen seq gives nothing new once the job has ended
    assert store.events(job.id, after=events[-1].seq) == []


# -- taking over a job (resume=True) and interrupt() ------------------------------------------------------------
#
# The stored states below are what a runner leaves when it dies (kill -9) or is interrupted, written through the
# store's own API; the orphans are real process groups, so stopping them is observed, not assumed.


def orphan() -> subprocess.Popen:
    """A `sleep` in its own process group, as a task a killed runner left behind."""
    return subprocess.Popen(["sleep", "300"], start_new_session=True, stdin=subprocess.DEVNULL)


def died_while_running(store: Store, job: PipelineJob, task: str, process: subprocess.Popen) -> None:
    store.set_task_state(job.id, task, TaskState.SUBMITTED)
    store.start_attempt(job.id, task, 1, started_at=time.time(), handle=process_handle(process.pid))
    store.set_task_state(job.id, task, TaskState.RUNNING)


def succeeded_before(store: Store, job: PipelineJob, task: str) -> None:
    now = time.time()
    store.set_task_state(job.id, task, TaskState.SUBMITTED)
    store.start_attempt(job.id, task, 1, started_at=now)
    store.end_attempt(job.id, task, 1, ended_at=now, exit_code=0, outcome=Outcome.SUCCEEDED)
    store.set_task_state(job.id, task, TaskState.SUCCEEDED)


def resume(tmp_path: Path, store: Store, job: PipelineJob) -> JobView:
    runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path, resume=True)
    return asyncio.run(drive(runner))


def counting(runs: Path, name: str) -> str:
    return f"echo run >> {runs / name}"


def ran(runs: Path, name: str) -> int:
    path = runs / name
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("max_attempts", [2, 1])
def test_resume_stops_the_orphan_of_an_open_attempt_then_retries_or_fails_it(tmp_path: Path, max_attempts: int):
    runs = tmp_path / "runs"
    runs.mkdir()
    store = Store(tmp_path / "state")
    job = make_job(
        store,
        tmp_path,
        f"""\
        version: "26.4.4"
        name: resumed
        tasks:
          - name: first
            command: {counting(runs, "first")}
          - name: slow
            dependencies: [first]
            retry: {{max_attempts: {max_attempts}}}
            command: {counting(runs, "slow")}
          - name: last
            dependencies: [slow]
            command: {counting(runs, "last")}
        """,
    )
    left = orphan()
    try:
        succeeded_before(store, job, "first")
        died_while_running(store, job, "slow", left)
        assert store.view(job.id).status == JobStatus.INTERRUPTED

        view = resume(tmp_path, store, job)

        assert left.wait(timeout=30) == -9  # the orphan's group was killed
    finally:
        if left.poll() is None:
            left.kill()
            left.wait()
    slow = view.tasks["slow"]
    interrupted = slow.attempts[0]
    assert interrupted.outcome == Outcome.INTERRUPTED and interrupted.ended_at is not None
    assert interrupted.message == (
        f"interrupted: the runner stopped while it ran; its process group {left.pid}, still running, was stopped"
    )
    assert interrupted.message in log(store, job, "slow", 1)
    assert view.tasks["first"].attempts == store.view(job.id).tasks["first"].attempts
    assert ran(runs, "first") == 0  # succeeded before the take-over: never again
    assert not view.runner_alive
    if max_attempts == 2:
        assert [a.outcome for a in slow.attempts] == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
        assert view.status == JobStatus.SUCCEEDED
        assert (ran(runs, "slow"), ran(runs, "last")) == (1, 1)
    else:
        assert len(slow.attempts) == 1
        assert slow.state == TaskState.FAILED and slow.reason == interrupted.message
        assert view.tasks["last"].state == TaskState.SKIPPED
        assert view.status == JobStatus.FAILED
        assert (ran(runs, "slow"), ran(runs, "last")) == (0, 0)


def test_resume_settles_what_a_runner_that_died_between_two_writes_left(tmp_path: Path):
    """An attempt ended but its task not updated, and a task handed over but never started."""
    runs = tmp_path / "runs"
    runs.mkdir()
    store = Store(tmp_path / "state")
    job = make_job(
        store,
        tmp_path,
        f"""\
        version: "26.4.4"
        name: settled
        tasks:
          - name: done
            command: {counting(runs, "done")}
          - name: broke
            command: {counting(runs, "broke")}
          - name: flaky
            retry: {{max_attempts: 2}}
            command: {counting(runs, "flaky")}
          - name: fresh
            command: {counting(runs, "fresh")}
        """,
    )
    now = time.time()
    for name, outcome, code in (
        ("done", Outcome.SUCCEEDED, 0),
        ("broke", Outcome.FAILED, 3),
        ("flaky", Outcome.FAILED, 3),
    ):
        store.set_task_state(job.id, name, TaskState.RUNNING)
        store.start_attempt(job.id, name, 1, started_at=now)
        store.end_attempt(job.id, name, 1, ended_at=now, exit_code=code, outcome=outcome)
    store.set_task_state(job.id, "fresh", TaskState.SUBMITTED)

    view = resume(tmp_path, store, job)

    assert states(view) == {"done": "succeeded", "broke": "failed", "flaky": "succeeded", "fresh": "succeeded"}
    assert exit_codes(view, "done") == [0] and ran(runs, "done") == 0
    assert exit_codes(view, "broke") == [3] and ran(runs, "broke") == 0
    assert view.tasks["broke"].reason == "exit code 3"
    assert exit_codes(view, "flaky") == [3, 0] and ran(runs, "flaky") == 1
    assert exit_codes(view, "fresh") == [0] and ran(runs, "fresh") == 1
    assert view.status == JobStatus.FAILED


HANGS_ONCE = """\
    version: "26.4.4"
    name: interrupted
    tasks:
      - name: long
        retry: {{max_attempts: {max_attempts}}}
        command: 'echo run >> {runs}/long; if [ -e {runs}/again ]; then exit 0; fi; touch {runs}/again; echo $$ > {runs}/pid; sleep 300'
      - name: after
        dependencies: [long]
        command: echo run >> {runs}/after
    """


@pytest.mark.parametrize("max_attempts", [2, 1])
def test_interrupt_leaves_the_job_open_and_a_resumed_runner_goes_on(tmp_path: Path, max_attempts: int):
    runs = tmp_path / "runs"
    runs.mkdir()
    runner, store, job = make_runner(tmp_path, HANGS_ONCE.format(max_attempts=max_attempts, runs=runs))

    async def interrupted() -> None:
        task = asyncio.ensure_future(drive(runner))
        await when(runner, lambda r: (runs / "pid").exists() and (runs / "pid").read_text().strip())
        runner.interrupt("the daemon stopped (SIGTERM) before the task ended")
        await asyncio.wait_for(task, 30)

    asyncio.run(interrupted())

    view = store.view(job.id)
    assert view.status == JobStatus.INTERRUPTED and not view.runner_alive
    long = view.tasks["long"]
    assert long.state == TaskState.RUNNING  # open: the next runner decides
    assert [a.outcome for a in long.attempts] == [Outcome.INTERRUPTED]
    assert long.attempts[0].message == "interrupted: the daemon stopped (SIGTERM) before the task ended"
    assert long.attempts[0].ended_at is not None
    assert view.tasks["after"].state == TaskState.PENDING
    assert not alive(int((runs / "pid").read_text()))

    view = resume(tmp_path, store, job)

    if max_attempts == 2:
        assert [a.outcome for a in view.tasks["long"].attempts] == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
        assert view.status == JobStatus.SUCCEEDED
        assert (ran(runs, "long"), ran(runs, "after")) == (2, 1)
    else:
        assert view.tasks["long"].state == TaskState.FAILED
        assert view.tasks["long"].reason == "interrupted: the daemon stopped (SIGTERM) before the task ended"
        assert view.tasks["after"].state == TaskState.SKIPPED
        assert view.status == JobStatus.FAILED
        assert (ran(runs, "long"), ran(runs, "after")) == (1, 0)


def test_an_interrupt_as_a_task_is_handed_over_spends_no_attempt(tmp_path: Path):
    runs = tmp_path / "runs"
    runs.mkdir()
    text = f"""\
        version: "26.4.4"
        name: handed
        tasks:
          - name: only
            command: {counting(runs, "only")}
        """
    store = Store(tmp_path / "state")
    job = make_job(store, tmp_path, text)

    def interrupt_on_submit(change) -> None:
        if change.instance.state == TaskState.SUBMITTED:
            runner.interrupt("the daemon stopped (SIGTERM) before the task ended")

    runner = JobRunner(
        job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path, on_change=interrupt_on_submit
    )
    asyncio.run(drive(runner))

    view = store.view(job.id)
    assert view.status == JobStatus.INTERRUPTED
    assert view.tasks["only"].state == TaskState.WAITING
    assert view.tasks["only"].reason == "not started: the daemon stopped (SIGTERM) before the task ended"
    assert view.tasks["only"].attempts == () and ran(runs, "only") == 0

    view = resume(tmp_path, store, job)

    assert [a.outcome for a in view.tasks["only"].attempts] == [Outcome.SUCCEEDED]  # attempt 1, though no retries
    assert view.status == JobStatus.SUCCEEDED and ran(runs, "only") == 1


def test_resume_refuses_a_job_another_runner_drives(tmp_path: Path):
    store = Store(tmp_path / "state")
    job = make_job(store, tmp_path, MINIMAL)
    with store.claim(job.id):
        runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path, resume=True)
        with pytest.raises(StoreError, match="already being run by another process"):
            asyncio.run(runner.run())
    assert states(store.view(job.id)) == {"prepare": "pending", "train": "pending"}
