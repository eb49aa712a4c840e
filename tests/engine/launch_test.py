"""Launching stored jobs: a real git repository, the local executor, a real SQLite store in tmp_path.

Each test freezes a pipeline at a commit, launches the job the way every
shell does (engine/launch.py), and asserts what the store and the job's
folders hold: working directories copied per job, outputs reused by a
failed-only re-run, cancels and interrupts, and the signals a shell wires.
"""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import await_until, git

from fasttrack_gitops.core.errors import FastTrackError, UsageError
from fasttrack_gitops.core.job import JobStatus, Outcome, PipelineJob, TaskState, freeze, rerun
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine import datafolder, gitrepo
from fasttrack_gitops.engine.launch import Launch, opened_executor, source_of, stop_signals
from fasttrack_gitops.engine.runner import Change
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

CHAIN = """\
version: "26.4.4"
name: chain
tasks:
  - name: a
    code: tasks/a
    command: sh make.sh
  - name: b
    dependencies: [a]
    command: cat "$PIPELINE_INPUT1/out.txt"; test -e {fixed}
"""


def stored(tmp_path: Path, pipeline: str, files: dict[str, str] | None = None) -> tuple[Store, PipelineJob]:
    """A job of the pipeline frozen at a new commit of a new repository (not stored yet), and the store."""
    repo = tmp_path / "repo"
    for relpath, text in {"pipelines/p.yaml": textwrap.dedent(pipeline), **(files or {})}.items():
        (repo / relpath).parent.mkdir(parents=True, exist_ok=True)
        (repo / relpath).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    snap = gitrepo.open_snapshot(repo, "HEAD")
    checked = check_pipeline(
        (repo / "pipelines/p.yaml").read_bytes(), "pipelines/p.yaml", code_lookup=gitrepo.code_lookup(snap)
    )
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/p.yaml",
        repository=str(repo),
        source=snap.kind,
        commit=snap.commit,
        ref=snap.ref,
        tree=snap.tree,
        code_trees={t.name: gitrepo.tree_id(snap, t.code) for t in checked.pipeline.tasks if t.code},
    )
    return Store(tmp_path / "state"), job


def launched(launch: Launch):
    async def main():
        try:
            return await launch.run()
        finally:
            await launch.executor.close()

    return asyncio.run(main())


def local():
    from fasttrack_gitops.engine.executors import get_executor

    return get_executor("local", bwrap=False)


@pytest.fixture
def chain(tmp_path):
    """(store, a stored job where a succeeded and b failed, the file that makes b pass)."""
    fixed = tmp_path / "fixed"
    store, job = stored(
        tmp_path,
        CHAIN.format(fixed=fixed),
        {"tasks/a/make.sh": f'echo from-a > "$PIPELINE_OUTPUT_ROOT/out.txt"; echo a ran >> {tmp_path}/a-runs\n'},
    )
    view = launched(Launch(job, store, local(), source=source_of(job, store), new=True))
    assert {n: i.state for n, i in view.tasks.items()} == {"a": TaskState.SUCCEEDED, "b": TaskState.FAILED}
    return store, job, fixed


def test_a_launch_stores_the_job_runs_it_in_copies_of_its_code_and_reports_each_change(tmp_path):
    store, job = stored(
        tmp_path, CHAIN.format(fixed="/"), {"tasks/a/make.sh": 'echo x > "$PIPELINE_OUTPUT_ROOT/out.txt"\n'}
    )
    changes: list[Change] = []
    view = launched(Launch(job, store, local(), source=source_of(job, store), new=True, on_change=changes.append))
    assert view.status == JobStatus.SUCCEEDED
    folder = store.data_dir(job.id)
    work = datafolder.work_folder(folder, job.code_trees["a"])
    assert (work / "make.sh").is_file()  # the job's own copy of a's code tree
    assert (datafolder.tree_folder(store.state_dir, job.code_trees["a"]) / "make.sh").is_file()  # shared, once
    assert (datafolder.outputs_folder(folder, "a") / "out.txt").read_text() == "x\n"
    assert [(c.task, c.instance.state) for c in changes if c.instance.ended] == [
        ("a", TaskState.SUCCEEDED),
        ("b", TaskState.SUCCEEDED),
    ]


