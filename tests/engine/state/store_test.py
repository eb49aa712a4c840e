"""The state store: real SQLite files in a temp folder, and real processes where the story needs them."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import MINIMAL, PATIENCE, PROJECT

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.job import JobStatus, Outcome, PipelineJob, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine.state.errors import JobRecordError
from fasttrack_gitops.engine.state.store import Store


def make_job(text: str = MINIMAL, *, now: float = 1_700_000_000.0, job_id: str | None = None, **kwargs) -> PipelineJob:
    pipeline = check_pipeline(text.encode(), "p.yaml").pipeline
    assert pipeline is not None
    fields = dict(
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
    )
    job = freeze(pipeline, **{**fields, **kwargs}, now=now)
    return dataclasses.replace(job, id=job_id) if job_id else job


def chain(n: int, name: str = "big") -> str:
    """A pipeline of n tasks, each depending on the one before."""
    lines = ['version: "26.4.4"', f"name: {name}", "tasks:"]
    for i in range(n):
        lines += [f"  - name: t{i}", f"    command: echo {i}"] + ([f"    dependencies: [t{i - 1}]"] if i else [])
    return "\n".join(lines) + "\n"


def run_task(
    store: Store,
    job_id: str,
    task: str,
    *,
    start: float = 0.0,
    seconds: float = 1.0,
    outcome: Outcome = Outcome.SUCCEEDED,
) -> None:
    """The six writes a runner makes for a task that runs once."""
    store.set_task_state(job_id, task, TaskState.WAITING)
    store.set_task_state(job_id, task, TaskState.SUBMITTED)
    store.start_attempt(job_id, task, 1, started_at=start)
    store.set_task_state(job_id, task, TaskState.RUNNING)
    store.end_attempt(
        job_id, task, 1, ended_at=start + seconds, exit_code=0 if outcome == Outcome.SUCCEEDED else 1, outcome=outcome
    )
    store.set_task_state(job_id, task, TaskState.SUCCEEDED if outcome == Outcome.SUCCEEDED else TaskState.FAILED)


PRELUDE = """
import sys, time
from pathlib import Path
from fasttrack_gitops.core.job import Outcome, TaskState
from fasttrack_gitops.engine.state.store import Store
"""


def python(code: str, *args: object) -> subprocess.Popen:
    """Start `python -c PRELUDE+code args...` in the project, with pipes for its output."""
    env = {**os.environ, "PYTHONPATH": f"{PROJECT}{os.pathsep}{PROJECT / 'tests'}"}
    argv = [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *map(str, args)]
    return subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen, timeout: float = PATIENCE) -> str:
    """The next line proc prints; the test fails, and proc is killed, when none comes within timeout seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():  # readline() cannot be given a deadline: killing proc ends it (at end of file)
        proc.kill()
        reader.join()
        pytest.fail(f"the subprocess printed no line in {timeout:g}s:\n{proc.communicate()[1]}")
    return lines[0].strip()


def wait_for_line(proc: subprocess.Popen, expected: str) -> None:
    line = read_line(proc)
    if line != expected:
        proc.kill()
        pytest.fail(f"the subprocess said {line!r}, not {expected!r}:\n{proc.communicate()[1]}")


def finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


