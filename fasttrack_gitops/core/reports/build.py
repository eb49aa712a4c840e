"""What a person sees about a job on GitHub, GitLab and Slack: a JobReport built from a JobView. Pure.

Callers read the store and the logs (logtail.py) and pass them in; this
module decides the words: a one-line title, a Markdown summary (task table,
the DAG coloured by state, where the job came from), the failed tasks' log
tails, an invalid pipeline file's diagnostics as annotations, and the check's
conclusion. Every text is masked here, once more, whatever the caller did.

GitHub refuses (422) a summary or text over 65,535: its docs say characters,
its API counts UTF-8 bytes (github/docs#35252), so bytes are what we count.
Truncation keeps Markdown whole: it cuts at a line end, closes a code block
it cut into, drops a Mermaid block it would cut (half a graph does not draw),
and says how much is left out and where to read it all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fasttrack_gitops.core.comment_commands import Gate
from fasttrack_gitops.core.job import (
    JobStatus,
    JobView,
    Outcome,
    PipelineJob,
    TaskInstance,
    TaskState,
    conclusion_status,
    tolerated_failures,
)
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.render.graph import mermaid
from fasttrack_gitops.core.reports.markdown import MAX_BYTES, byte_size, cell, code, fence_for, fit, inline, shorten
from fasttrack_gitops.core.reports.model import Annotation, JobReport, TaskRow

MERMAID_MAX = 50_000  # Mermaid's default maxTextSize: a bigger graph shows as an error instead
MERMAID_EDGES = 500  # Mermaid's default maxEdges, the same
TITLE_TASKS = 3  # failed tasks a title names before "and N more"
NOTE_MAX = 300  # characters of a reason in the task table or a title
GATE_PIPELINE = "ok-to-test"  # a held fork's check is fasttrack/ok-to-test
ICONS = {
    "pending": "⚪",
    "waiting": "⏳",
    "submitted": "📤",
    "running": "🔄",
    "succeeded": "✅",
    "failed": "❌",
    "skipped": "⏭️",
    "cancelled": "🚫",
}
OUTCOME_WORDS = {
    Outcome.TIMED_OUT: "timed out",
    Outcome.ERROR: "could not start",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.CANCELLED: "cancelled",
}


# -- the report of a job --------------------------------------------------------------------------


def job_report(
    view: JobView, *, log_tails: Mapping[str, str], masks: Sequence[str], public_url: str | None = None
) -> JobReport:
    """The job as a person should see it now; `log_tails` are the failed tasks' (failed_log_tails)."""
    job = view.job
    masks = tuple(m for m in masks if m)
    pipeline = None if job.invalid else job.pipeline_model()
    ended = _conclusion(view, pipeline)
    url = f"{public_url.rstrip('/')}/jobs/{job.id}" if public_url else None
    tails = {name: masked(tail, masks) for name, tail in log_tails.items() if tail and name in view.tasks}
    body = _diagnostics_list(job) if pipeline is None else _task_table(view, pipeline) + _graph(view, pipeline)
    footer = masked(_origin(job, url), masks)
    return JobReport(
        job_id=job.id,
        repository=job.repository,
        pipeline=job.pipeline,
        pipeline_path=job.pipeline_path,
        commit=job.commit or "",
        ref=job.ref,
        trigger=dict(job.trigger),
        status=str(view.status),
        conclusion=ended,
        started=any(i.attempts for i in view.tasks.values()),
        title=masked(_title(view, pipeline, ended), masks),
        summary=fit(masked(body, masks), job.id, limit=MAX_BYTES - byte_size(footer)) + footer,
        text=fit(masked(_failures_text(view, pipeline, tails), masks), job.id),
        tasks=tuple(
            TaskRow(i.name, str(i.state), i.duration, len(i.attempts), masked(i.reason, masks))
            for i in view.tasks.values()
        ),
        annotations=tuple(_annotation(d, masks) for d in job.diagnostics),
        failed_logs=tails,
        details_url=url,
        notify=dict(pipeline.notify) if pipeline else {},
        created_at=job.created_at,
        **_times(view, ended),
    )