def test_a_failed_only_rerun_reuses_the_succeeded_tasks_and_their_outputs(tmp_path, chain):
    store, old, fixed = chain
    fixed.touch()
    new = rerun(old)
    view = launched(Launch(new, store, local(), source=source_of(old, store), failed_only=True, new=True))
    assert view.status == JobStatus.SUCCEEDED
    a, b = view.tasks["a"], view.tasks["b"]
    assert (a.state, a.attempts, a.reason) == (TaskState.REUSED, (), f"reused from job {old.id}")
    assert a.reused_from == old.id
    assert (b.state, len(b.attempts)) == (TaskState.SUCCEEDED, 1)
    assert (tmp_path / "a-runs").read_text() == "a ran\n"  # a did not run again
    assert store.log_path(new.id, "b", 1).read_text() == "from-a\n"  # b read the outputs a left in the old job
    assert (datafolder.outputs_folder(store.data_dir(new.id), "a") / "out.txt").read_text() == "from-a\n"


def test_a_full_rerun_runs_every_task_again(tmp_path, chain):
    store, old, fixed = chain
    fixed.touch()
    view = launched(Launch(rerun(old), store, local(), source=source_of(old, store), new=True))
    assert view.status == JobStatus.SUCCEEDED and len(view.tasks["a"].attempts) == 1
    assert (tmp_path / "a-runs").read_text() == "a ran\na ran\n"


def test_a_job_whose_code_cannot_be_read_fails_its_tasks_with_the_reason(tmp_path):
    store, job = stored(tmp_path, CHAIN.format(fixed="/"), {"tasks/a/make.sh": "true\n"})
    problem = FastTrackError("commit c0ffee is not in the repository")
    view = launched(Launch(job, store, local(), unreadable=problem, new=True))
    a = view.tasks["a"]
    assert view.status == JobStatus.FAILED
    assert a.reason == "cannot prepare the working directory: commit c0ffee is not in the repository"
    assert [at.outcome for at in a.attempts] == [Outcome.ERROR]
    assert view.tasks["b"].state == TaskState.SKIPPED


def test_cancel_before_run_cancels_every_task(tmp_path):
    store, job = stored(tmp_path, CHAIN.format(fixed="/"), {"tasks/a/make.sh": "true\n"})
    launch = Launch(job, store, local(), source=source_of(job, store), new=True)
    launch.cancel()
    view = launched(launch)
    assert view.status == JobStatus.CANCELLED
    assert all(i.state == TaskState.CANCELLED and not i.attempts for i in view.tasks.values())


SLOW = """\
version: "26.4.4"
name: slow
tasks:
  - name: long
    command: sleep 30
  - name: next
    dependencies: [long]
    command: echo next
"""


def test_cancel_while_running_stops_the_attempt(tmp_path):
    store, job = stored(tmp_path, SLOW)

    def on_change(change: Change) -> None:
        if change.instance.state == TaskState.RUNNING:
            launch.cancel()

    launch = Launch(job, store, local(), source=source_of(job, store), new=True, on_change=on_change)
    view = launched(launch)
    assert view.status == JobStatus.CANCELLED
    assert [a.outcome for a in view.tasks["long"].attempts] == [Outcome.CANCELLED]
    assert view.tasks["next"].state == TaskState.CANCELLED


def test_an_interrupted_job_stays_open_and_a_resumed_launch_finishes_it(tmp_path):
    store, job = stored(tmp_path, SLOW)
    reason = "the daemon stopped (SIGTERM) before the task ended"

    def on_change(change: Change) -> None:
        if change.instance.state == TaskState.RUNNING:
            launch.interrupt(reason)

    launch = Launch(job, store, local(), source=source_of(job, store), new=True, on_change=on_change)
    view = launched(launch)
    long = view.tasks["long"]
    assert [(a.outcome, a.message) for a in long.attempts] == [(Outcome.INTERRUPTED, f"interrupted: {reason}")]
    assert view.tasks["next"].state == TaskState.PENDING  # left for the next runner
    resumed = launched(Launch(job, store, local(), source=source_of(job, store), resume=True))
    assert resumed.tasks["long"].state == TaskState.FAILED  # settled: an interrupted attempt, no retry policy
    assert resumed.tasks["long"].reason == f"interrupted: {reason}"


def test_interrupt_before_run_leaves_every_task_to_a_later_runner(tmp_path):
    store, job = stored(tmp_path, SLOW)
    store.create_job(job)
    launch = Launch(job, store, local(), source=source_of(job, store))
    launch.interrupt("the daemon stopped (SIGTERM) before the task ended")
    view = launched(launch)
    assert all(i.state == TaskState.PENDING and not i.attempts for i in view.tasks.values())