@contextmanager
def raw(store_dir: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the state database, the way another tool would open it; closed after."""
    cx = sqlite3.connect(store_dir / "state.db", isolation_level=None)
    try:
        yield cx
    finally:
        cx.close()


# -- a job's story: stored once, its task instances change, readers see them


def test_a_job_its_task_instances_and_attempts_read_back_as_written(store, tmp_path):
    job = make_job(code_trees={"train": "a" * 40}, trigger={"event": "push", "sha": "abc"}, dirty=True)
    store.create_job(job)
    store.set_task_state(job.id, "prepare", TaskState.RUNNING, at=10.0)
    store.start_attempt(job.id, "prepare", 1, started_at=10.0)
    store.end_attempt(job.id, "prepare", 1, ended_at=12.5, exit_code=0, outcome=Outcome.SUCCEEDED)
    store.set_task_state(job.id, "prepare", TaskState.SUCCEEDED, at=12.5)
    store.start_attempt(job.id, "train", 1, started_at=13.0)
    store.end_attempt(job.id, "train", 1, ended_at=14.0, exit_code=137, outcome=Outcome.FAILED, message="OOM")
    store.set_task_state(job.id, "train", TaskState.WAITING, reason="retry 2 of 3", next_attempt_at=20.0)
    store.start_attempt(job.id, "train", 2, started_at=20.0)

    with Store(tmp_path / "state") as other:  # a second reader, as `status` in another process would be
        assert other.job(job.id) == job
        view = other.view(job.id)
    assert view.job == job and view.job.dirty is True and view.job.trigger == {"event": "push", "sha": "abc"}
    assert list(view.tasks) == ["prepare", "train"]
    prepare, train = view.tasks.values()
    assert prepare.state == TaskState.SUCCEEDED and prepare.duration == 2.5 and prepare.exit_code == 0
    assert train.state == TaskState.WAITING and train.reason == "retry 2 of 3" and train.next_attempt_at == 20.0
    assert [a.number for a in train.attempts] == [1, 2]
    assert train.attempts[0].outcome == Outcome.FAILED and train.attempts[0].message == "OOM"
    assert train.attempts[1].outcome is None and train.attempts[1].ended_at is None
    assert view.status == JobStatus.INTERRUPTED and not view.runner_alive  # no runner holds it
    kinds = [(e.kind, e.task) for e in store.events(job.id)]
    assert kinds == [
        ("job.created", None),
        ("task.running", "prepare"),
        ("attempt.started", "prepare"),
        ("attempt.ended", "prepare"),
        ("task.succeeded", "prepare"),
        ("attempt.started", "train"),
        ("attempt.ended", "train"),
        ("task.waiting", "train"),
        ("attempt.started", "train"),
    ]
    waiting = store.events(job.id)[-2]
    assert waiting.data == {"reason": "retry 2 of 3", "next_attempt_at": 20.0}
    assert store.events(job.id, after=waiting.seq)[0].data == {"number": 2}


def test_status_follows_the_task_instances_and_the_runner(store):
    job = make_job()
    store.create_job(job)
    with store.claim(job.id):
        assert store.view(job.id).status == JobStatus.PENDING
        store.set_task_state(job.id, "prepare", TaskState.RUNNING)
        assert store.view(job.id).status == JobStatus.RUNNING and store.view(job.id).runner_alive
        store.set_task_state(job.id, "prepare", TaskState.SUCCEEDED)
        store.set_task_state(job.id, "train", TaskState.FAILED, reason="exit code 1")
    view = store.view(job.id)  # every task ended: its conclusion, though no runner is alive
    assert view.status == JobStatus.FAILED and not view.runner_alive


def test_a_job_is_stored_once_and_never_changed(store, tmp_path):
    job = make_job()
    store.create_job(job)
    with pytest.raises(JobRecordError, match="already stored"):
        store.create_job(job)
    with raw(tmp_path / "state") as cx, pytest.raises(sqlite3.DatabaseError, match="immutable"):
        cx.execute("UPDATE jobs SET ref = 'x'")


def test_writes_about_tasks_attempts_or_jobs_that_do_not_exist_are_refused(store):
    job = make_job()
    store.create_job(job)
    with pytest.raises(JobRecordError, match="no task 'nope'"):
        store.set_task_state(job.id, "nope", TaskState.RUNNING)
    with pytest.raises(JobRecordError, match="cannot start attempt 1 of task 'nope'"):
        store.start_attempt(job.id, "nope", 1, started_at=0)
    store.start_attempt(job.id, "train", 1, started_at=0)
    with pytest.raises(JobRecordError, match="cannot start attempt 1"):
        store.start_attempt(job.id, "train", 1, started_at=0)
    with pytest.raises(JobRecordError, match="no attempt 2"):
        store.end_attempt(job.id, "train", 2, ended_at=1, exit_code=0, outcome=Outcome.SUCCEEDED)
    with pytest.raises(JobRecordError, match="no job 'ghost'"):
        store.add_event("ghost", "note")
    with pytest.raises(JobRecordError, match="no job 'ghost'"):
        store.request_cancel("ghost")
    assert len(store.events(job.id)) == 2  # job.created, attempt.started: the refused writes left nothing


# -- finding jobs


def test_a_unique_prefix_finds_a_job_and_an_ambiguous_or_unknown_one_says_so(store, tmp_path):
    ids = ["20260101-000000-aaaaaa", "20260101-000000-aabbbb", "20260202-000000-cccccc"]
    for job_id in ids:
        store.create_job(make_job(job_id=job_id))
    assert store.job("20260202").id == ids[2]
    assert store.view("20260101-000000-aab").job.id == ids[1]
    assert store.job(ids[0]).id == ids[0]
    with pytest.raises(JobRecordError) as ambiguous:
        store.job("20260101-000000-aa")
    assert ids[0] in str(ambiguous.value) and ids[1] in str(ambiguous.value)
    with pytest.raises(JobRecordError) as unknown:
        store.view("2027")
    assert str(unknown.value) == f"no job '2027' in {tmp_path / 'state'}"
    assert unknown.value.exit_code == 2 and isinstance(unknown.value, UsageError)


def test_an_ambiguous_prefix_lists_at_most_five_candidates(store):
    for i in range(7):
        store.create_job(make_job(job_id=f"20260101-000000-00000{i}"))
    with pytest.raises(JobRecordError) as ambiguous:
        store.job("2026")
    assert str(ambiguous.value).count("20260101-") == 5 and "..." in str(ambiguous.value)


def test_list_jobs_newest_first_filtered_by_pipeline_and_status_and_limited(store):
    other = MINIMAL.replace("name: demo", "name: other")
    jobs = [
        make_job(now=100, job_id="j1"),
        make_job(now=200, job_id="j2"),
        make_job(now=200, job_id="j3"),
        make_job(other, now=300, job_id="j4"),
        make_job(now=50, job_id="j0"),
    ]
    for job in jobs:
        store.create_job(job)
    for task in ("prepare", "train"):
        store.set_task_state("j2", task, TaskState.SUCCEEDED)

    def ids(views):
        return [v.job.id for v in views]

    assert ids(store.list_jobs()) == ["j4", "j3", "j2", "j1", "j0"]
    assert ids(store.list_jobs(limit=2)) == ["j4", "j3"]
    assert ids(store.list_jobs(pipeline="demo", limit=3)) == ["j3", "j2", "j1"]
    assert ids(store.list_jobs(pipeline="other")) == ["j4"]
    assert ids(store.list_jobs(status=JobStatus.SUCCEEDED)) == ["j2"]
    assert ids(store.list_jobs(status=JobStatus.INTERRUPTED, limit=2)) == ["j4", "j3"]
    assert ids(store.list_jobs(pipeline="other", status=JobStatus.SUCCEEDED)) == []
    with store.claim("j1"):
        assert ids(store.list_jobs(status=JobStatus.PENDING)) == ["j1"]


def test_list_jobs_with_a_status_filter_pages_through_many_jobs(store):
    for i in range(120):
        store.create_job(make_job(now=i, job_id=f"j{i:03}"))
        if i % 40 == 0:
            store.set_task_state(f"j{i:03}", "prepare", TaskState.CANCELLED)
            store.set_task_state(f"j{i:03}", "train", TaskState.CANCELLED)
    assert [v.job.id for v in store.list_jobs(status=JobStatus.CANCELLED)] == ["j080", "j040", "j000"]
    assert len(store.list_jobs(limit=0)) == 120


def test_the_event_log_is_append_only(store, tmp_path):
    job = make_job()
    store.create_job(job)
    seq = store.add_event(job.id, "note", data={"text": "hello"})
    with raw(tmp_path / "state") as cx:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            cx.execute("UPDATE events SET kind = 'forged' WHERE seq = ?", (seq,))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            cx.execute("DELETE FROM events")
    assert store.events(job.id)[-1].kind == "note" and store.events(job.id)[-1].data == {"text": "hello"}


# -- many processes, one state folder


def test_two_processes_writing_different_jobs_at_once_all_land(tmp_path):
    writer = """
    from conftest import wait_until
    from engine.state.store_test import make_job
    folder, go = Path(sys.argv[1]), Path(sys.argv[2])
    store = Store(folder)  # both open a fresh folder at once: one migrates, the other waits
    job = make_job()
    store.create_job(job)
    print(job.id, flush=True)
    wait_until(go.exists, interval=0.001, what="the test to say go")
    for i in range(200):
        if i % 2:
            store.add_event(job.id, "note", data={"i": i})
        else:
            store.set_task_state(job.id, "prepare", TaskState.RUNNING, reason=str(i))
    """
    go = tmp_path / "go"
    procs = [python(writer, tmp_path / "state", go) for _ in range(2)]
    ids = [read_line(p) for p in procs]
    go.touch()
    for p in procs:
        finish(p)
    with Store(tmp_path / "state") as store:
        for job_id in ids:
            events = store.events(job_id)
            assert len(events) == 201 and [e.kind for e in events[1:3]] == ["task.running", "note"]
            assert store.view(job_id).tasks["prepare"].reason == "198"
        with raw(tmp_path / "state") as cx:
            assert cx.execute("SELECT count(*) FROM events").fetchone()[0] == 402


def test_a_reader_sees_consistent_snapshots_while_another_process_runs_a_job(tmp_path):
    with Store(tmp_path) as store:
        job = make_job(chain(200))
        store.create_job(job)
        runner = python(
            """
        from engine.state.store_test import run_task
        store = Store(Path(sys.argv[1]))
        with store.claim(sys.argv[2]):
            print("ready", flush=True)
            for i in range(200):
                run_task(store, sys.argv[2], f"t{i}", start=time.time(), seconds=0.001)
        """,
            tmp_path,
            job.id,
        )
        wait_for_line(runner, "ready")
        seen_running, done_before = 0, 0
        while runner.poll() is None:
            view = store.view(job.id)
            done = sum(t.state == TaskState.SUCCEEDED for t in view.tasks.values())
            assert done >= done_before
            done_before = done
            for t in view.tasks.values():  # the runner writes: submitted, attempt started, running, ended
                if t.attempts:
                    assert t.state in (TaskState.SUBMITTED, TaskState.RUNNING, TaskState.SUCCEEDED)
                if t.attempts and t.attempts[-1].ended_at is not None:
                    assert t.state in (TaskState.RUNNING, TaskState.SUCCEEDED)
            seen_running += view.status == JobStatus.RUNNING
        finish(runner)
        assert seen_running > 0, "the reader never read while the runner wrote"
        assert store.view(job.id).status == JobStatus.SUCCEEDED
        assert len(store.events(job.id)) == 1 + 200 * 6


def test_a_cancel_request_is_seen_by_another_store(store, tmp_path):
    job = make_job()
    store.create_job(job)
    with Store(tmp_path / "state") as other:
        assert not other.cancel_requested(job.id)
        store.request_cancel(job.id)
        store.request_cancel(job.id)
        assert other.cancel_requested(job.id) and other.view(job.id).cancel_requested
    assert [e.kind for e in store.events(job.id)].count("job.cancel_requested") == 1
