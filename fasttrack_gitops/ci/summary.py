"""The step summary: what ran and how it went, why each pipeline was (not) selected, every diagnostic. Pure.

GitHub shows at most 10 annotations of a kind per step, so the summary is
where every diagnostic can be read. A step summary holds at most 1 MiB;
the short sections come first (verdict, notes, diagnostics, selection),
each job's details last, and what does not fit is cut at a line end with a
note (a Mermaid block is dropped whole: half a graph does not draw).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fasttrack_gitops.core.reports.markdown import cell, code, inline
from fasttrack_gitops.core.reports.model import JobReport

MAX_BYTES = 1_000_000  # GitHub's limit is 1 MiB per step; keep a margin for what others append
OUTPUT_BYTES = 65_000  # the `summary` output fits a pull request comment (65,536 characters)
ICONS = {
    "success": "✅",
    "neutral": "✅",
    "failure": "❌",
    "timed_out": "⏱️",
    "cancelled": "🚫",
    "invalid": "❌",
    "skipped": "⏭️",
    "submitted": "📤",
}
PASSED = frozenset({"success", "neutral"})  # neutral: only continue_on_failure tasks failed


@dataclass(frozen=True)
class JobResult:
    """One job as the summary shows it: its report, and where its check run is."""

    report: JobReport
    link: str  # the check run on GitHub, else the commit's checks page


@dataclass(frozen=True)
class Submitted:
    """A pipeline handed to a daemon (`wait: false`)."""

    pipeline: str
    path: str
    job_ids: tuple[str, ...]
    error: str = ""  # why the daemon made no job


@dataclass(frozen=True)
class Facts:
    """Everything the summary says, gathered by the flow."""

    mode: str  # validate | run
    what: str  # "push to main", "pull request #3 into main (opened)"
    commit: str
    run_url: str
    files: Sequence[dict]  # validate's per-file records
    diagnostics: Sequence  # Diagnostic, paths relative to the repository
    decisions: Sequence  # triggers.Considered for every valid pipeline at the commit
    invalid: dict = field(default_factory=dict)  # path -> (name, diagnostics) of files not valid at the commit
    jobs: Sequence[JobResult] = ()
    submitted: Sequence[Submitted] = ()
    notes: Sequence[str] = ()
    plans: Sequence[str] = ()  # `mode: plan`: each selected pipeline's forecast (core/reports/plan.py's Markdown)


def conclusion(facts: Facts) -> str:
    """The step's conclusion output: success | failure | cancelled | invalid | skipped, or submitted (`wait:
    false`). `validate` mode concludes success or invalid; `run` and `plan` mode skipped when nothing was
    selected (`plan` mode success when it planned something: it runs nothing)."""
    ended = [r.report.conclusion for r in facts.jobs]
    if any(c in ("failure", "timed_out") for c in ended) or any(s.error for s in facts.submitted):
        return "failure"
    if "cancelled" in ended:
        return "cancelled"
    if any(d.is_error for d in facts.diagnostics):
        return "invalid"
    if facts.jobs or facts.plans:
        return "success"
    if facts.submitted:
        return "submitted"
    return "success" if facts.mode == "validate" else "skipped"


def markdown(facts: Facts, *, limit: int = MAX_BYTES) -> str:
    parts = [_head(facts), _notes(facts), _validation(facts), _selection(facts)]
    parts += [plan.rstrip("\n") + "\n\n" for plan in facts.plans]
    parts += [_details(result) for result in facts.jobs]
    return clip("".join(parts).rstrip("\n") + "\n", limit)


# -- sections ---------------------------------------------------------------------------------------


def _head(facts: Facts) -> str:
    verdict = conclusion(facts)
    lines = [
        f"## FastTrack pipelines: {ICONS[verdict]} {_verdict_words(facts, verdict)}",
        "",
        f"{inline(facts.what)} at {code(facts.commit[:12])} · [workflow run]({facts.run_url})",
        "",
    ]
    for result in facts.jobs:
        r = result.report
        lines.append(
            f"- {ICONS.get(r.conclusion or '', '🔄')} [{code(r.check_name)}]({result.link}): {inline(r.title)}"
        )
    for sub in facts.submitted:
        if sub.error:
            lines.append(f"- ❌ {code('fasttrack/' + sub.pipeline)}: {inline(sub.error)}")
        else:
            jobs = ", ".join(code(j) for j in sub.job_ids) or "no job"
            lines.append(f"- 📤 {code('fasttrack/' + sub.pipeline)}: handed to the daemon as {jobs}")
    selected = [d for d in facts.decisions if d.selected]
    if not selected:
        lines.append(f"No pipeline was selected by this {inline(facts.what)}, so nothing ran.")
    elif facts.mode == "validate":
        names = ", ".join(code(d.candidate.name) for d in selected)
        lines.append(f"Validation only (`mode: validate`): {names} would run in `mode: run`.")
    elif facts.mode == "plan":
        names = ", ".join(code(d.candidate.name) for d in selected)
        lines.append(
            f"Plan only (`mode: plan`): nothing ran; what `mode: run` would run and reuse of {names} is below."
        )
    return "\n".join(lines) + "\n\n"


def _verdict_words(facts: Facts, verdict: str) -> str:
    errors = sum(d.is_error for d in facts.diagnostics)
    if verdict == "invalid":
        return f"{errors} error{'s' if errors != 1 else ''} in pipeline files"
    if facts.jobs:
        passed = sum(r.report.conclusion in PASSED for r in facts.jobs)
        return f"{passed} of {len(facts.jobs)} pipeline{'s' if len(facts.jobs) != 1 else ''} succeeded"
    if facts.submitted:
        return f"{len(facts.submitted)} submitted to the daemon"
    if facts.plans:
        return f"{len(facts.plans)} pipeline{'s' if len(facts.plans) != 1 else ''} planned, nothing run"
    if verdict == "skipped":
        return "nothing selected"
    return f"{len(facts.files)} pipeline file{'s' if len(facts.files) != 1 else ''} valid"


def _notes(facts: Facts) -> str:
    return "".join(f"> [!WARNING]\n> {inline(note)}\n\n" for note in facts.notes)


def _validation(facts: Facts) -> str:
    errors = sum(d.is_error for d in facts.diagnostics)
    warnings = len(facts.diagnostics) - errors
    count = f"{len(facts.files)} pipeline file{'s' if len(facts.files) != 1 else ''}"
    if not facts.diagnostics:
        return f"### Validation\n\n{count} checked: no problem found.\n\n"
    lines = [
        "### Validation",
        "",
        f"{count} checked: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}. Every one of them (GitHub annotates only the "
        "first 10 of each kind):",
        "",
    ]
    for d in facts.diagnostics:
        lines.append(f"- {code(f'{d.file}:{d.line}:{d.column}')} **{d.severity}** {d.code}: {inline(d.message)}")
    return "\n".join(lines) + "\n\n"


def _selection(facts: Facts) -> str:
    runs = "runs" if facts.mode == "run" else "selected"
    rows = []
    for d in facts.decisions:
        c = d.candidate
        rows.append(
            (
                c.path,
                f"| {code(c.name, cell=True)} | {code(c.path, cell=True)} | "
                f"{'✅ yes' if d.selected else '➖ no'} | {cell(d.reason)} |",
            )
        )
    for path, (name, _) in facts.invalid.items():
        rows.append(
            (
                path,
                f"| {code(name, cell=True)} | {code(path, cell=True)} | ❌ no | the file is not valid at "
                "this commit (see Validation) |",
            )
        )
    lines = ["### Selection", "", f"| pipeline | file | {runs} | why |", "| --- | --- | --- | --- |"]
    lines += [row for _, row in sorted(rows)] or ["| | | | no pipeline file at this commit |"]
    return "\n".join(lines) + "\n\n"


def _details(result: JobResult) -> str:
    r = result.report
    head = (
        f"### {ICONS.get(r.conclusion or '', '🔄')} {code(r.check_name)}: {r.conclusion or r.status}\n\n"
        f"[Check run]({result.link}) · {inline(r.title)}\n\n"
    )
    return head + r.summary.rstrip("\n") + "\n\n" + (r.text.rstrip("\n") + "\n\n" if r.text.strip() else "")


# -- cutting to the step summary's limit -----------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def clip(text: str, limit: int) -> str:
    """The Markdown within `limit` UTF-8 bytes: cut at a line end, an open code block closed, a note added."""
    if len(text.encode()) <= limit:
        return text
    note = "\n_(the summary is cut here: it is longer than a step summary may be; the step's log has it all)_\n"
    budget = limit - len(note.encode()) - 16
    kept: list[str] = []
    size, fence, opened = 0, None, 0
    for line in text.splitlines(keepends=True):
        size += len(line.encode())
        if size > budget:
            break
        match = _FENCE.match(line.rstrip("\n"))
        if fence is None and match:
            fence, opened = (match[1], match[2].strip()), len(kept)
        elif (
            fence is not None
            and match
            and match[1][0] == fence[0][0]
            and len(match[1]) >= len(fence[0])
            and not match[2].strip()
        ):
            fence = None
        kept.append(line)
    if fence is not None and fence[1] == "mermaid":
        del kept[opened:]
        fence = None
    return "".join(kept) + (fence[0] + "\n" if fence else "") + note
