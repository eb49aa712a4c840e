"""Fuzz: GitHub and GitLab webhook deliveries (core/webhooks): signature and token checks, then parsing.

Invariants: any headers and body give a Delivery or a WebhookError with a 4xx status (never a traceback); a
signature check passes only for the right HMAC; the real payloads with values changed still parse or are refused.
Header values are latin-1 text, as an HTTP server decodes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from conftest import DATA
from fuzz.mutations import mangled, mutated
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.webhooks import Delivery, WebhookError
from fasttrack_gitops.core.webhooks.github import parse_github, verify_github
from fasttrack_gitops.core.webhooks.gitlab import parse_gitlab, verify_gitlab

HOOKS = DATA / "contracts" / "github-webhooks"
GITHUB = [(path.name.split(".")[0], json.loads(path.read_text())) for path in sorted(HOOKS.glob("*.payload.json"))]
HEADER = st.text(alphabet=st.characters(max_codepoint=255), max_size=40)
GITLAB_EVENTS = st.sampled_from(["Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook", "System Hook"])


def outcome(parse, headers: dict, body: bytes) -> None:
    try:
        delivery = parse(headers, body)
    except WebhookError as e:
        assert 400 <= e.status < 500 and e.message
    else:
        assert isinstance(delivery, Delivery)


@given(pair=st.sampled_from(GITHUB).flatmap(lambda p: st.tuples(st.just(p[0]), mutated(p[1]))))
def test_a_real_github_payload_with_values_changed_parses_or_is_refused(pair):
    event, payload = pair
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "d1", "Content-Type": "application/json"}
    outcome(parse_github, headers, json.dumps(payload).encode())


@given(
    event=st.sampled_from([e for e, _ in GITHUB]) | HEADER,
    body=st.one_of(st.sampled_from([json.dumps(p).encode() for _, p in GITHUB]).flatmap(mangled), st.binary()),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]) | HEADER,
)
def test_any_github_body_parses_or_is_refused(event, body, content_type):
    outcome(parse_github, {"X-GitHub-Event": event, "X-GitHub-Delivery": "d", "Content-Type": content_type}, body)


@given(
    body=st.binary(max_size=100),
    header=st.none() | HEADER,
    secret=st.sampled_from([None, ""]) | st.text(max_size=20).map("whsec-".__add__),  # distinct: never in a message
)
def test_a_github_signature_passes_only_when_it_is_the_bodys_hmac(body, header, secret):
    right = secret and "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for sent in (header, right):
        try:
            verify_github(body, sent, secret)
        except WebhookError as e:
            assert e.status == 401 and not (secret and secret in e.message)
        else:
            assert secret and sent is not None and sent.strip().lower() == right


@given(
    event=GITLAB_EVENTS | HEADER,
    payload=st.one_of(mutated({"object_kind": "push", "project": {"path_with_namespace": "g/p"}}), st.binary()),
    headers=st.dictionaries(st.sampled_from(["Idempotency-Key", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance"]), HEADER),
)
def test_any_gitlab_delivery_parses_or_is_refused(event, payload, headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    outcome(parse_gitlab, {**headers, "X-Gitlab-Event": event}, body)


@given(sent=st.none() | HEADER, token=st.none() | st.text(max_size=20))
def test_a_gitlab_token_passes_only_when_it_is_the_configured_one(sent, token):
    try:
        verify_gitlab(sent, token)
    except WebhookError as e:
        assert e.status == 401
    else:
        assert token and sent == token
