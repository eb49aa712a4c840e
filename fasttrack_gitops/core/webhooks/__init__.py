"""Verify and parse GitHub and GitLab webhook deliveries into event records. Pure.

The daemon's HTTP layer reads the headers and the raw body, calls
`check_size`, then `verify_github`/`verify_gitlab` on the raw bytes (the
signature covers exactly what was sent, so nothing may re-encode the body
first), then `parse_github`/`parse_gitlab`. Every refusal is a
`WebhookError` carrying the HTTP status to answer. A delivery we accept but
do not act on (a ping, our own check runs' events, an event we do not
handle) is a `Delivery` whose `record` is None and whose `ignored` says why:
the host then shows a 2xx with that reason instead of a failure to retry.

Here: what the host sees (the refusal, the accepted delivery, the size
check). `github.py` and `gitlab.py` verify and parse each host's deliveries;
`payload.py` is what their parsers share.
"""

from __future__ import annotations

from dataclasses import dataclass

from fasttrack_gitops.core.events import Event

DELETED_FORK = "(deleted fork)"  # head_repository of a pull request whose fork is gone; never equals the base


class WebhookError(Exception):
    """A delivery we refuse; `status` is the HTTP status to answer, the message says why (never a secret)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Delivery:
    """One accepted webhook delivery: where it came from, and the event record it means (if any)."""

    provider: str  # "github" | "gitlab"
    id: str  # unique per event, the same on redelivery where the host allows: the daemon dedupes on it
    event: str  # X-GitHub-Event / X-Gitlab-Event as sent
    action: str | None  # payload "action" (GitHub) / object_attributes.action (GitLab), as sent
    repository: str  # owner/repo; "" when an ignored event names none
    installation_id: int | None  # GitHub App installation the reporters authenticate as
    record: Event | None  # None when accepted but ignored
    ignored: str = ""  # why record is None


def check_size(length: int | None, limit: int) -> None:
    """Refuse a body over the limit before reading it (None: no Content-Length; the reader must cap it)."""
    if length is None:
        return
    if length < 0:
        raise WebhookError(400, f"Content-Length {length} is negative")
    if length > limit:
        raise WebhookError(413, f"webhook body is {length} bytes; the limit is {limit}")
