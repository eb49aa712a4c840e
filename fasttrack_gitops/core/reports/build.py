"""What a person sees about a job on GitHub, GitLab and Slack: a JobReport built from a JobView. Pure.

Callers read the store and the logs (logtail.py) and pass them in; this
module puts the report together from its parts: the conclusion and the
one-line title (conclusion.py), the Markdown summary (summary.py: task table,
the DAG coloured by state, where the job came from), the failed tasks' log
tails (failures.py), an invalid pipeline file's diagnostics as annotations.
Every text is masked here, once more, whatever the caller did, then fitted
into GitHub's limit (markdown.py's `fit`): GitHub refuses (422) a summary or
text over 65,535; its docs say characters, its API counts UTF-8 bytes
(github/docs#35252), so bytes are what we count. A fork's pull request held
for approval gets a report of its own (gate_report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fasttrack_gitops.core.comment_commands import Gate
from fasttrack_gitops.core.job import JobView, TaskState
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.reports.conclusion import conclusion_for, title
from fasttrack_gitops.core.reports.failures import failures_text
from fasttrack_gitops.core.reports.markdown import MAX_BYTES, byte_size, code, fit, inline
from fasttrack_gitops.core.reports.model import Annotation, JobReport, TaskRow
from fasttrack_gitops.core.reports.results import ResultsSection, gate_title, slack_lines
from fasttrack_gitops.core.reports.summary import origin, summary_sections

GATE_PIPELINE = "ok-to-test"  # a held fork's check is fasttrack/ok-to-test


# -- the report of a job --------------------------------------------------------------------------


def job_report(
    view: JobView,
    *,
    log_tails: Mapping[str, str],
    masks: Sequence[str],
    public_url: str | None = None,
    plan: str | None = None,
    results: ResultsSection | None = None,
) -> JobReport:
    """The job as a person should see it now; `log_tails` are the failed tasks' (failed_log_tails), `plan` the
    Markdown of what the job was to run and reuse (core/reports/plan.py), when it was worked out, `results` its
    model results (core/reports/results.py), when it declares any.

    A failed gate fails the job's conclusion even when every task succeeded, and leads its title."""
    job = view.job
    masks = tuple(m for m in masks if m)
    pipeline = None if job.invalid else job.pipeline_model()
    by_tasks = conclusion_for(view, pipeline)
    if by_tasks is None:  # still running: a metric not read yet is not missing, and no gate is judged yet
        results = None
    gate = gate_title(results.comparison) if results and results.comparison.gates_failed else None
    ended = "failure" if gate and by_tasks in ("success", "neutral") else by_tasks
    url = f"{public_url.rstrip('/')}/jobs/{job.id}" if public_url else None
    tails = {name: masked(tail, masks) for name, tail in log_tails.items() if tail and name in view.tasks}
    body = summary_sections(view, pipeline)
    started = any(i.attempts or i.state == TaskState.REUSED for i in view.tasks.values())
    if plan:  # first while nothing has run (it says what will); folded under the task table after
        body = f"{plan}\n{body}" if not started else f"{body}{_folded('The plan before the run', plan)}"
    if results:  # first: on a pull request, what the model did is the question
        body = f"{results.markdown}\n{body}"
    footer = masked(origin(job, url), masks)
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
        title=masked(_gated(gate, title(view, pipeline, by_tasks)) if ended else title(view, pipeline, ended), masks),
        summary=fit(masked(body, masks), job.id, limit=MAX_BYTES - byte_size(footer)) + footer,
        text=fit(masked(failures_text(view, pipeline, tails), masks), job.id),
        tasks=tuple(
            TaskRow(
                i.name,
                str(i.state),
                i.duration,
                len(i.attempts),
                masked(i.reason, masks),
                url=masked(i.service.url, masks) if i.service else "",
                access=masked(i.service.access, masks) if i.service and not i.service.public else "",
            )
            for i in view.tasks.values()
        ),
        annotations=tuple(_annotation(d, masks) for d in job.diagnostics),
        failed_logs=tails,
        details_url=url,
        notify=dict(pipeline.notify) if pipeline else {},
        created_at=job.created_at,
        **_times(view, ended),
        results=tuple(masked(line, masks) for line in slack_lines(results.comparison)) if results else (),
        images=results.images if results else (),
    )


def _gated(gate: str | None, tasks_title: str) -> str:
    """'Gate failed: accuracy 0.93 → 0.88 (gate ≥ 0.90) · Succeeded: 5 tasks in 3s'."""
    return f"Gate failed: {gate} · {tasks_title}" if gate else tasks_title


def _folded(title: str, markdown: str) -> str:
    return f"<details><summary>{title}</summary>\n\n{markdown}\n</details>\n\n"


def _times(view: JobView, ended: str | None) -> dict[str, float | None]:
    """When the first task started and (once the job ended) when the last one ended: what checks show."""
    attempts = [a for i in view.tasks.values() for a in i.attempts]
    ends = [a.ended_at for a in attempts if a.ended_at is not None]
    return {
        "started_at": min((a.started_at for a in attempts), default=None),
        "completed_at": (max(ends) if ends else view.job.created_at) if ended else None,
    }


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