def _times(view: JobView, ended: str | None) -> dict[str, float | None]:
    """When the first task started and (once the job ended) when the last one ended: what checks show."""
    attempts = [a for i in view.tasks.values() for a in i.attempts]
    ends = [a.ended_at for a in attempts if a.ended_at is not None]
    return {
        "started_at": min((a.started_at for a in attempts), default=None),
        "completed_at": (max(ends) if ends else view.job.created_at) if ended else None,
    }


def conclusion(view: JobView) -> str | None:
    """The check's conclusion: None until every task ended (an invalid job ends at once, failed)."""
    return _conclusion(view, None if view.job.invalid else view.job.pipeline_model())


def _conclusion(view: JobView, pipeline: Pipeline | None) -> str | None:
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


def _title(view: JobView, pipeline: Pipeline | None, ended: str | None) -> str:
    """One line a person reads in a list of checks or a Slack channel, and knows what happened."""
    if pipeline is None:
        return f"Invalid pipeline file: {_diagnostic_counts(view.job.diagnostics)}"
    instances = list(view.tasks.values())
    total, done = len(instances), sum(i.ended for i in instances)
    succeeded = f"{_count(instances, TaskState.SUCCEEDED)} of {total} tasks succeeded"
    if ended is None:
        return _open_title(view, done, total)
    if ended == "success":
        skipped = _count(instances, TaskState.SKIPPED)
        ran = f"{total - skipped} of {total} tasks" if skipped else _plural(total, "task")
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
        return f"Starting: {_plural(total, 'task')}"
    failed = [n for n, i in view.tasks.items() if i.state == TaskState.FAILED]
    so_far = f"; {_failed_names(view, failed)} failed" if failed else ""
    if view.status == JobStatus.INTERRUPTED:
        return f"Interrupted: {done} of {total} tasks done{so_far}; no runner is driving the job"
    return f"{'Cancelling' if view.cancel_requested else 'Running'}: {done} of {total} tasks done{so_far}"


def _failed_names(view: JobView, names: Sequence[str]) -> str:
    """'train (exit 3), eval (timed out)': why each failed, in a word or two."""
    return _names(f"{n} ({_why(view.tasks[n])})" for n in names)


