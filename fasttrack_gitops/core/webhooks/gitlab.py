"""Verify and parse GitLab webhook deliveries, in the words GitHub's trigger rules speak. Pure.

GitLab sends the shared secret token itself (X-Gitlab-Token), not a
signature, and names the hook in X-Gitlab-Event. The hooks we act on: Push
Hook, Tag Push Hook, Merge Request Hook (a pull request) and Note Hook (a
comment on a merge request).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from fasttrack_gitops.core.events import Comment, PullRequest, Push
from fasttrack_gitops.core.webhooks import DELETED_FORK, Delivery, WebhookError
from fasttrack_gitops.core.webhooks.payload import Ignore, Parsed, Payload, load_json, lowercase_headers, require_header

# object_attributes.action -> GitHub's words, which the trigger rules speak ("update" is decided by oldrev).
_MERGE_REQUEST_ACTIONS = {"open": "opened", "reopen": "reopened", "close": "closed", "merge": "merged"}


def verify_gitlab(token_header: str | None, token: str | None) -> None:
    """Check X-Gitlab-Token (GitLab sends the shared token itself, not a signature) in constant time."""
    if not token:
        raise WebhookError(401, "no gitlab.webhook_token_env is configured; webhooks are refused")
    if not token_header:
        raise WebhookError(401, "X-Gitlab-Token is missing; is the webhook's secret token set on GitLab?")
    if not hmac.compare_digest(token_header.encode("utf-8"), token.encode("utf-8")):
        raise WebhookError(401, "X-Gitlab-Token does not match the configured token")


def parse_gitlab(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The Delivery a (verified) GitLab webhook means; unknown hooks are accepted and ignored, not errors."""
    h = lowercase_headers(headers)
    event = require_header(h, "X-Gitlab-Event")
    p = Payload(load_json(body, "the webhook body"), f"{event} payload")
    parser = _PARSERS.get(event)
    outcome = parser(p) if parser is not None else Ignore(f"unsupported event {event!r}")
    action = p.peek_string("object_attributes.action")
    if isinstance(outcome, Ignore):
        return Delivery(
            "gitlab",
            _delivery_id(h, body),
            event,
            action,
            p.peek_string("project.path_with_namespace") or "",
            None,
            None,
            outcome.reason,
        )
    return Delivery("gitlab", _delivery_id(h, body), event, action, outcome.repository, None, outcome)


def _delivery_id(headers: dict[str, str], body: bytes) -> str:
    """Idempotency-Key is per event and kept on retries (GitLab 17.4+); X-Gitlab-Webhook-UUID is new on
    every attempt (a retry is then not recognised, but two events never share an id); older GitLab: the body.

    X-Gitlab-Event-UUID is deliberately not used: it is GitLab's recursion-detection id, shared by every
    event one originating request sends to the same hook (a push of three branches sends three Push
    Hooks with one Event-UUID), so deduplicating on it would drop real events.
    """
    for name in ("idempotency-key", "x-gitlab-webhook-uuid"):
        if headers.get(name, "").strip():
            return headers[name].strip()
    return hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------- one parser per hook


def _push(p: Payload) -> Parsed:
    """Push Hook and Tag Push Hook: GitLab does not say whether a push was forced."""
    return Push(
        repository=p.string("project.path_with_namespace"),
        ref=p.string("ref"),
        before=p.commit("before"),
        after=p.commit("after"),
        forced=False,
        default_branch=p.opt_string("project.default_branch"),
        sender=p.opt_string("user_username") or "",
    )


def _merge_request(p: Payload) -> Parsed:
    """GitLab names only the acting user, so it stands for the author; GitLab has no author_association."""
    action = p.string("object_attributes.action")
    if action == "update":
        action = "synchronize" if p.opt_string("object_attributes.oldrev") else "edited"  # oldrev: the code changed
    source = p.opt_object("object_attributes.source")
    head_repository = p.string("object_attributes.source.path_with_namespace") if source is not None else DELETED_FORK
    user = p.opt_string("user.username") or ""
    return PullRequest(
        repository=p.string("project.path_with_namespace"),
        action=_MERGE_REQUEST_ACTIONS.get(action, action),
        number=p.integer("object_attributes.iid"),
        head_sha=p.commit("object_attributes.last_commit.id"),
        head_ref=p.string("object_attributes.source_branch"),
        head_repository=head_repository,
        base_ref=p.string("object_attributes.target_branch"),
        author=user,
        author_association="",
        sender=user,
    )


def _note(p: Payload) -> Parsed:
    """A new, human comment on a merge request; GitLab gives no association, so the daemon's config decides trust."""
    noteable = p.opt_string("object_attributes.noteable_type") or ""
    if noteable != "MergeRequest":
        return Ignore(f"note on {noteable or 'an unknown object'!r}, not on a merge request")
    action = p.opt_string("object_attributes.action") or "create"  # older GitLab sends no action: only creations
    if action != "create":
        return Ignore(f"note action {action!r} does not trigger")
    if p.opt_bool("object_attributes.system"):
        return Ignore("system note")
    return Comment(
        repository=p.string("project.path_with_namespace"),
        number=p.integer("merge_request.iid"),
        body=p.string("object_attributes.note"),
        author=p.string("user.username"),
        author_association="",
    )


_PARSERS: dict[str, Callable[[Payload], Parsed]] = {
    "Push Hook": _push,
    "Tag Push Hook": _push,
    "Merge Request Hook": _merge_request,
    "Note Hook": _note,
}
