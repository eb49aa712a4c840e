"""Verify and parse GitHub and GitLab webhook deliveries into event records. Pure.

The daemon's HTTP layer reads the headers and the raw body, calls
`check_size`, then `verify_github`/`verify_gitlab` on the raw bytes (the
signature covers exactly what was sent, so nothing may re-encode the body
first), then `parse_github`/`parse_gitlab`. Every refusal is a
`WebhookError` carrying the HTTP status to answer. A delivery we accept but
do not act on (a ping, our own check runs' events, an event we do not
handle) is a `Delivery` whose `record` is None and whose `ignored` says why:
the host then shows a 2xx with that reason instead of a failure to retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar, overload
from urllib.parse import parse_qs

from fasttrack_gitops.core.events import ZERO_COMMIT, Comment, Event, PullRequest, Push, Rerequest

DELETED_FORK = "(deleted fork)"  # head_repository of a pull request whose fork is gone; never equals the base
RERUN_FAILED = "rerun-failed"  # identifier of our check runs' "Re-run failed tasks" button


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


class _Ignore(NamedTuple):
    """A parser's answer for a well-formed event that selects nothing."""

    reason: str


_Parsed = Event | _Ignore  # what a parser makes of one event


# ---------------------------------------------------------------- limits and signatures


def check_size(length: int | None, limit: int) -> None:
    """Refuse a body over the limit before reading it (None: no Content-Length; the reader must cap it)."""
    if length is None:
        return
    if length < 0:
        raise WebhookError(400, f"Content-Length {length} is negative")
    if length > limit:
        raise WebhookError(413, f"webhook body is {length} bytes; the limit is {limit}")


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


def verify_gitlab(token_header: str | None, token: str | None) -> None:
    """Check X-Gitlab-Token (GitLab sends the shared token itself, not a signature) in constant time."""
    if not token:
        raise WebhookError(401, "no gitlab.webhook_token_env is configured; webhooks are refused")
    if not token_header:
        raise WebhookError(401, "X-Gitlab-Token is missing; is the webhook's secret token set on GitLab?")
    if not hmac.compare_digest(token_header.encode("utf-8"), token.encode("utf-8")):
        raise WebhookError(401, "X-Gitlab-Token does not match the configured token")


# ---------------------------------------------------------------- reading payloads


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
_COMMIT = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")  # SHA-1, or SHA-256 object ids
_MISSING: Any = object()
_T = TypeVar("_T")


class _Fields:
    """Typed reads from one payload whose errors name the field ("push payload: 'after' is missing")."""

    def __init__(self, data: dict[str, Any], label: str):
        self.data = data
        self.label = label

    def fail(self, message: str) -> WebhookError:
        return WebhookError(400, f"{self.label}: {message}")

    def value(self, path: str) -> Any:
        """The value at a dotted path; _MISSING when a key is absent, None below a null object."""
        node: Any = self.data
        walked = ""
        for key in path.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                raise self.fail(f"{walked!r} must be an object, not {_kind(node)}")
            node = node.get(key, _MISSING)
            if node is _MISSING:
                return _MISSING
            walked = f"{walked}.{key}" if walked else key
        return node

    @overload
    def typed(self, path: str, kind: type[_T], *, required: Literal[True]) -> _T: ...
    @overload
    def typed(self, path: str, kind: type[_T], *, required: Literal[False]) -> _T | None: ...
    def typed(self, path: str, kind: type[_T], *, required: bool) -> _T | None:
        found = self.value(path)
        if found is _MISSING or found is None:
            if not required:
                return None
            if found is _MISSING:
                raise self.fail(f"{path!r} is missing")
            raise self.fail(f"{path!r} must be {_JSON_TYPES[kind]}, not null")
        if not isinstance(found, kind) or (kind is int and isinstance(found, bool)):
            raise self.fail(f"{path!r} must be {_JSON_TYPES[kind]}, not {_kind(found)}")
        return found

    def string(self, path: str) -> str:
        return self.typed(path, str, required=True)

    def opt_string(self, path: str) -> str | None:
        return self.typed(path, str, required=False)

    def integer(self, path: str) -> int:
        return self.typed(path, int, required=True)

    def opt_integer(self, path: str) -> int | None:
        return self.typed(path, int, required=False)

    def opt_bool(self, path: str, default: bool = False) -> bool:
        found = self.typed(path, bool, required=False)
        return default if found is None else found

    def opt_object(self, path: str) -> dict[str, Any] | None:
        return self.typed(path, dict, required=False)

    def commit(self, path: str) -> str:
        """A commit id, lowercased; an all-zero one (new or deleted ref) becomes ZERO_COMMIT."""
        sha = self.string(path)
        if not _COMMIT.fullmatch(sha):
            raise self.fail(f"{path!r} must be a commit id (40 hex digits), not {sha[:80]!r}")
        return ZERO_COMMIT if not sha.strip("0") else sha.lower()

    def peek(self, path: str) -> Any:
        """Best effort for ignored deliveries, which must never fail on a shape we do not read."""
        try:
            found = self.value(path)
        except WebhookError:
            return None
        return None if found is _MISSING else found


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP header names are case-insensitive; servers hand them over in any case (and ASGI as bytes)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        name = name.decode("latin-1") if isinstance(name, bytes) else name
        out[name.lower()] = value.decode("latin-1") if isinstance(value, bytes) else value
    return out


