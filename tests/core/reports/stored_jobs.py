"""Jobs in a real store, as the runner leaves them: made through the store's own writes, or run for real on
the local executor where a story needs real logs; and the report the daemon's builder makes of them."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from fasttrack_gitops.core.job import Outcome, PipelineJob, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.reports.build import job_report
from fasttrack_gitops.core.reports.model import JobReport
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.reporters.logtail import failed_log_tails
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.store import Store

COMMIT = "c0ffee" * 6 + "beef"
PUBLIC = "https://ci.example.com"
PIPELINE = """\
version: "26.4.4"
name: train-eval
notify:
  slack: {channel: "#ml", on: [failure]}
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    command: echo train
    timeout: 30m
  - name: lint
    command: echo lint
    continue_on_failure: true
  - name: eval
    dependencies: [train]
    command: echo eval
"""
ENDS = {Outcome.SUCCEEDED: TaskState.SUCCEEDED, Outcome.CANCELLED: TaskState.CANCELLED}


def stored(store: Store, text: str = PIPELINE, *, trigger: dict | None = None) -> PipelineJob:
    checked = check_pipeline(textwrap.dedent(text).encode(), "pipelines/p.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        source="commit",
        commit=COMMIT,
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
        trigger=trigger or {"event": "push", "ref": "refs/heads/main", "sender": "alice"},
        now=1_700_000_000.0,
    )
    store.create_job(job)
    return job


def ran(
    store: Store,
    job: PipelineJob,
    task: str,
    *,
    start: float,
    seconds: float,
    outcome: Outcome = Outcome.SUCCEEDED,
    exit_code: int | None = None,
    reason: str = "",
) -> None:
    """The writes a runner makes for a task that ran once and ended so."""
    store.start_attempt(job.id, task, 1, started_at=start)
    store.set_task_state(job.id, task, TaskState.RUNNING)
    code = exit_code if exit_code is not None else (0 if outcome == Outcome.SUCCEEDED else None)
    store.end_attempt(job.id, task, 1, ended_at=start + seconds, exit_code=code, outcome=outcome, message=reason)
    store.set_task_state(job.id, task, ENDS.get(outcome, TaskState.FAILED), reason=reason)


def skipped(store: Store, job: PipelineJob, *tasks: str, reason: str = "dependency train failed") -> None:
    for task in tasks:
        store.set_task_state(job.id, task, TaskState.SKIPPED, reason=reason)


def report_of(store: Store, job: PipelineJob, masks=(), public_url: str | None = PUBLIC) -> JobReport:
    """What the daemon's report builder makes of the job now."""
    view = store.view(job.id)
    return job_report(view, log_tails=failed_log_tails(store, view, masks=masks), masks=masks, public_url=public_url)


def run_for_real(tmp_path: Path, store: Store, text: str) -> PipelineJob:
    """Run the pipeline to its end on the local executor (no secrets given: a log keeps what tasks print)."""
    job = stored(store, text)
    runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path)

    async def drive():
        try:
            await runner.run()
        finally:
            await runner.executor.close()

    asyncio.run(drive())
    return job