def test_the_opened_executor_is_closed_when_the_block_ends(tmp_path):
    store, job = stored(tmp_path, SLOW)
    running = asyncio.Event()

    def on_change(change: Change) -> None:
        if change.instance.state == TaskState.RUNNING:
            running.set()

    async def main():
        async with opened_executor("local", bwrap=False) as executor:
            launch = Launch(job, store, executor, source=source_of(job, store), new=True, on_change=on_change)
            driving = asyncio.create_task(launch.run())
            await running.wait()
        return await driving  # leaving the block stopped the attempt that still ran

    view = asyncio.run(main())
    assert [a.outcome for a in view.tasks["long"].attempts] == [Outcome.CANCELLED]


def test_an_unknown_executor_is_a_usage_error():
    async def main():
        async with opened_executor("nope"):
            raise AssertionError("never opened")

    with pytest.raises(UsageError, match="unknown executor 'nope'; known executors: backendai, local"):
        asyncio.run(main())


# -- signals -----------------------------------------------------------------------------------------------------


async def _signalled(sig: signal.Signals, received: list[signal.Signals]) -> None:
    """Send ourselves the signal; return once the handler has seen it (the loop runs it soon after)."""
    before = len(received)
    os.kill(os.getpid(), sig)
    await await_until(lambda: len(received) > before, interval=0.01, what=f"{sig.name} to reach the handler")


def test_sigint_and_sigterm_call_the_handler_while_the_block_runs():
    received: list[signal.Signals] = []

    async def main():
        with stop_signals(received.append):
            await _signalled(signal.SIGTERM, received)
            await _signalled(signal.SIGINT, received)
            await _signalled(signal.SIGINT, received)
        return signal.getsignal(signal.SIGTERM)

    assert asyncio.run(main()) == signal.SIG_DFL  # given back when the block ends
    assert received == [signal.SIGTERM, signal.SIGINT, signal.SIGINT]


def test_with_second_interrupt_raises_sigint_is_taken_once():
    received: list[signal.Signals] = []

    async def main():
        with stop_signals(received.append, second_interrupt_raises=True):
            await _signalled(signal.SIGINT, received)
            return signal.getsignal(signal.SIGINT)

    # a second Ctrl-C is Python's again: KeyboardInterrupt, stop at once
    assert asyncio.run(main()) is signal.default_int_handler
    assert received == [signal.SIGINT]


def test_off_the_main_thread_no_signal_is_wired():
    done: list[bool] = []

    async def main():
        with stop_signals(lambda sig: None):
            done.append(True)

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    thread.join(10)
    assert done == [True]


SHARED = """\
version: "26.4.4"
name: shared
tasks:
  - name: a
    code: code/common
    command: test "$(ls | wc -l)" -eq 300
  - name: b
    code: code/common
    command: test "$(ls | wc -l)" -eq 300
"""


def test_tasks_that_start_together_from_one_code_tree_both_get_it(tmp_path: Path):
    # Their working directories are prepared in two worker threads at once: one copy wins, both use it.
    repo = tmp_path / "repo"
    (repo / "code" / "common").mkdir(parents=True)
    for i in range(300):
        (repo / "code" / "common" / f"f{i:03d}.txt").write_text(f"file {i}\n" * 100)
    (repo / "pipelines").mkdir()
    (repo / "pipelines" / "shared.yaml").write_text(SHARED)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one code tree, two tasks")
    snap = gitrepo.open_snapshot(repo)
    tree = gitrepo.tree_id(snap, "code/common")
    checked = check_pipeline(textwrap.dedent(SHARED).encode(), "pipelines/shared.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/shared.yaml",
        repository=str(repo),
        source="commit",
        commit=snap.commit,
        ref=snap.ref,
        tree=snap.tree,
        code_trees={"a": tree, "b": tree},
    )
    store = Store(tmp_path / "state")
    view = launched(Launch(job, store, local(), source=snap, new=True))

    assert view.status == JobStatus.SUCCEEDED, {n: i.reason for n, i in view.tasks.items()}
    work = datafolder.work_folder(store.data_dir(job.id), tree).parent
    assert [p.name for p in work.iterdir()] == [tree]  # one copy, no partial one left behind