def _require_header(headers: dict[str, str], name: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise WebhookError(400, f"the {name} header is missing")
    return value


def _load_json(raw: bytes | str, label: str) -> dict[str, Any]:
    """Parse the payload once; malformed JSON or a top level that is not an object is a 400."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookError(400, f"{label} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookError(400, f"{label} must be a JSON object, not {_kind(data)}")
    return data


def _github_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """GitHub sends JSON, or (a webhook's content type "form") the JSON in a `payload=` form field."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return _load_json(body, "the webhook body")
    try:  # as str: parse_qs on bytes re-encodes values as ASCII and fails on any non-ASCII text
        form = parse_qs(body.decode("ascii"), max_num_fields=100, encoding="utf-8", errors="strict")
    except ValueError as exc:  # UnicodeError included
        raise WebhookError(400, f"the form-encoded webhook body is malformed: {exc}") from None
    payload = form.get("payload")
    if not payload:
        raise WebhookError(400, "the form-encoded webhook body has no 'payload' field")
    return _load_json(payload[0], "the form field 'payload'")


# ---------------------------------------------------------------- GitHub


def _github_push(p: _Fields) -> _Parsed:
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


def _github_pull_request(p: _Fields) -> _Parsed:
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


def _github_issue_comment(p: _Fields) -> _Parsed:
    """Only a new comment on a pull request can carry a /fasttrack command; edits would replay it."""
    action = p.string("action")
    if action != "created":
        return _Ignore(f"issue_comment action {action!r} does not trigger")
    if p.opt_object("issue.pull_request") is None:
        return _Ignore("comment on an issue, not a pull request")
    return Comment(
        repository=p.string("repository.full_name"),
        number=p.integer("issue.number"),
        body=p.string("comment.body"),
        author=p.string("comment.user.login"),
        author_association=p.string("comment.author_association"),
    )


def _github_check_run(p: _Fields) -> _Parsed:
    """Re-run one check, or press its "Re-run failed tasks" button; our own created/completed echoes are ignored."""
    action = p.string("action")
    if action == "requested_action":
        identifier = p.string("requested_action.identifier")
        if identifier != RERUN_FAILED:
            return _Ignore(f"check_run action button {identifier!r} is not ours")
    elif action != "rerequested":
        return _Ignore(f"check_run action {action!r} does not trigger")
    return Rerequest(
        repository=p.string("repository.full_name"),
        head_sha=p.commit("check_run.head_sha"),
        head_branch=p.opt_string("check_run.check_suite.head_branch"),
        check_name=p.string("check_run.name"),
        external_id=p.opt_string("check_run.external_id") or None,
        failed_only=action == "requested_action",
        sender=p.opt_string("sender.login") or "",
    )


def _github_check_suite(p: _Fields) -> _Parsed:
    """The suite's "Re-run all checks": every pipeline at its commit (requested/completed are ignored)."""
    action = p.string("action")
    if action != "rerequested":
        return _Ignore(f"check_suite action {action!r} does not trigger")
    return Rerequest(
        repository=p.string("repository.full_name"),
        head_sha=p.commit("check_suite.head_sha"),
        head_branch=p.opt_string("check_suite.head_branch"),
        check_name=None,
        sender=p.opt_string("sender.login") or "",
    )


_GITHUB: dict[str, Callable[[_Fields], _Parsed]] = {
    "push": _github_push,
    "pull_request": _github_pull_request,
    "issue_comment": _github_issue_comment,
    "check_run": _github_check_run,
    "check_suite": _github_check_suite,
}


def parse_github(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The Delivery a (verified) GitHub webhook means; unknown events are accepted and ignored, not errors."""
    h = _lower_keys(headers)
    event = _require_header(h, "X-GitHub-Event")
    delivery_id = _require_header(h, "X-GitHub-Delivery")
    p = _Fields(_github_body(h, body), f"{event} payload")
    handler = _GITHUB.get(event)
    if handler is not None:
        outcome = handler(p)
    else:
        outcome = _Ignore("ping" if event == "ping" else f"unsupported event {event!r}")
    if isinstance(outcome, _Ignore):
        installation = p.peek("installation.id")
        return Delivery(
            "github",
            delivery_id,
            event,
            _peek_str(p, "action"),
            _peek_str(p, "repository.full_name") or "",
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


# ---------------------------------------------------------------- GitLab


# object_attributes.action -> GitHub's words, which the trigger rules speak ("update" is decided by oldrev).
_GITLAB_MR_ACTIONS = {"open": "opened", "reopen": "reopened", "close": "closed", "merge": "merged"}


def _gitlab_push(p: _Fields) -> _Parsed:
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


def _gitlab_merge_request(p: _Fields) -> _Parsed:
    """GitLab names only the acting user, so it stands for the author; GitLab has no author_association."""
    action = p.string("object_attributes.action")
    if action == "update":
        action = "synchronize" if p.opt_string("object_attributes.oldrev") else "edited"  # oldrev: the code changed
    source = p.opt_object("object_attributes.source")
    head_repository = p.string("object_attributes.source.path_with_namespace") if source is not None else DELETED_FORK
    user = p.opt_string("user.username") or ""
    return PullRequest(
        repository=p.string("project.path_with_namespace"),
        action=_GITLAB_MR_ACTIONS.get(action, action),
        number=p.integer("object_attributes.iid"),
        head_sha=p.commit("object_attributes.last_commit.id"),
        head_ref=p.string("object_attributes.source_branch"),
        head_repository=head_repository,
        base_ref=p.string("object_attributes.target_branch"),
        author=user,
        author_association="",
        sender=user,
    )


def _gitlab_note(p: _Fields) -> _Parsed:
    """A new, human comment on a merge request; GitLab gives no association, so the daemon's config decides trust."""
    noteable = p.opt_string("object_attributes.noteable_type") or ""
    if noteable != "MergeRequest":
        return _Ignore(f"note on {noteable or 'an unknown object'!r}, not on a merge request")
    action = p.opt_string("object_attributes.action") or "create"  # older GitLab sends no action: only creations
    if action != "create":
        return _Ignore(f"note action {action!r} does not trigger")
    if p.opt_bool("object_attributes.system"):
        return _Ignore("system note")
    return Comment(
        repository=p.string("project.path_with_namespace"),
        number=p.integer("merge_request.iid"),
        body=p.string("object_attributes.note"),
        author=p.string("user.username"),
        author_association="",
    )


_GITLAB: dict[str, Callable[[_Fields], _Parsed]] = {
    "Push Hook": _gitlab_push,
    "Tag Push Hook": _gitlab_push,
    "Merge Request Hook": _gitlab_merge_request,
    "Note Hook": _gitlab_note,
}


def _gitlab_delivery_id(headers: dict[str, str], body: bytes) -> str:
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


def parse_gitlab(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The Delivery a (verified) GitLab webhook means; unknown hooks are accepted and ignored, not errors."""
    h = _lower_keys(headers)
    event = _require_header(h, "X-Gitlab-Event")
    p = _Fields(_load_json(body, "the webhook body"), f"{event} payload")
    handler = _GITLAB.get(event)
    outcome = handler(p) if handler is not None else _Ignore(f"unsupported event {event!r}")
    action = _peek_str(p, "object_attributes.action")
    if isinstance(outcome, _Ignore):
        return Delivery(
            "gitlab",
            _gitlab_delivery_id(h, body),
            event,
            action,
            _peek_str(p, "project.path_with_namespace") or "",
            None,
            None,
            outcome.reason,
        )
    return Delivery("gitlab", _gitlab_delivery_id(h, body), event, action, outcome.repository, None, outcome)


def _peek_str(p: _Fields, path: str) -> str | None:
    found = p.peek(path)
    return found if isinstance(found, str) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
