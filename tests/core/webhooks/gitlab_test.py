"""GitLab deliveries, fed the documented examples from tests/data/contracts/gitlab.json."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from core.webhooks.conftest import refused

from fasttrack_gitops.core.events import ZERO_COMMIT, Comment, PullRequest, Push
from fasttrack_gitops.core.webhooks import Delivery
from fasttrack_gitops.core.webhooks.gitlab import parse_gitlab, verify_gitlab

TOKEN = "gitlab-token-for-tests"


@pytest.fixture
def gitlab_hooks(contracts: Path) -> dict:
    return json.loads((contracts / "gitlab.json").read_text())["webhooks"]


def gitlab(event: str, payload: dict, **headers: str) -> Delivery:
    verify_gitlab(TOKEN, TOKEN)
    return parse_gitlab({"X-Gitlab-Event": event, "X-Gitlab-Token": TOKEN, **headers}, json.dumps(payload).encode())


def test_the_gitlab_examples_still_validate_against_their_schemas(gitlab_hooks: dict):
    for hook in gitlab_hooks.values():
        jsonschema.Draft202012Validator(hook["schema"]).validate(hook["example"])


# ---------------------------------------------------------------- tokens


def test_gitlab_token_that_matches_is_accepted():
    verify_gitlab(TOKEN, TOKEN)


@pytest.mark.parametrize("header, word", [(None, "missing"), ("", "missing"), ("nope", "does not match")])
def test_gitlab_token_missing_or_wrong_is_refused(header, word):
    message = refused(401, verify_gitlab, header, TOKEN)
    assert word in message and TOKEN not in message


@pytest.mark.parametrize("token", [None, ""])
def test_gitlab_without_a_configured_token_refuses_everything(token):
    assert "webhooks are refused" in refused(401, verify_gitlab, "anything", token)


# ---------------------------------------------------------------- hooks


def test_gitlab_push(gitlab_hooks: dict):
    hook = gitlab_hooks["push"]
    delivery = gitlab(hook["header"]["X-Gitlab-Event"], hook["example"])
    assert (delivery.provider, delivery.event, delivery.action, delivery.installation_id) == (
        "gitlab",
        "Push Hook",
        None,
        None,
    )
    assert delivery.record == Push(
        repository="mike/diaspora",
        ref="refs/heads/master",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        forced=False,
        default_branch="master",
        sender="jsmith",
    )


def test_gitlab_tag_push_and_branch_deletion(gitlab_hooks: dict):
    payload = copy.deepcopy(gitlab_hooks["push"]["example"])
    payload.update(object_kind="tag_push", ref="refs/tags/v1.0", after=ZERO_COMMIT, checkout_sha=None, commits=[])
    record = gitlab("Tag Push Hook", payload).record
    assert (record.ref, record.deleted) == ("refs/tags/v1.0", True)


def test_gitlab_merge_request_opened(gitlab_hooks: dict):
    payload = gitlab_hooks["merge_request"]["example"]
    delivery = gitlab("Merge Request Hook", payload)
    assert (delivery.action, delivery.repository) == ("open", "gitlabhq/gitlab-test")
    assert delivery.record == PullRequest(
        repository="gitlabhq/gitlab-test",
        action="opened",
        number=1,
        head_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        head_ref="ms-viewport",
        head_repository="awesome_space/awesome_project",
        base_ref="master",
        author="root",
        author_association="",
        sender="root",
    )
    assert delivery.record.from_fork  # the documented example's source project is not its project


def test_gitlab_merge_request_from_the_same_project_is_not_a_fork(gitlab_hooks: dict):
    payload = copy.deepcopy(gitlab_hooks["merge_request"]["example"])
    payload["object_attributes"]["source"]["path_with_namespace"] = payload["project"]["path_with_namespace"]
    assert not gitlab("Merge Request Hook", payload).record.from_fork


@pytest.mark.parametrize(
    "action, oldrev, expected",
    [
        ("update", "95790bf891e76fee5e1747ab589903a6a1f80f22", "synchronize"),
        ("update", None, "edited"),
        ("reopen", None, "reopened"),
        ("close", None, "closed"),
        ("merge", None, "merged"),
        ("approved", None, "approved"),
    ],
)
def test_gitlab_merge_request_actions_speak_githubs_words(gitlab_hooks: dict, action, oldrev, expected):
    payload = copy.deepcopy(gitlab_hooks["merge_request"]["example"])
    payload["object_attributes"]["action"] = action
    if oldrev:
        payload["object_attributes"]["oldrev"] = oldrev
    delivery = gitlab("Merge Request Hook", payload)
    assert (delivery.action, delivery.record.action) == (action, expected)


def test_gitlab_merge_request_without_its_last_commit_is_malformed(gitlab_hooks: dict):
    payload = copy.deepcopy(gitlab_hooks["merge_request"]["example"])
    del payload["object_attributes"]["last_commit"]
    message = refused(400, parse_gitlab, {"X-Gitlab-Event": "Merge Request Hook"}, json.dumps(payload).encode())
    assert message == "Merge Request Hook payload: 'object_attributes.last_commit.id' is missing"


def note(noteable_type: str = "MergeRequest", **attributes) -> dict:
    """A Note Hook as GitLab's "Comment events" docs show it (the contracts folder has no Note Hook example)."""
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project_id": 5,
        "project": {"id": 5, "path_with_namespace": "gitlabhq/gitlab-test", "default_branch": "master"},
        "object_attributes": {
            "id": 1244,
            "note": "/fasttrack run train",
            "noteable_type": noteable_type,
            "system": False,
            "action": "create",
            **attributes,
        },
        "merge_request": {"id": 7, "iid": 1, "source_branch": "ms-viewport", "target_branch": "master"},
    }


