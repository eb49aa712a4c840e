"""What the manager said no to, as exceptions with one line a person understands.

The manager answers errors as problem+json (backendai-api.md §4):
`{"type": "https://api.backend.ai/probs/<slug>", "title": ..., "msg": ...,
"data": ...}`. We match on the slug (never on the title) and say what
happened, what the server said and, where there is one, what to do. An error
names the access key when it matters and never the secret key. Pure: no
httpx here; the client hands over the status, the headers and the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, TypedDict

from fasttrack_gitops.core.errors import FastTrackError, OperationalError, UsageError

CLOCK_WINDOW = timedelta(minutes=15)  # how far apart the manager lets the clocks be


@dataclass(frozen=True)
class Problem:
    type: str | None
    title: str | None
    msg: str | None
    data: Any = None

    @property
    def slug(self) -> str:
        return (self.type or "").rstrip("/").rsplit("/", 1)[-1]

    def describe(self) -> str:
        """'title: msg (data)', without repeating itself."""
        text = self.title or self.slug or "error"
        if self.msg and self.msg.strip() != (self.title or "").strip():
            text = f"{text.rstrip('.')}: {self.msg}"
        if self.data not in (None, "", {}, []):
            text = f"{text} ({_brief(self.data)})"
        return text


class ErrorFields(TypedDict, total=False):
    """BackendAIError's keyword arguments, as the code that turns one error into a clearer one passes them on."""

    status: int | None
    problem: Problem | None
    method: str | None
    path: str | None


