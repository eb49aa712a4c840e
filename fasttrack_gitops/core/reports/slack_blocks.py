"""What a person sees about a job in Slack: Block Kit as plain dicts, always within Slack's limits. Pure.

Slack refuses a whole message (`invalid_blocks`) when one text is a
character too long or there is one block too many, so every text here is
cut to its limit with "…" and long task lists are folded ("… and 40 more")
rather than trusting that names and logs stay short. The limits are the
ones in ../shared/contracts/slack.json (`limits`, each with its source).

Texts in `mrkdwn` are escaped (&, <, >) as Slack asks, so a task name or a
log line can never become a link or a mention; `plain_text` (the header,
the button) needs no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fasttrack_gitops.core.reports.model import Annotation, JobReport, TaskRow

MAX_BLOCKS = 50  # message.blocks.maxItems
MAX_SECTION = 3000  # section.text.maxLength (also a context element's text)
MAX_HEADER = 150  # header.text.maxLength
MAX_BUTTON = 75  # button.text.maxLength
MAX_URL = 3000  # button.url.maxLength
MAX_CONTEXT = 10  # context.elements.maxItems
MAX_FALLBACK = 3000  # well under Slack's 40,000 for `text`: it is a notification line, not the message
MAX_NAME = 200  # one task name in a list: no single name may eat a section
MAX_REASON = 120
MAX_ANNOTATIONS = 5
ELLIPSIS = "…"

# Sections in the order a person reads them: what went wrong first, then what is moving, then what is done.
STATE_ORDER = ("failed", "cancelled", "running", "submitted", "waiting", "pending", "succeeded", "reused", "skipped")
STATE_LABELS = {
    "failed": "Failed",
    "cancelled": "Cancelled",
    "running": "Running",
    "submitted": "Starting",
    "waiting": "Waiting",
    "pending": "Pending",
    "succeeded": "Succeeded",
    "reused": "Reused",  # the cache's outputs of an earlier job stand in for it
    "skipped": "Skipped",
}
_WITH_REASON = frozenset({"failed", "cancelled"})  # where "why" is worth its room in the list

# A job that ended: its conclusion (GitHub's words, as JobReport speaks them) -> (emoji, what happened).
_ENDED = {
    "success": ("✅", "succeeded"),
    "neutral": ("⚠️", "succeeded with allowed failures"),
    "failure": ("❌", "failed"),
    "timed_out": ("⏱️", "timed out"),
    "cancelled": ("🚫", "was cancelled"),
    "skipped": ("⏭️", "was skipped"),
    "action_required": ("✋", "is waiting for approval"),
}
# A job still going: its status -> (emoji, what it is doing).
_GOING = {
    "queued": ("⏳", "is queued"),
    "pending": ("⏳", "is starting"),
    "running": ("🏃", "is running"),
    "interrupted": ("⚠️", "was interrupted"),
    "invalid": ("❌", "is not valid"),
    "action_required": ("✋", "is waiting for approval"),
}

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}\Z")


# ---------------------------------------------------------------- texts


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn, escaped, so names and logs are shown, never parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters, "…" where it was cut; never ends inside an escaped `&lt;`."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - len(ELLIPSIS)]).rstrip() + ELLIPSIS


def fold(prefix: str, items: Sequence[str], limit: int = MAX_SECTION) -> str:
    """`prefix` and the items, comma-separated, as many as fit in `limit`; the rest counted
    ("… and 40 more") so a reader knows the list goes on."""
    shown: list[str] = []
    length = len(prefix)
    for index, item in enumerate(items):
        left_after = len(items) - index - 1
        grown = length + (2 if shown else 0) + len(item)
        more = len(f", {ELLIPSIS} and {left_after} more") if left_after else 0
        if grown + more > limit:
            break
        shown.append(item)
        length = grown
    text = prefix + ", ".join(shown)
    if left := len(items) - len(shown):
        text += (", " if shown else "") + f"{ELLIPSIS} and {left} more"
    return fit(text, limit)


def headline(report: JobReport) -> str:
    """One line for the header and notifications: "✅ train-compare succeeded"."""
    if report.conclusion is not None:
        emoji, what = _ENDED.get(report.conclusion, ("❔", f"ended: {report.conclusion}"))
    else:
        emoji, what = _GOING.get(report.status, ("❔", report.status))
    room = MAX_HEADER - len(emoji) - len(what) - 2
    name = report.pipeline if len(report.pipeline) <= room else fit(report.pipeline, room)
    return f"{emoji} {name} {what}"


def fallback_text(report: JobReport) -> str:
    """The `text` Slack shows in notifications and where blocks cannot be drawn."""
    parts = [headline(report)]
    if report.title:
        parts.append(report.title)
    where = f"{report.repository}@{report.commit[:7]}" if report.commit else report.repository
    text = ": ".join(parts) + f" ({where})"
    return fit(escape(" ".join(text.split())), MAX_FALLBACK)


def _ref_words(ref: str | None) -> str | None:
    """A ref as a person says it: "branch `main`", "tag `v1.2`"; other refs (a pull request's head) as they are."""
    if not ref:
        return None
    for prefix, word in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return f"{word} `{escape(ref[len(prefix) :])}`"
    return f"`{escape(ref)}`"


def _trigger_words(trigger: Mapping[str, Any]) -> str | None:
    """Who or what started the job: "push by alice", "pull request #12 by bob", "manual run by carol"."""
    event = str(trigger.get("event") or "")
    sender = trigger.get("sender") or trigger.get("by") or trigger.get("approved_by")
    if event == "pull_request" and trigger.get("number") is not None:
        what = f"pull request #{trigger['number']}"
    elif event == "manual":
        what = "manual run"
    else:
        what = event.replace("_", " ")
    if sender:
        what = f"{what} by {sender}" if what else f"by {sender}"
    return escape(what) or None


# ---------------------------------------------------------------- blocks


def _text(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    return {"type": kind, "text": text}


def section(text: str) -> dict[str, Any]:
    """A section block whose mrkdwn text is cut to Slack's 3000 characters."""
    return {"type": "section", "text": _text(fit(text, MAX_SECTION) or " ")}


def header_block(report: JobReport) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": headline(report), "emoji": True}}


def context_block(report: JobReport) -> dict[str, Any]:
    """Where and why: repository, pipeline file, branch, short commit, trigger, what the cache saved; at most 10
    elements."""
    words = [
        f"*{escape(report.repository)}*",
        f"`{escape(report.pipeline_path)}`" if report.pipeline_path else None,
        _ref_words(report.ref),
        f"commit `{escape(report.commit[:7])}`" if report.commit else None,
        _trigger_words(report.trigger),
        _cache_words(report.tasks),
    ]
    elements = [_text(fit(w, MAX_SECTION)) for w in words if w]
    return {"type": "context", "elements": elements[:MAX_CONTEXT]}


def _cache_words(tasks: Sequence[TaskRow]) -> str | None:
    """What the task cache saved, once it stood in for a task: "ran 3 · reused 7"."""
    reused = sum(row.state == "reused" for row in tasks)
    if not reused:
        return None
    ran = sum(row.attempts > 0 for row in tasks)
    return f"ran {ran} · reused {reused}"


def _task_label(row: TaskRow) -> str:
    """A task's name in a list, with why it failed or was cancelled when that is known."""
    label = fit(escape(row.name), MAX_NAME)
    if row.state in _WITH_REASON and row.reason:
        label += f" ({fit(escape(' '.join(row.reason.split())), MAX_REASON)})"
    return label


def _by_state(tasks: Iterable[TaskRow]) -> dict[str, list[TaskRow]]:
    """Tasks grouped by state, in STATE_ORDER then any state this module does not know, each in task order."""
    groups: dict[str, list[TaskRow]] = {state: [] for state in STATE_ORDER}
    for row in tasks:
        groups.setdefault(row.state, []).append(row)
    return {state: rows for state, rows in groups.items() if rows}


def task_sections(report: JobReport) -> list[dict[str, Any]]:
    """One section per task state: "*Succeeded* (3): prepare, train, evaluate"."""
    sections = []
    for state, rows in _by_state(report.tasks).items():
        label = STATE_LABELS.get(state, state.capitalize())
        sections.append(section(fold(f"*{escape(label)}* ({len(rows)}): ", [_task_label(r) for r in rows])))
    return sections


def _annotation_line(annotation: Annotation, default_path: str) -> str:
    where = f"{annotation.get('path', default_path)}:{annotation.get('line', 1)}:{annotation.get('column', 1)}"
    return f"• `{escape(where)}` {escape(' '.join(str(annotation.get('message', '')).split()))}"


def notes_section(report: JobReport) -> dict[str, Any] | None:
    """For a job without tasks (an invalid pipeline file, a held fork): its title and first diagnostics,
    so the message says more than its header."""
    if report.tasks or not (report.title or report.annotations):
        return None
    lines = [escape(report.title)] if report.title else []
    lines += [fit(_annotation_line(a, report.pipeline_path), 500) for a in report.annotations[:MAX_ANNOTATIONS]]
    if len(report.annotations) > MAX_ANNOTATIONS:
        lines.append(f"{ELLIPSIS} and {len(report.annotations) - MAX_ANNOTATIONS} more")
    return section("\n".join(lines))


def results_section(report: JobReport) -> dict[str, Any] | None:
    """The model results' headline: failed gates first, then the biggest changes (core/reports/results.py)."""
    if not report.results:
        return None
    return section("*Model results*\n" + "\n".join(report.results))


def services_section(report: JobReport) -> dict[str, Any] | None:
    """The model services the job made ready: each task's URL, and how to get a token for a non-public one."""
    lines = [
        f"• {fit(escape(row.name), MAX_NAME)}: {escape(row.url)}"
        + (f" (token: {escape(row.access)})" if row.access else "")
        for row in report.tasks
        if row.url
    ]
    return section(fit("*Services*\n" + "\n".join(lines), MAX_SECTION)) if lines else None


def actions_block(link: str | None) -> dict[str, Any] | None:
    """A link button to the job's page; none for a link Slack would refuse (a cut URL is a broken one)."""
    if not link or len(link) > MAX_URL or not link.startswith(("https://", "http://")):
        return None
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "View details"},
        "url": link,
        "action_id": "fasttrack-view-details",
    }
    return {"type": "actions", "elements": [button]}


