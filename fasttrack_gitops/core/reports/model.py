"""The reporter protocol: what a reporter gets, what it keeps between sends, how it says a send failed.

A reporter's `send(report, state)` makes the service show `report` and
returns its new `state`: the ids it must remember to update in place (a
check run id, a Slack message's ts), plain JSON, kept in the outbox. The
deliverer calls it with the newest report of a job, at most once per
`min_interval` seconds per job (except the final report), and never twice at
once for the same job. Sending the same report again must not create a
second check or message: that is what `state` is for.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict


class RetryLater(Exception):
    """The service could not take it now (5xx, 429, a network error): the deliverer tries again.

    `after` is the service's own advice in seconds (Retry-After, X-RateLimit-Reset), else None for
    the deliverer's exponential backoff with jitter.
    """

    def __init__(self, message: str, *, after: float | None = None, state: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.after = after
        self.state = dict(state) if state is not None else None  # how far the send got (see the deliverer)


def retry_after(headers: Mapping[str, str], now: float, *, reset: str | None = None) -> float | None:
    """Seconds a service asks to wait before the next try: its Retry-After (seconds or an HTTP date, RFC 9110
    10.2.3), which GitHub, GitLab and Slack all send; else, when `reset` names a header, until the epoch
    second it holds (GitLab's RateLimit-Reset, GitHub's X-RateLimit-Reset). None when neither says."""
    text = (headers.get("retry-after") or "").strip()
    if text:
        seconds = _finite(text)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(text).timestamp() - now)
        except (TypeError, ValueError, OverflowError):
            pass
    epoch = _finite((headers.get(reset) or "").strip()) if reset else None
    return None if epoch is None else max(0.0, epoch - now)


def _finite(text: str) -> float | None:
    """The number a header holds; None for none, and for "inf" or "nan", which float() takes but no wait can be."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class GiveUp(Exception):
    """Sending can never work as configured (a channel that does not exist, a token without access):
    reported once in the log and /metrics, not retried."""

    state: dict[str, Any]  # set by a reporter whose send got part-way, as on RetryLater (see the deliverer)


class Annotation(TypedDict):
    """An invalid job's diagnostic as a check annotation, in GitHub's shape."""

    path: str
    line: int  # from 1, as is column
    column: int
    level: str  # failure, warning or notice
    message: str
    title: str  # the diagnostic's code


@dataclass(frozen=True)
class TaskRow:
    name: str
    state: str  # a TaskState value: pending, waiting, submitted, running, succeeded, failed, skipped, cancelled
    duration: float | None  # seconds, first attempt's start to the last one's end; None while it runs or never ran
    attempts: int
    reason: str = ""  # why it failed, was skipped or cancelled (masked)
    url: str = ""  # a deployment task's ready service: where it answers
    access: str = ""  # for a non-public service, how to get a token (never a token)


@dataclass(frozen=True)
class JobReport:
    """What a person should see about one job now. Built by build.py from the store; every text masked."""

    job_id: str  # the job's id; for a fork's pull request held for approval: "gate:<repo>#<number>@<sha>"
    repository: str  # owner/repo
    pipeline: str  # the pipeline's name; checks and statuses are named fasttrack/<pipeline>
    pipeline_path: str
    commit: str  # the commit the job runs (checks and statuses go on it)
    ref: str | None
    trigger: Mapping[str, Any]  # the job's trigger record: event, sender, number, installation, ...
    status: str  # a JobStatus value, or "action_required" for a held fork pull request
    conclusion: str | None  # None until it ended; else GitHub's: success, failure, cancelled, timed_out,
    #                         neutral (only continue_on_failure tasks failed), action_required (fork held)
    started: bool  # some task started (GitHub: in_progress)
    title: str  # one line: "3 of 4 tasks succeeded; train failed (exit 3)"
    summary: str  # Markdown: the task table, the DAG as Mermaid coloured by state, the commit and the spec id
    text: str  # Markdown: the tail of each failed task's log (masked), or ""
    tasks: tuple[TaskRow, ...] = ()
    annotations: tuple[Annotation, ...] = ()  # an invalid job's diagnostics
    failed_logs: Mapping[str, str] = field(default_factory=dict)  # task -> the tail of its last attempt's log (masked)
    details_url: str | None = None  # the daemon's job page when public_url is set
    notify: Mapping[str, Any] = field(default_factory=dict)  # the pipeline's `notify` (slack: channel, on)
    created_at: float = 0.0
    started_at: float | None = None  # when its first task started (epoch seconds)
    completed_at: float | None = None  # when its last task ended
    results: tuple[str, ...] = ()  # model results in a few lines for Slack (failed gates first); () when none
    images: tuple[tuple[str, str], ...] = ()  # plots as (title, signed URL at the daemon) for a check run

    @property
    def ended(self) -> bool:
        return self.conclusion is not None

    @property
    def check_name(self) -> str:
        return f"fasttrack/{self.pipeline}"


class Reporter(Protocol):
    name: str  # "github", "gitlab", "slack": the outbox keeps one row per (job, reporter name)
    min_interval: float  # seconds between two sends for one job, except the final one

    def wants(self, report: JobReport) -> bool:
        """Whether this job concerns the reporter at all (its repository's provider, the pipeline's notify)."""
        ...

    async def send(self, report: JobReport, state: Mapping[str, Any]) -> dict[str, Any]:
        """Show the report; the new state. Raises RetryLater or GiveUp; never anything else on purpose."""
        ...

    async def aclose(self) -> None: ...