class BackendAIError(FastTrackError):
    """A request the manager refused or could not answer; `status` and `problem` when it answered.

    Exit code 1 unless a subclass says who must act: UsageError (exit 2) for
    the keys or endpoint given, OperationalError (exit 3) for a manager that
    cannot serve now (unreachable, failing, rate-limited, over quota, clocks apart).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Problem | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem
        self.method = method
        self.path = path

    @property
    def slug(self) -> str | None:
        return self.problem.slug if self.problem else None


class AuthError(BackendAIError, UsageError):
    """401: the keypair is unknown, inactive, or the signature does not match (a wrong secret key)."""


class ClockSkewError(BackendAIError, OperationalError):
    """400 "Date/time sync error": our clock and the manager's are more than 15 minutes apart."""

    def __init__(self, message: str, *, skew: timedelta | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.skew = skew  # manager minus us, when the manager's Date header told us


class NotAManagerError(BackendAIError, UsageError):
    """The endpoint does not answer `GET /` the way a Backend.AI manager does."""


class UnsupportedVersionError(BackendAIError, OperationalError):
    """The manager speaks no API version this client knows."""


class RateLimitedError(BackendAIError, OperationalError):
    """429 on every attempt: the keypair's rate limit."""


class QuotaError(BackendAIError, OperationalError):
    """quota-exceeded: 412 on 23.09/24.03, 400 on 25.x."""


class NotFoundError(BackendAIError):
    """404: no such session, folder or URL (a finished session is 404 on 23.09)."""


class ServerError(BackendAIError, OperationalError):
    """5xx: the manager failed, or is frozen for maintenance."""


class ConnectionFailedError(BackendAIError, OperationalError):
    """The manager could not be reached (refused, unknown host, TLS, dropped connection)."""


class RequestTimeoutError(BackendAIError, OperationalError):
    """The manager did not answer in time."""


def parse_problem(body: bytes) -> Problem | None:
    """The problem+json fields of an error body; None when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not ({"type", "title"} & document.keys()):
        return None
    text = {key: document.get(key) if isinstance(document.get(key), str) else None for key in ("type", "title", "msg")}
    return Problem(text["type"], text["title"], text["msg"], document.get("data"))


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    path: str,
    endpoint: str,
    access_key: str | None = None,
    sent_date: str | None = None,
    attempts: int = 1,
) -> BackendAIError:
    """The exception for an error answer; `sent_date` is the Date header we sent (for clock skew)."""
    problem = parse_problem(body)
    slug = problem.slug if problem else ""
    what = f"{method} {path}"
    said = problem.describe() if problem else _plain_answer(status, headers, body)
    code = f"{status} {slug}" if slug else f"{status} {_phrase(status)}".rstrip()
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    fields: ErrorFields = {"status": status, "problem": problem, "method": method, "path": path}
    key = f"access key {access_key}" if access_key else "the access key"

    if status == 401:
        if problem and problem.msg and "not found" in problem.msg.lower():
            hint = f"the manager does not know {key}, or it is inactive: check BACKEND_ACCESS_KEY"
        elif problem and problem.msg and "mismatch" in problem.msg.lower():
            hint = (
                f"the signature made with {key} does not match: check BACKEND_SECRET_KEY (it must be this key's secret)"
            )
        else:
            hint = f"check BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY ({key})"
        return AuthError(f"Backend.AI refused {key} on {what}: {said} [{code}]; {hint}", **fields)
    if status == 400 and problem and slug == "invalid-auth-params" and "date/time" in (problem.msg or "").lower():
        return _clock_skew(headers, sent_date, what, said, code, fields)
    if status == 400 and problem and "unsupported api version" in (problem.msg or problem.title or "").lower():
        return UnsupportedVersionError(
            f"the Backend.AI manager at {endpoint} refused the API version we sent on {what}: {said} [{code}]", **fields
        )
    if status == 429:
        limit = _rate_limit_text(headers)
        return RateLimitedError(
            f"Backend.AI rate limit reached for {key}{limit}: {what} was refused{tries} [{code}]; "
            "wait and run again, or ask an admin to raise the keypair's rate_limit",
            **fields,
        )
    if slug == "quota-exceeded" or status == 412:
        return QuotaError(f"Backend.AI quota exceeded on {what}: {said} [{code}]", **fields)
    if status == 404:
        return NotFoundError(f"Backend.AI {what}: {said} [{code}]", **fields)
    if status >= 500:
        return ServerError(f"the Backend.AI manager at {endpoint} failed on {what}{tries}: {said} [{code}]", **fields)
    return BackendAIError(f"Backend.AI refused {what}: {said} [{code}]", **fields)


def _clock_skew(headers, sent_date, what, said, code, fields) -> ClockSkewError:
    skew = clock_skew(sent_date, headers.get("Date"))
    if skew is None:
        apart = f"more than {_span(CLOCK_WINDOW)} apart"
    else:
        ahead = "ahead of" if skew > timedelta(0) else "behind"
        apart = f"{_span(abs(skew))} apart (the manager's clock is {ahead} this machine's)"
    return ClockSkewError(
        f"Backend.AI refused {what}: the clocks of this machine and the manager are {apart}, and the manager "
        f"allows at most {_span(CLOCK_WINDOW)}: {said} [{code}]; synchronise the clocks (NTP)",
        skew=skew,
        **fields,
    )


def clock_skew(sent_date: str | None, server_date: str | None) -> timedelta | None:
    """The manager's clock minus ours, from our ISO Date and its RFC 1123 Date header (±1 s)."""
    if not sent_date or not server_date:
        return None
    try:
        ours = datetime.fromisoformat(sent_date)
        theirs = parsedate_to_datetime(server_date)
    except (TypeError, ValueError):
        return None
    ours = ours if ours.tzinfo else ours.replace(tzinfo=timezone.utc)
    theirs = theirs if theirs.tzinfo else theirs.replace(tzinfo=timezone.utc)
    return theirs - ours


def _span(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 90:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds)} seconds"


def _rate_limit_text(headers: Mapping[str, str]) -> str:
    limit, window = headers.get("X-RateLimit-Limit"), headers.get("X-RateLimit-Window")
    return f" ({limit} requests per {window} s)" if limit and window else ""


def _plain_answer(status: int, headers: Mapping[str, str], body: bytes) -> str:
    kind = (headers.get("Content-Type") or "no content type").split(";", 1)[0]
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return f"{_phrase(status) or 'HTTP ' + str(status)} ({kind}{': ' + _cut(text, 80) if text else ''})"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _brief(data: Any) -> str:
    if isinstance(data, dict):
        text = "; ".join(
            f"{key}: {_brief(value) if isinstance(value, (dict, list)) else value}" for key, value in data.items()
        )
    elif isinstance(data, list):
        text = ", ".join(str(item) for item in data)
    else:
        text = str(data)
    return _cut(text, 300)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