def _why(instance: TaskInstance) -> str:
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _diagnostic_counts(diagnostics: Sequence[Mapping[str, Any]]) -> str:
    errors = sum(d.get("severity") == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    return _plural(errors, "error") + (f", {_plural(warnings, 'warning')}" if warnings else "")


# -- the summary: task table, graph, origin ---------------------------------------------------------


def _task_table(view: JobView, pipeline: Pipeline) -> str:
    tolerated = {t.name for t in pipeline.tasks if t.continue_on_failure}
    rows = ["| task | state | duration | attempts | note |", "| --- | --- | --- | --- | --- |"]
    for i in view.tasks.values():
        state = str(i.state)
        took = format_duration(i.duration) if i.duration is not None else ("…" if i.state == TaskState.RUNNING else "")
        note = i.reason + (
            " (continue_on_failure: the job goes on)" if i.state == TaskState.FAILED and i.name in tolerated else ""
        )
        rows.append(
            f"| {code(i.name, cell=True)} | {ICONS.get(state, '')} {state} | {took} | {len(i.attempts) or ''} "
            f"| {cell(shorten(note, NOTE_MAX))} |"
        )
    return "\n".join(rows) + "\n\n"


def _graph(view: JobView, pipeline: Pipeline) -> str:
    """The DAG as a Mermaid block coloured by task state (GitHub draws it), or a note when too big to draw."""
    source = mermaid(pipeline, {name: str(i.state) for name, i in view.tasks.items()})
    if len(source) > MERMAID_MAX or source.count(" --> ") > MERMAID_EDGES:
        return f"_The graph of {len(pipeline.tasks)} tasks is too big to draw here._\n\n"
    return f"```mermaid\n{source}```\n\n"


def _diagnostics_list(job: PipelineJob) -> str:
    lines = [f"The pipeline file {code(job.pipeline_path)} is not valid at this commit, so nothing ran:", ""]
    for d in job.diagnostics:
        where = f"{d.get('file', job.pipeline_path)}:{d.get('line', 1)}:{d.get('column', 1)}"
        lines.append(
            f"- {code(where)} **{d.get('severity', 'error')}** {d.get('code', '')}: {inline(str(d.get('message', '')))}"
        )
    return "\n".join(lines) + "\n\n"


def _origin(job: PipelineJob, url: str | None) -> str:
    """Where the job came from: commit, ref, trigger and who, the frozen spec, the job page."""
    commit = code(job.commit[:12]) if job.commit else f"{job.source} snapshot"
    if job.dirty:
        commit += " + uncommitted changes"
    if job.ref:
        commit += f" on {code(job.ref)}"
    trigger = _trigger_words(job.trigger) + (f" (re-run of {code(job.rerun_of)})" if job.rerun_of else "")
    spec = f", spec {code(job.spec_id)}" if job.spec_id else ""
    lines = [
        f"- **Commit:** {commit}",
        f"- **Trigger:** {trigger}",
        f"- **Pipeline:** {code(job.pipeline)} from {code(job.pipeline_path)}{spec}",
        f"- **Job:** {f'[{job.id}]({url})' if url else code(job.id)}",
    ]
    return "\n".join(lines) + "\n"


def _trigger_words(trigger: Mapping[str, Any]) -> str:
    """'pull_request #12 by alice': the event and who caused it."""
    words = str(trigger.get("event") or "unknown")
    if trigger.get("number") is not None:
        words += f" #{trigger['number']}"
    who = trigger.get("sender") or trigger.get("by") or trigger.get("approved_by")
    return inline(words + (f" by {who}" if who else ""))


# -- the text: each failed task's log tail ----------------------------------------------------------


def _failures_text(view: JobView, pipeline: Pipeline | None, tails: Mapping[str, str]) -> str:
    """A section per failed task: why, then the tail of its last attempt's log in a code block.

    When the tails together are too long, each keeps its last lines within a
    fair share of the room (a short tail leaves its unused share to the others).
    """
    failed = [i for i in view.tasks.values() if i.state == TaskState.FAILED]
    if pipeline is None or not failed:
        return ""
    heads = {i.name: _failure_heading(i, pipeline) for i in failed}
    # What each section takes besides its log lines: heading, fences, notes (at their longest).
    framing = sum(
        byte_size(heads[i.name])
        + byte_size(_tail_block(view.job.id, i, tails.get(i.name, ""), "\n"))
        + 2 * byte_size(fence_for(tails.get(i.name, "")))
        + 8
        for i in failed
    )
    shares = _shares([byte_size(tails.get(i.name, "")) for i in failed], max(0, MAX_BYTES - framing))
    sections = []
    for instance, share in zip(failed, shares):
        tail = tails.get(instance.name, "")
        sections.append(heads[instance.name] + _tail_block(view.job.id, instance, tail, _keep_end(tail, share)))
    return "\n".join(sections)


def _failure_heading(instance: TaskInstance, pipeline: Pipeline) -> str:
    tolerated = pipeline.task(instance.name).continue_on_failure
    why = shorten(instance.reason, NOTE_MAX) or _why(instance)
    attempt = (
        f"Attempt {instance.attempts[-1].number} of {len(instance.attempts)}"
        f"{f', {format_duration(instance.duration)}' if instance.duration is not None else ''}. "
        if instance.attempts
        else "It never started. "
    )
    return (
        f"### {ICONS['failed']} {code(instance.name)}: {inline(why)}\n\n{attempt}"
        f"{'It may fail (continue_on_failure): the job went on. ' if tolerated else ''}"
    )


def _tail_block(job_id: str, instance: TaskInstance, tail: str, kept: str) -> str:
    """The end of the log in a code block no line of it can close; `kept` is what fits of `tail`."""
    if not instance.attempts:
        return "\n"
    if not tail:
        return "Its log is empty.\n"
    see = f"`fasttrack-gitops jobs logs {job_id} {instance.name}`"
    if not kept:
        return f"Its log is too long to show beside the others here; see {see}.\n"
    cut = len(tail) - len(kept)
    note = f"\n_(the first {cut} characters of this tail are left out to fit; see {see})_\n" if cut else ""
    lines = kept.count("\n") + (not kept.endswith("\n"))
    fence = fence_for(kept)
    return (
        f"The last {_plural(lines, 'line')} of its log:\n\n{fence}text\n{kept}"
        f"{'' if kept.endswith(chr(10)) else chr(10)}{fence}\n{note}"
    )


def _shares(sizes: Sequence[int], room: int) -> list[int]:
    """Split `room` fairly: each gets up to an equal share, and what a small one leaves goes to the others."""
    shares = [0] * len(sizes)
    left = room
    order = sorted(range(len(sizes)), key=sizes.__getitem__)
    for k, i in enumerate(order):
        shares[i] = min(sizes[i], left // (len(sizes) - k))
        left -= shares[i]
    return shares


def _keep_end(text: str, max_bytes: int) -> str:
    """The whole lines at the end of `text` that fit in `max_bytes` (the end of a log is what tells).

    One line longer than that keeps its end, marked with an ellipsis.
    """
    if byte_size(text) <= max_bytes:
        return text
    if max_bytes < 8:
        return ""
    end = text.encode()[-(max_bytes - 3) :].decode("utf-8", "ignore")
    newline = end.find("\n")
    return end[newline + 1 :] if 0 <= newline < len(end) - 1 else "…" + end


# -- annotations -----------------------------------------------------------------------------------


def _annotation(d: Mapping[str, Any], masks: tuple[str, ...]) -> Annotation:
    """A diagnostic as a check annotation (lines and columns from 1: GitHub refuses 0)."""
    return {
        "path": masked(str(d.get("file", "")), masks),
        "line": max(1, int(d.get("line") or 1)),
        "column": max(1, int(d.get("column") or 1)),
        "level": {"error": "failure", "warning": "warning"}.get(str(d.get("severity")), "notice"),
        "message": masked(str(d.get("message", "")), masks),
        "title": masked(str(d.get("code", "")), masks),
    }


# -- a fork's pull request held for approval -------------------------------------------------------


def gate_report(gate: Gate, *, public_url: str | None = None) -> JobReport:
    """The check on a fork's pull request head while it waits for a member's /fasttrack ok-to-test (or once given).

    It has no job and no job page: `public_url` is taken for a call shaped like job_report's.
    """
    pr = gate.event
    who = pr.get("author") or pr.get("sender") or "its author"
    held = (
        f"Pull request #{gate.number} comes from the fork {code(str(pr.get('head_repository') or '?'))}"
        f" (branch {code(str(pr.get('head_ref') or '?'))}), opened by {inline(who)}.\n\n"
    )
    if gate.approved_by:
        title = f"Approved by {gate.approved_by}: pull request #{gate.number} runs"
        summary = held + (
            f"{inline(gate.approved_by)} commented `/fasttrack ok-to-test`, so its pipelines run "
            f"at {code(gate.head_sha[:12])}; each reports in its own check.\n"
        )
        status, ended = "succeeded", "success"
    else:
        title = "Waiting for a member's /fasttrack ok-to-test"
        summary = held + (
            "Pull requests from forks run their pipelines, with the repository's secrets, only after a member "
            "(OWNER, MEMBER or COLLABORATOR) comments `/fasttrack ok-to-test` on the pull request. "
            f"Nothing runs for {code(gate.head_sha[:12])} until then.\n"
        )
        status = ended = "action_required"
    trigger = {
        "event": "pull_request",
        "number": gate.number,
        "action": pr.get("action"),
        "head_sha": gate.head_sha,
        "fork": True,
        "sender": pr.get("sender") or pr.get("author"),
    }
    return JobReport(
        job_id=f"gate:{gate.repository}#{gate.number}@{gate.head_sha}",
        repository=gate.repository,
        pipeline=GATE_PIPELINE,
        pipeline_path="",
        commit=gate.head_sha,
        ref=f"refs/pull/{gate.number}/head",
        trigger=trigger,
        status=status,
        conclusion=ended,
        started=False,
        title=title,
        summary=summary,
        text="",
        created_at=gate.held_at,
    )
