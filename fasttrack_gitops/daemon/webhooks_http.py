"""POST /webhooks/github and /webhooks/gitlab: a delivery checked, deduplicated and handed to the daemon.

A refused webhook changes nothing: the signature is checked before the body
is parsed, and a body over the limit is not even read to its end. A webhook
runs only the repositories configured with its provider: the GitLab token is
no key to a GitHub repository, nor the GitHub secret to a GitLab one. The
answer says what it did, which GitHub shows in the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

from fasttrack_gitops.core.webhooks import WebhookError, check_size
from fasttrack_gitops.core.webhooks.github import parse_github, verify_github
from fasttrack_gitops.core.webhooks.gitlab import parse_gitlab, verify_gitlab
from fasttrack_gitops.daemon.handled import Handled
from fasttrack_gitops.daemon.metrics import Metrics
from fasttrack_gitops.daemon.service import Daemon
from fasttrack_gitops.engine.state.errors import StoreError


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it grows past the limit."""
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise WebhookError(413, f"the body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise WebhookError(400, "the client went away before the body was complete") from None
    return b"".join(chunks)


async def webhook(daemon: Daemon, provider: str, request: Request, public: Callable[[str], str]) -> tuple[int, dict]:
    """(status, JSON answer) for one delivery; WebhookError for a refused one."""
    config = daemon.config
    metrics = daemon.metrics
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        length = headers.get("content-length")
        check_size(int(length) if length and length.isdigit() else None, config.webhook_max_body)
        raw = await read_body(request, config.webhook_max_body)
        if provider == "github":
            verify_github(
                raw, headers.get("x-hub-signature-256"), config.github.webhook_secret if config.github else None
            )
            delivery = parse_github(headers, raw)
        else:
            verify_gitlab(headers.get("x-gitlab-token"), config.gitlab.webhook_token if config.gitlab else None)
            delivery = parse_gitlab(headers, raw)
    except WebhookError as e:
        metrics.delivery(provider, {401: "unauthorized", 413: "too_large"}.get(e.status, "malformed"))
        raise
    event = delivery.record
    if event is None:
        metrics.delivery(provider, "ignored")
        return 202, {"delivery": delivery.id, "ignored": delivery.ignored}
    repo = config.repository(delivery.repository)
    if repo is not None and repo.provider != provider:
        metrics.delivery(provider, "ignored")
        return 202, {
            "delivery": delivery.id,
            "ignored": f"repository {repo.name} is configured with provider {repo.provider}, so its "
            f"{provider} webhooks run nothing",
        }
    if daemon.pool.draining:
        metrics.delivery(provider, "draining")
        return 503, {"error": "the daemon is shutting down; deliver again later"}
    ledger, key = daemon.ledger, (provider, delivery.id)
    first = daemon.bursts.deliveries.in_flight(key)
    if first is not None:  # the same id again while its first delivery is handled: that handling's answer
        return _replayed(provider, delivery.id, await asyncio.shield(first), metrics, public)
    try:
        known = daemon.bursts.deliveries.remembered(key)
        if known is not None or ledger.seen_delivery(provider, delivery.id):  # GitHub's "Redeliver"
            return _replayed(provider, delivery.id, known, metrics, public)
    except StoreError:
        metrics.delivery(provider, "error")
        return 503, {"error": "the daemon's state cannot be read now; deliver again later"}
    handled, _ = await daemon.bursts.deliveries.run(
        key, lambda: daemon.handle(event, delivery=delivery.id, installation=delivery.installation_id)
    )
    if handled.failed:  # not recorded, so that the host's redelivery is handled again
        return _failed(provider, delivery.id, handled, metrics, public)
    # Recorded once handled, in one write: a daemon killed before this line handles the redelivery again,
    # which finds the jobs already made (their keys are unique) rather than answering "handled" for nothing.
    with contextlib.suppress(StoreError):  # the jobs are stored; this row only tells a redelivery apart
        ledger.record_delivery(provider, delivery.id, delivery.event, handled.note[:500])
    metrics.delivery(provider, "coalesced" if handled.coalesced else "accepted")
    return 202, {"delivery": delivery.id, **handled.as_dict(), "note": public(handled.note)}


def _replayed(
    provider: str, delivery_id: str, handled: Handled | None, metrics: Metrics, public: Callable[[str], str]
) -> tuple[int, dict]:
    """The answer to a delivery id seen before: what its handling did (the jobs, when still remembered)."""
    if handled is not None and handled.failed:
        return _failed(provider, delivery_id, handled, metrics, public)
    metrics.delivery(provider, "duplicate")
    return 200, {
        "delivery": delivery_id,
        "duplicate": True,
        **({"jobs": handled.jobs} if handled is not None else {}),
        "note": "this delivery was handled already; nothing was done again",
    }


def _failed(
    provider: str, delivery_id: str, handled: Handled, metrics: Metrics, public: Callable[[str], str]
) -> tuple[int, dict]:
    """A handling that failed: 503 when the state database refused (the host delivers again later), else 500."""
    metrics.delivery(provider, "error")
    return 503 if handled.unavailable else 500, {"delivery": delivery_id, "error": public(handled.note)}
