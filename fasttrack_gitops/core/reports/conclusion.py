"""How a job stands, in words: the check's conclusion and the one-line title a person reads. Pure.

The conclusion is GitHub's word (success, failure, cancelled, timed_out,
neutral), which GitLab and Slack map to theirs; the title names what
happened and, for a failure, which tasks failed and why in a word or two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fasttrack_gitops.core.job import (
    JobStatus,
    JobView,
    Outcome,
    TaskInstance,
    TaskState,
    conclusion_status,
    tolerated_failures,
)
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.reports.markdown import shorten

TITLE_TASKS = 3  # failed tasks a title names before "and N more"
OUTCOME_WORDS = {
    Outcome.TIMED_OUT: "timed out",
    Outcome.ERROR: "could not start",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.CANCELLED: "cancelled",
}


# -- the conclusion ---------------------------------------------------------------------------------


def conclusion(view: JobView) -> str | None:
    """The check's conclusion: None until every task ended (an invalid job ends at once, failed)."""
    return conclusion_for(view, None if view.job.invalid else view.job.pipeline_model())


def conclusion_for(view: JobView, pipeline: Pipeline | None) -> str | None:
    """success, failure, cancelled, timed_out (every failure that fails the job timed out) or neutral
    (the only failures were continue_on_failure tasks): GitHub's words, which GitLab and Slack map."""
    if pipeline is None:
        return "failure"
    if not all(i.ended for i in view.tasks.values()):
        return None
    status = conclusion_status(pipeline, view.tasks)
    if status == JobStatus.CANCELLED:
        return "cancelled"
    if status == JobStatus.FAILED:
        return "timed_out" if all(_timed_out(view.tasks[n]) for n in _job_failures(view, pipeline)) else "failure"
    return "neutral" if tolerated_failures(pipeline, view.tasks) else "success"


def _job_failures(view: JobView, pipeline: Pipeline) -> list[str]:
    """Failed tasks that fail the job (not continue_on_failure), in pipeline order."""
    return [
        t.name
        for t in pipeline.tasks
        if not t.continue_on_failure and t.name in view.tasks and view.tasks[t.name].state == TaskState.FAILED
    ]


def _timed_out(instance: TaskInstance) -> bool:
    return bool(instance.attempts) and instance.attempts[-1].outcome == Outcome.TIMED_OUT


# -- the title: one line ----------------------------------------------------------------------------


def title(view: JobView, pipeline: Pipeline | None, ended: str | None) -> str:
    """One line a person reads in a list of checks or a Slack channel, and knows what happened."""
    if pipeline is None:
        return f"Invalid pipeline file: {_diagnostic_counts(view.job.diagnostics)}"
    instances = list(view.tasks.values())
    total, done = len(instances), sum(i.ended for i in instances)
    reused = _count(instances, TaskState.REUSED)
    succeeded = f"{_count(instances, TaskState.SUCCEEDED) + reused} of {total} tasks succeeded"
    if ended is None:
        return _open_title(view, done, total)
    if ended == "success":
        skipped = _count(instances, TaskState.SKIPPED)
        ran = f"{total - skipped} of {total} tasks" if skipped else plural(total, "task")
        if reused:  # "ran 3 · reused 7": what the cache saved is the headline
            ran = f"ran {total - skipped - reused} · reused {reused} of {total} tasks"
        took = _job_duration(instances)
        return (
            f"Succeeded: {ran}{f' in {format_duration(took)}' if took is not None else ''}"
            f"{f' ({skipped} skipped)' if skipped else ''}"
        )
    if ended == "timed_out":
        return "Timed out: " + _names(
            f"{n} after {_timeout(view.tasks[n], pipeline)}" for n in _job_failures(view, pipeline)
        )
    if ended == "cancelled":
        return f"Cancelled: {succeeded}"
    if ended == "neutral":
        tolerated = tolerated_failures(pipeline, view.tasks)
        return f"Succeeded with tolerated failures: {_failed_names(view, tolerated)}; {succeeded}"
    return f"Failed: {_failed_names(view, _job_failures(view, pipeline))}; {succeeded}"


def _open_title(view: JobView, done: int, total: int) -> str:
    """The title of a job that has not ended."""
    if view.status == JobStatus.QUEUED:
        return "Queued"
    if view.status == JobStatus.PENDING:
        return f"Starting: {plural(total, 'task')}"
    failed = [n for n, i in view.tasks.items() if i.state == TaskState.FAILED]
    so_far = f"; {_failed_names(view, failed)} failed" if failed else ""
    if view.status == JobStatus.INTERRUPTED:
        return f"Interrupted: {done} of {total} tasks done{so_far}; no runner is driving the job"
    return f"{'Cancelling' if view.cancel_requested else 'Running'}: {done} of {total} tasks done{so_far}"


def _failed_names(view: JobView, names: Sequence[str]) -> str:
    """'train (exit 3), eval (timed out)': why each failed, in a word or two."""
    return _names(f"{n} ({why(view.tasks[n])})" for n in names)


def why(instance: TaskInstance) -> str:
    """Why a task failed in a word or two ("exit 3", "timed out"), else its reason, shortened."""
    last = instance.attempts[-1] if instance.attempts else None
    if last is None or last.outcome is None:
        return shorten(instance.reason, 80) or "failed"
    if last.outcome == Outcome.FAILED and last.exit_code is not None:
        return f"exit {last.exit_code}"
    return OUTCOME_WORDS.get(last.outcome, str(last.outcome))


def _timeout(instance: TaskInstance, pipeline: Pipeline) -> str:
    """The task's timeout as written, else how long its last attempt ran."""
    limit = pipeline.task(instance.name).timeout
    took = limit if limit is not None else instance.attempts[-1].duration
    return format_duration(took) if took is not None else "its timeout"


def _names(items: Iterable[str]) -> str:
    items = list(items)
    more = len(items) - TITLE_TASKS
    return ", ".join(items[:TITLE_TASKS]) + (f" and {more} more" if more > 0 else "")


def _job_duration(instances: Sequence[TaskInstance]) -> float | None:
    """From the first attempt's start to the last attempt's end, across tasks (None when nothing ran)."""
    starts = [a.started_at for i in instances for a in i.attempts]
    ends = [a.ended_at for i in instances for a in i.attempts if a.ended_at is not None]
    return max(ends) - min(starts) if starts and ends else None


def _count(instances: Sequence[TaskInstance], state: TaskState) -> int:
    return sum(i.state == state for i in instances)


def plural(n: int, word: str) -> str:
    """'1 task', '3 tasks'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _diagnostic_counts(diagnostics: Sequence[Mapping[str, Any]]) -> str:
    errors = sum(d.get("severity") == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    return plural(errors, "error") + (f", {plural(warnings, 'warning')}" if warnings else "")
