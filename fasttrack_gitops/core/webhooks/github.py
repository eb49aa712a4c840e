"""Verify and parse GitHub webhook deliveries (and the Action's event payload, which is one). Pure.

GitHub signs the raw body with the webhook's secret (X-Hub-Signature-256)
and names the event and the delivery in headers (X-GitHub-Event,
X-GitHub-Delivery). The events we act on: push, pull_request, a new comment
on a pull request, and the "Re-run" buttons of our check runs and suites.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from fasttrack_gitops.core.events import ZERO_COMMIT, Comment, PullRequest, Push, Rerequest
from fasttrack_gitops.core.webhooks import DELETED_FORK, Delivery, WebhookError
from fasttrack_gitops.core.webhooks.payload import Ignore, Parsed, Payload, load_json, lowercase_headers, require_header

RERUN_FAILED = "rerun-failed"  # identifier of our check runs' "Re-run failed tasks" button


def verify_github(body: bytes, signature_header: str | None, secret: str | None) -> None:
    """Check X-Hub-Signature-256 (HMAC-SHA256 of the raw body); unsigned deliveries are never accepted."""
    if not secret:
        raise WebhookError(401, "no github.webhook_secret_env is configured; webhooks are refused")
    if not signature_header:
        raise WebhookError(401, "X-Hub-Signature-256 is missing; is the webhook's secret set on GitHub?")
    prefix, _, digest = signature_header.strip().partition("=")
    if prefix != "sha256" or not digest:
        raise WebhookError(401, "X-Hub-Signature-256 is not of the form sha256=<hex digest>")
    try:
        sent = bytes.fromhex(digest)
    except ValueError:
        raise WebhookError(401, "X-Hub-Signature-256 is not a hex digest") from None
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(sent, expected):
        raise WebhookError(401, "X-Hub-Signature-256 does not match the body and the configured secret")


def parse_github(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The Delivery a (verified) GitHub webhook means; unknown events are accepted and ignored, not errors."""
    h = lowercase_headers(headers)
    event = require_header(h, "X-GitHub-Event")
    delivery_id = require_header(h, "X-GitHub-Delivery")
    p = Payload(_decode_body(h, body), f"{event} payload")
    parser = _PARSERS.get(event)
    if parser is not None:
        outcome = parser(p)
    else:
        outcome = Ignore("ping" if event == "ping" else f"unsupported event {event!r}")
    if isinstance(outcome, Ignore):
        installation = p.peek("installation.id")
        return Delivery(
            "github",
            delivery_id,
            event,
            p.peek_string("action"),
            p.peek_string("repository.full_name") or "",
            installation if _is_int(installation) else None,
            None,
            outcome.reason,
        )
    return Delivery(
        "github",
        delivery_id,
        event,
        p.opt_string("action"),
        outcome.repository,
        p.opt_integer("installation.id"),
        outcome,
    )


def _decode_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """GitHub sends JSON, or (a webhook's content type "form") the JSON in a `payload=` form field."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return load_json(body, "the webhook body")
    try:  # as str: parse_qs on bytes re-encodes values as ASCII and fails on any non-ASCII text
        form = parse_qs(body.decode("ascii"), max_num_fields=100, encoding="utf-8", errors="strict")
    except ValueError as exc:  # UnicodeError included
        raise WebhookError(400, f"the form-encoded webhook body is malformed: {exc}") from None
    payload = form.get("payload")
    if not payload:
        raise WebhookError(400, "the form-encoded webhook body has no 'payload' field")
    return load_json(payload[0], "the form field 'payload'")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- one parser per event


def _push(p: Payload) -> Parsed:
    """A branch delete still parses (after=ZERO_COMMIT): the daemon decides what a delete means."""
    repository = p.string("repository.full_name")
    after = p.commit("after")
    if p.opt_bool("deleted"):  # GitHub sends zeros then too; trust the flag if it ever does not
        after = ZERO_COMMIT
    default_branch = p.opt_string("repository.default_branch") or p.opt_string("repository.master_branch")
    return Push(
        repository=repository,
        ref=p.string("ref"),
        before=p.commit("before"),
        after=after,
        forced=p.opt_bool("forced"),
        default_branch=default_branch,
        sender=p.opt_string("sender.login") or "",
    )


def _pull_request(p: Payload) -> Parsed:
    """Every action parses; the trigger rules choose which run. A deleted fork is still a fork."""
    head_repo = p.opt_object("pull_request.head.repo")
    head_repository = p.string("pull_request.head.repo.full_name") if head_repo is not None else DELETED_FORK
    return PullRequest(
        repository=p.string("repository.full_name"),
        action=p.string("action"),
        number=p.integer("number"),
        head_sha=p.commit("pull_request.head.sha"),
        head_ref=p.string("pull_request.head.ref"),
        head_repository=head_repository,
        base_ref=p.string("pull_request.base.ref"),
        base_sha=p.commit("pull_request.base.sha"),
        author=p.string("pull_request.user.login"),
        author_association=p.string("pull_request.author_association"),
        sender=p.opt_string("sender.login") or "",
    )


def _issue_comment(p: Payload) -> Parsed:
    """Only a new comment on a pull request can carry a /fasttrack command; edits would replay it."""
    action = p.string("action")
    if action != "created":
        return Ignore(f"issue_comment action {action!r} does not trigger")
    if p.opt_object("issue.pull_request") is None:
        return Ignore("comment on an issue, not a pull request")
    return Comment(
        repository=p.string("repository.full_name"),
        number=p.integer("issue.number"),
        body=p.string("comment.body"),
        author=p.string("comment.user.login"),
        author_association=p.string("comment.author_association"),
    )


def _check_run(p: Payload) -> Parsed:
    """Re-run one check, or press its "Re-run failed tasks" button; our own created/completed echoes are ignored."""
    action = p.string("action")
    if action == "requested_action":
        identifier = p.string("requested_action.identifier")
        if identifier != RERUN_FAILED:
            return Ignore(f"check_run action button {identifier!r} is not ours")
    elif action != "rerequested":
        return Ignore(f"check_run action {action!r} does not trigger")
    return Rerequest(
        repository=p.string("repository.full_name"),
        head_sha=p.commit("check_run.head_sha"),
        head_branch=p.opt_string("check_run.check_suite.head_branch"),
        check_name=p.string("check_run.name"),
        external_id=p.opt_string("check_run.external_id") or None,
        failed_only=action == "requested_action",
        sender=p.opt_string("sender.login") or "",
    )


def _check_suite(p: Payload) -> Parsed:
    """The suite's "Re-run all checks": every pipeline at its commit (requested/completed are ignored)."""
    action = p.string("action")
    if action != "rerequested":
        return Ignore(f"check_suite action {action!r} does not trigger")
    return Rerequest(
        repository=p.string("repository.full_name"),
        head_sha=p.commit("check_suite.head_sha"),
        head_branch=p.opt_string("check_suite.head_branch"),
        check_name=None,
        sender=p.opt_string("sender.login") or "",
    )


_PARSERS: dict[str, Callable[[Payload], Parsed]] = {
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "check_run": _check_run,
    "check_suite": _check_suite,
}