def blocks(report: JobReport, *, link: str | None) -> list[dict[str, Any]]:
    """The message for a job: header, context line, a section per task state, the link button."""
    candidates = [
        header_block(report),
        context_block(report),
        notes_section(report),
        results_section(report),
        *task_sections(report),
        services_section(report),
        actions_block(link),
    ]
    found = [b for b in candidates if b is not None]
    if len(found) > MAX_BLOCKS:  # cannot happen with eight states; kept so a new state never breaks a message
        found = found[: MAX_BLOCKS - 1] + found[-1:]
    return found


# ---------------------------------------------------------------- replies


def log_excerpt(log: str, limit: int) -> str:
    """What a Slack code block shows of a log tail (engine/reporters/logtail.py read it): its end, escaped,
    within `limit` characters, starting at a whole line; a code fence in the log is broken so it cannot
    end ours."""
    text = escape(log.rstrip()).replace("```", "`\u200b``")
    if len(text) <= limit:
        return text
    cut = text[len(text) - (limit - len(ELLIPSIS) - 1) :]
    newline = cut.find("\n")
    cut = cut[newline + 1 :] if newline >= 0 else re.sub(r"\A[#a-z0-9]{0,5};", "", cut)
    return f"{ELLIPSIS}\n{cut}"


def log_blocks(report: JobReport, task: str, log: str) -> list[dict[str, Any]]:
    """Two sections: which task failed and why, then the end of its log in a code block."""
    row = next((r for r in report.tasks if r.name == task), None)
    why = f" ({escape(' '.join(row.reason.split()))})" if row and row.reason else ""
    attempts = f", after {row.attempts} attempts" if row and row.attempts > 1 else ""
    intro = section(f"*{fit(escape(task), MAX_NAME)}* failed{why}{attempts}. The end of its log:")
    if not log.strip():
        return [intro, section("_the log is empty_")]
    fence = "```"
    return [intro, section(f"{fence}\n{log_excerpt(log, MAX_SECTION - 2 * len(fence) - 2)}\n{fence}")]


def log_reply(report: JobReport, task: str, log: str) -> dict[str, Any]:
    """A thread reply (text and blocks) holding a failed task's log tail."""
    text = fit(escape(f"{task} failed: the end of its log"), MAX_FALLBACK)
    return {"text": text, "blocks": log_blocks(report, task, log)}


def end_reply(report: JobReport) -> dict[str, Any]:
    """A thread reply when a job ends after its message was posted: an update notifies nobody, a reply does."""
    text = fallback_text(report)
    return {"text": text, "blocks": [section(text)]}
