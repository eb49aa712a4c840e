"""What GitHub shows for a job: the check run, its annotations and the commit status, as pure functions of the
report (github.py sends them), so tests can read what a person will see without a server."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fasttrack_gitops.core.reports.model import JobReport

MAX_ANNOTATIONS = 50  # per request (the API's maxItems); GitHub appends each batch to the check run
MAX_TITLE = 1000  # output.title: GitHub states no limit; one line of this length is always shown
MAX_MARKDOWN = 65535  # output.summary and output.text, counted in UTF-8 bytes to be safe either way
MAX_ANNOTATION_MESSAGE = 64 * 1024  # bytes
MAX_ANNOTATION_TITLE = 255
MAX_STATUS_DESCRIPTION = 140  # a commit status shows one short line
RERUN_FAILED = {
    "label": "Re-run failed tasks",
    "identifier": "rerun-failed",
    "description": "Run the failed tasks again",
}  # ≤ 20, 20 and 40 characters
RERUN_CONCLUSIONS = frozenset({"failure", "timed_out"})  # a timed-out task is a failed task worth re-running
LEVELS = {"error": "failure", "failure": "failure", "warning": "warning"}  # anything else is a notice
# A commit status has four states. What GitHub users expect from other CIs: a red X when the pipeline
# failed or ran out of time (failure), a red "error" when it was stopped before a verdict (cancelled),
# green when nothing blocking failed (neutral: only continue_on_failure tasks did), and a yellow dot
# while a fork's pull request waits for a member's approval: that is no verdict yet, and it keeps a
# required status blocking until the approved job reports under the same name.
STATUS_STATES = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failure",
    "timed_out": "failure",
    "cancelled": "error",
    "stale": "error",
    "action_required": "pending",
}


def check_run(report: JobReport, *, details_url: str | None = None) -> dict:
    """The check run body for the report, without annotations and times (those depend on what was sent)."""
    body: dict[str, Any] = {
        "name": report.check_name,
        "head_sha": report.commit,
        "external_id": report.job_id,
        "status": "completed" if report.ended else "in_progress" if report.started else "queued",
    }
    if details_url:
        body["details_url"] = details_url
    if report.ended:
        body["conclusion"] = report.conclusion
    title = one_line(report.title, MAX_TITLE) or f"{report.pipeline}: {report.status}"
    output: dict[str, Any] = {
        "title": title,
        "summary": clip_markdown(report.summary) if report.summary.strip() else title,
    }
    if report.text.strip():
        output["text"] = clip_markdown(report.text)
    if report.images:  # plots at signed links to the daemon (engine/results.py): GitHub shows them with the check
        output["images"] = [{"alt": title, "image_url": url, "caption": title} for title, url in report.images]
    body["output"] = output
    if report.conclusion in RERUN_CONCLUSIONS:
        body["actions"] = [dict(RERUN_FAILED)]
    return body


def with_annotations(body: dict, batch: list[dict]) -> dict:
    """The body with `batch` as output.annotations (none: the key is left out, GitHub keeps what it has)."""
    if not batch:
        return body
    return {**body, "output": {**body["output"], "annotations": batch}}


def annotation(item: Mapping, default_path: str) -> dict:
    """A diagnostic ({path, line, column, level, message, title}) in GitHub's shape: columns only within one line."""
    start = _positive(item.get("line", item.get("start_line")), 1)
    end = max(start, _positive(item.get("end_line"), start))
    out = {
        "path": str(item.get("path") or default_path),
        "start_line": start,
        "end_line": end,
        "annotation_level": LEVELS.get(str(item.get("level", "")).lower(), "notice"),
        "message": clip_bytes(str(item.get("message") or item.get("title") or "(no message)"), MAX_ANNOTATION_MESSAGE),
    }
    column = _positive(item.get("column", item.get("start_column")), 0)
    if start == end and column:
        out["start_column"] = column
        out["end_column"] = max(column, _positive(item.get("end_column"), column))
    if item.get("title"):
        out["title"] = one_line(str(item["title"]), MAX_ANNOTATION_TITLE)
    return out


def commit_status(report: JobReport, *, details_url: str | None = None) -> dict:
    """The commit status standing in for the check run: same name, its state, the title as description."""
    state = STATUS_STATES.get(report.conclusion, "error") if report.conclusion is not None else "pending"
    body = {
        "state": state,
        "context": report.check_name,
        "description": one_line(report.title, MAX_STATUS_DESCRIPTION) or report.status,
    }
    if details_url:
        body["target_url"] = details_url
    return body


def fingerprint(body: dict, annotations: list[dict]) -> str:
    """A digest of what a send shows: equal digests, nothing to send."""
    content = json.dumps([body, annotations], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def one_line(text: str, limit: int) -> str:
    """The first non-blank line, cut to `limit` characters with an ellipsis."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def clip_markdown(text: str, limit: int = MAX_MARKDOWN) -> str:
    """Markdown cut to `limit` UTF-8 bytes at a line end, saying so, with an open code fence closed."""
    if len(text.encode()) <= limit:
        return text
    note = "\n\n*(cut: longer than GitHub shows; the rest is on the job's page)*"
    kept = clip_bytes(text, limit - len(note.encode()) - 8, ellipsis="")
    if "\n" in kept[len(kept) // 2 :]:
        kept = kept[: kept.rindex("\n")]
    if kept.count("```") % 2:
        kept += "\n```"
    return kept + note


def clip_bytes(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """`text` in at most `limit` UTF-8 bytes, never splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - len(ellipsis.encode())].decode(errors="ignore") + ellipsis


def _positive(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
