"""A payload of the wrong shape is refused with a message that names the field (read through GitHub's parser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core.webhooks.conftest import load, on_a_pull_request, refused

from fasttrack_gitops.core.webhooks.github import parse_github


def malformed(event: str, body: bytes) -> str:
    return refused(400, parse_github, {"X-GitHub-Event": event, "X-GitHub-Delivery": "abc"}, body)


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"ref": ', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'"push"', "must be a JSON object, not a string"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_bodies_that_are_not_a_json_object(body: bytes, words: str):
    assert words in malformed("push", body)


def test_push_without_after(hooks: Path):
    payload = load(hooks, "push.payload.json")
    del payload["after"]
    assert malformed("push", json.dumps(payload).encode()) == "push payload: 'after' is missing"


def test_push_without_ref(hooks: Path):
    payload = load(hooks, "push.payload.json")
    del payload["ref"]
    assert "'ref' is missing" in malformed("push", json.dumps(payload).encode())


def test_repository_without_full_name(hooks: Path):
    payload = load(hooks, "check_suite.rerequested.payload.json")
    del payload["repository"]["full_name"]
    assert malformed("check_suite", json.dumps(payload).encode()) == (
        "check_suite payload: 'repository.full_name' is missing"
    )


@pytest.mark.parametrize(
    "name, event, change, words",
    [
        (
            "pull_request.opened.payload.json",
            "pull_request",
            lambda p: p.update(number="2"),
            "'number' must be an integer, not a string",
        ),
        (
            "pull_request.opened.payload.json",
            "pull_request",
            lambda p: p.update(number=True),
            "'number' must be an integer, not a boolean",
        ),
        (
            "pull_request.opened.payload.json",
            "pull_request",
            lambda p: p.update(repository=[]),
            "'repository' must be an object, not an array",
        ),
        (
            "pull_request.opened.payload.json",
            "pull_request",
            lambda p: p["pull_request"]["head"].update(sha=None),
            "'pull_request.head.sha' must be a string, not null",
        ),
        ("push.payload.json", "push", lambda p: p.update(forced="yes"), "'forced' must be a boolean, not a string"),
        ("push.payload.json", "push", lambda p: p.update(before="--upload-pack=evil"), "'before' must be a commit id"),
        (
            "push.payload.json",
            "push",
            lambda p: p.update(installation={"id": "1"}),
            "'installation.id' must be an integer, not a string",
        ),
        (
            "issue_comment.created.payload.json",
            "issue_comment",
            lambda p: p.update(on_a_pull_request(p), comment={"body": 7}),
            "'comment.body' must be a string, not an integer",
        ),
    ],
)
def test_wrong_types_name_the_field(hooks: Path, name, event, change, words):
    payload = load(hooks, name)
    change(payload)
    message = malformed(event, json.dumps(payload).encode())
    assert message.startswith(f"{event} payload: ") and words in message