def test_gitlab_comment_on_a_merge_request():
    delivery = gitlab("Note Hook", note())
    assert delivery.record == Comment(
        repository="gitlabhq/gitlab-test", number=1, body="/fasttrack run train", author="root", author_association=""
    )


@pytest.mark.parametrize(
    "payload, reason",
    [
        (note("Issue"), "note on 'Issue', not on a merge request"),
        (note(action="update"), "note action 'update' does not trigger"),
        (note(system=True), "system note"),
    ],
)
def test_gitlab_comments_that_do_not_trigger(payload, reason):
    delivery = gitlab("Note Hook", payload)
    assert (delivery.record, delivery.ignored, delivery.repository) == (None, reason, "gitlabhq/gitlab-test")


def test_gitlab_unknown_hook_is_ignored():
    delivery = gitlab("Pipeline Hook", {"object_kind": "pipeline", "project": {"path_with_namespace": "a/b"}})
    assert delivery.record is None and delivery.ignored == "unsupported event 'Pipeline Hook'"
    assert delivery.repository == "a/b"


def test_gitlab_without_an_event_header_is_malformed():
    assert "X-Gitlab-Event" in refused(400, parse_gitlab, {"X-Gitlab-Token": TOKEN}, b"{}")


def test_gitlab_delivery_id_prefers_the_idempotency_key(gitlab_hooks: dict):
    body = json.dumps(gitlab_hooks["push"]["example"]).encode()
    both = {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "key-1", "X-Gitlab-Webhook-UUID": "uuid-1"}
    assert parse_gitlab(both, body).id == "key-1"
    assert parse_gitlab({"X-Gitlab-Event": "Push Hook", "x-gitlab-webhook-uuid": "uuid-1"}, body).id == "uuid-1"
    assert parse_gitlab({"X-Gitlab-Event": "Push Hook"}, body).id == hashlib.sha256(body).hexdigest()


def test_gitlab_event_uuid_is_not_a_delivery_id(gitlab_hooks: dict):
    # One push of two branches: two Push Hooks sharing one recursion-detection X-Gitlab-Event-UUID.
    shared = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "same-request"}
    main = gitlab_hooks["push"]["example"]
    other = {**main, "ref": "refs/heads/other"}
    ids = {parse_gitlab(shared, json.dumps(p).encode()).id for p in (main, other)}
    assert len(ids) == 2
