"""A client for a running daemon's HTTP API (`fasttrack-gitops serve`): POST /api/trigger.

Used by the CLI's `trigger` and by the Action's `wait: false`. The API token
(the daemon's `api_token_env`) goes as a Bearer token. Whatever keeps the
daemon from being used is a `DaemonError` (exit code 2) with a one-line
message: it cannot be reached, does not answer in time, answers something
that is not the daemon's JSON, or refuses the request (a 401 says how to
give the token). A pipeline the daemon makes no job of (422: not there, or
not valid at the ref) is an answer, not an error: the caller decides what
it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fasttrack_gitops.core.errors import UsageError

API_TOKEN_VARIABLE = "FTG_API_TOKEN"  # where both shells read the daemon's API token
# The daemon reads the pipeline at the ref before it answers, which may mean fetching the repository.
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class DaemonError(UsageError):
    """The daemon cannot be used for this request; the message says why in one line."""

    def __init__(self, message: str, *, answer: dict | None = None):
        super().__init__(message)
        self.answer = answer  # the daemon's JSON, when it answered with it


@dataclass(frozen=True)
class Triggered:
    """The daemon's answer to a trigger: the jobs it made (201), or why it made none (422)."""

    status: int
    answer: dict  # the daemon's JSON object

    @property
    def made(self) -> bool:
        return self.status == 201

    @property
    def jobs(self) -> tuple[str, ...]:
        return tuple(str(j) for j in self.answer.get("jobs") or ())

    @property
    def message(self) -> str:
        """The daemon's error (or note), on one line."""
        return _one_line(str(self.answer.get("error") or self.answer.get("note") or f"HTTP {self.status}"))


def trigger(
    url: str,
    *,
    repository: str,
    pipeline: str,
    ref: str,
    request_id: str,
    sender: str,
    api_token: str | None = None,
    no_cache: bool = False,
    params: Mapping[str, str] | None = None,
    where: str = "",
    timeout: httpx.Timeout = TIMEOUT,
) -> Triggered:
    """Ask the daemon at `url` to run `pipeline` of `repository` at `ref` (one job per `request_id`, however
    often it is asked). `where` names, for the messages, where the caller's user sets the daemon's address."""
    hint = f" ({where})" if where else ""
    body: dict[str, Any] = {
        "repository": repository,
        "pipeline": pipeline,
        "ref": ref,
        "request_id": request_id,
        "sender": sender,
    }
    if no_cache:
        body["no_cache"] = True
    if params:
        body["params"] = dict(params)
    headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
    try:
        response = httpx.post(url.rstrip("/") + "/api/trigger", json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as e:
        raise DaemonError(
            f"the daemon at {url} did not answer in time ({type(e).__name__}); is it overloaded, or is the "
            "repository slow to fetch?"
        ) from None
    except httpx.HTTPError as e:
        raise DaemonError(
            f"cannot reach the daemon at {url}: {_why(e)}; is `fasttrack-gitops serve` running there?{hint}"
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):  # a proxy's error page, another service: not the daemon's JSON object
        raise DaemonError(
            f"{url} answered {response.status_code} {response.reason_phrase} without the JSON a "
            f"fasttrack-gitops daemon answers; is that the daemon's address?{hint}"
        )
    triggered = Triggered(response.status_code, answer)
    if triggered.status in (201, 422):
        return triggered
    advice = ""
    if triggered.status == 401:
        advice = (
            f"; ${API_TOKEN_VARIABLE} is not the daemon's API token"
            if api_token
            else f"; give the daemon's API token in ${API_TOKEN_VARIABLE}"
        )
    raise DaemonError(
        f"the daemon refused to run {pipeline} of {repository} ({triggered.status}): {triggered.message}{advice}",
        answer=answer,
    )


def _why(error: httpx.HTTPError) -> str:
    """The error's kind, and its words when it has any, on one line."""
    text = _one_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
