"""A job's conclusion and one-line title, from the queue to each way it can end: real jobs in a real store."""

from __future__ import annotations

import pytest
from core.reports.markdown_reading import mermaid_classes, table_rows
from core.reports.stored_jobs import COMMIT, PIPELINE, ran, report_of, skipped, stored

from fasttrack_gitops.core.job import Outcome, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.reports.conclusion import conclusion
from fasttrack_gitops.core.reports.model import TaskRow
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.store import Store

# -- a job that ended ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("story", "expected", "title"),
    [
        ("all succeed", "success", "Succeeded: 4 tasks in 2m"),
        ("lint fails", "neutral", "Succeeded with tolerated failures: lint (exit 1); 3 of 4 tasks succeeded"),
        ("train times out", "timed_out", "Timed out: train after 30m"),
        ("train times out, lint fails", "timed_out", "Timed out: train after 30m"),
        ("prepare fails", "failure", "Failed: prepare (exit 2); 1 of 4 tasks succeeded"),
        ("train is cancelled", "cancelled", "Cancelled: 2 of 4 tasks succeeded"),
    ],
)
def test_the_conclusion_and_title_of_each_ending(store: Store, story: str, expected: str, title: str):
    job = stored(store)
    lint = Outcome.FAILED if "lint fails" in story else Outcome.SUCCEEDED
    ran(
        store,
        job,
        "lint",
        start=0,
        seconds=5,
        outcome=lint,
        exit_code=1 if lint == Outcome.FAILED else 0,
        reason="exit code 1" if lint == Outcome.FAILED else "",
    )
    if story == "prepare fails":
        ran(store, job, "prepare", start=0, seconds=5, outcome=Outcome.FAILED, exit_code=2, reason="exit code 2")
        skipped(store, job, "train", "eval", reason="dependency prepare failed")
    else:
        ran(store, job, "prepare", start=0, seconds=10)
        if "times out" in story:
            ran(store, job, "train", start=10, seconds=1800, outcome=Outcome.TIMED_OUT, reason="timed out after 30m")
            skipped(store, job, "eval")
        elif "cancelled" in story:
            ran(store, job, "train", start=10, seconds=60, outcome=Outcome.CANCELLED, reason="the job was cancelled")
            store.set_task_state(job.id, "eval", TaskState.CANCELLED, reason="the job was cancelled")
        else:
            ran(store, job, "train", start=10, seconds=90)
            ran(store, job, "eval", start=100, seconds=30)

    view = store.view(job.id)
    report = report_of(store, job)

    assert conclusion(view) == report.conclusion == expected
    assert report.title.startswith(title)


def test_a_timeout_beside_another_failure_is_a_failure(store: Store):
    job = stored(
        store,
        """\
        version: "26.4.4"
        name: pair
        tasks:
          - {name: a, command: sleep 100, timeout: 5}
          - {name: b, command: exit 1}
        """,
    )
    ran(store, job, "a", start=0, seconds=5, outcome=Outcome.TIMED_OUT, reason="timed out after 5s")
    ran(store, job, "b", start=0, seconds=1, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")

    report = report_of(store, job)

    assert report.conclusion == "failure"
    assert report.title == "Failed: a (timed out), b (exit 1); 0 of 2 tasks succeeded"


# -- a job that has not ended ----------------------------------------------------------------------


def test_the_title_follows_a_job_from_the_queue_to_an_interrupted_run(store: Store):
    job = freeze(
        check_pipeline(PIPELINE.encode(), "pipelines/p.yaml").pipeline,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        source="commit",
        commit=COMMIT,
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
        trigger={"event": "push", "sender": "alice"},
    )
    ledger = Ledger(store)
    ledger.add_job(JobKey("acme/models", COMMIT, "pipelines/p.yaml", "push:refs/heads/main"), job)
    seen = []

    def look() -> None:
        report = report_of(store, job)
        assert report.conclusion is None and conclusion(store.view(job.id)) is None
        seen.append((report.status, report.title, report.started))

    look()
    with store.claim(job.id):  # a runner drives it
        ledger.mark_started(job.id)
        look()
        ran(store, job, "prepare", start=0, seconds=10)
        store.start_attempt(job.id, "train", 1, started_at=10)
        store.set_task_state(job.id, "train", TaskState.RUNNING)
        look()
        running = report_of(store, job)
        ran(store, job, "lint", start=0, seconds=3, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")
        look()
        store.request_cancel(job.id)
        look()
    look()  # the runner died with the job open

    assert seen == [
        ("queued", "Queued", False),
        ("pending", "Starting: 4 tasks", False),
        ("running", "Running: 1 of 4 tasks done", True),
        ("running", "Running: 2 of 4 tasks done; lint (exit 1) failed", True),
        ("running", "Cancelling: 2 of 4 tasks done; lint (exit 1) failed", True),
        ("interrupted", "Interrupted: 2 of 4 tasks done; lint (exit 1) failed; no runner is driving the job", True),
    ]
    assert table_rows(running.summary)[1] == ["`train`", "🔄 running", "…", "1", ""]
    assert running.tasks[1] == TaskRow("train", "running", None, 1)
    assert mermaid_classes(running.summary) == {"t0": "succeeded", "t1": "running", "t2": "pending", "t3": "pending"}
