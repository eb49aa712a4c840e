"""The report's `summary` (a check run's Markdown): task table, DAG coloured by state, where the job came from. Pure.

For an invalid pipeline file, its diagnostics take the place of the table
and the graph. build.py masks the summary and fits it into GitHub's limit,
keeping the origin whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fasttrack_gitops.core.job import JobView, PipelineJob, TaskState
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.render.graph import mermaid
from fasttrack_gitops.core.reports.markdown import cell, code, inline, shorten

MERMAID_MAX = 50_000  # Mermaid's default maxTextSize: a bigger graph shows as an error instead
MERMAID_EDGES = 500  # Mermaid's default maxEdges, the same
NOTE_MAX = 300  # characters of a reason in the task table or a failure's heading
ICONS = {
    "pending": "⚪",
    "waiting": "⏳",
    "submitted": "📤",
    "running": "🔄",
    "succeeded": "✅",
    "reused": "♻️",
    "failed": "❌",
    "skipped": "⏭️",
    "cancelled": "🚫",
}


def summary_sections(view: JobView, pipeline: Pipeline | None) -> str:
    """The task table and the graph; an invalid file's diagnostics instead (`pipeline` is None then)."""
    if pipeline is None:
        return _diagnostics_list(view.job)
    return _task_table(view, pipeline) + services_section(view) + _graph(view, pipeline)


def services_section(view: JobView) -> str:
    """The model services the job's deployment tasks made ready: where each answers, how to reach a non-public
    one (a token is got, never shown), and what the server could not honour; '' when there are none."""
    ready = [(name, i.service) for name, i in view.tasks.items() if i.service is not None]
    if not ready:
        return ""
    rows = ["**Services**", "", "| task | service | URL | access |", "| --- | --- | --- | --- |"]
    notes = []
    for name, service in ready:
        access = "public" if service.public else f"token: {service.access}"
        rows.append(f"| {code(name, cell=True)} | {cell(service.name)} | {cell(service.url)} | {cell(access)} |")
        if service.note:
            notes.append(f"- {inline(service.name)}: {inline(service.note)}")
    return "\n".join(rows) + "\n\n" + ("\n".join(notes) + "\n\n" if notes else "")


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


def origin(job: PipelineJob, url: str | None) -> str:
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
