"""GitHub deliveries, fed the real payload files from tests/data/contracts and signed the way GitHub signs them."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlencode

import jsonschema
import pytest
from core.webhooks.conftest import load, on_a_pull_request, refused

from fasttrack_gitops.core.events import ZERO_COMMIT, Comment, PullRequest, Push, Rerequest
from fasttrack_gitops.core.webhooks import DELETED_FORK, Delivery
from fasttrack_gitops.core.webhooks.github import parse_github, verify_github

SECRET = "s3cret-for-tests"
SHA = "5bd5f196a46b8222fb7484f05faba41a73cf34bd"


def sign(body: bytes, secret: str = SECRET) -> str:
    """What GitHub puts in X-Hub-Signature-256, computed here independently of the code under test."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    event: str,
    payload: dict | bytes,
    *,
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    content_type: str = "application/json",
) -> Delivery:
    """Sign, verify and parse, as the daemon's HTTP layer does."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": content_type,
        "X-Hub-Signature-256": sign(body),
    }
    verify_github(body, headers["X-Hub-Signature-256"], SECRET)
    return parse_github(headers, body)


# ---------------------------------------------------------------- the fixtures are real


def example_files(contracts_dir: Path) -> list[tuple[str, str, list[str]]]:
    index = json.loads((contracts_dir / "github-webhooks" / "index.json").read_text())
    return [
        (example["file"], event["schema"], example["knownMismatches"].get(event["schema"], []))
        for event in index["events"]
        for example in event["examples"]
    ]


def test_every_github_payload_still_validates_against_its_octokit_schema(hooks: Path, contracts: Path):
    cases = example_files(contracts)
    assert {case[0] for case in cases} >= {
        "push.payload.json",
        "push.with-installation.payload.json",
        "pull_request.opened.payload.json",
        "pull_request.synchronize.payload.json",
        "issue_comment.created.payload.json",
        "issue_comment.created.with-installation.payload.json",
        "check_run.rerequested.payload.json",
        "check_run.requested_action.payload.json",
        "check_suite.rerequested.payload.json",
    }
    for payload_file, schema_file, known in cases:
        validator = jsonschema.Draft7Validator(load(hooks, schema_file))
        found = sorted(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(load(hooks, payload_file))
        )
        assert found == sorted(known), payload_file  # octokit's own captures: none; GitHub's examples: the recorded few


# ---------------------------------------------------------------- signatures


def test_githubs_documented_test_vector_verifies():
    # docs.github.com "Validating webhook deliveries": this secret and body give this signature
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify_github(b"Hello, World!", signature, "It's a Secret to Everybody")


def test_a_real_payload_signed_like_github_verifies(hooks: Path):
    body = (hooks / "push.payload.json").read_bytes()
    verify_github(body, sign(body), SECRET)


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_signature_is_refused(header):
    assert "X-Hub-Signature-256 is missing" in refused(401, verify_github, b"{}", header, SECRET)


def test_a_signature_made_with_another_secret_is_refused(hooks: Path):
    body = (hooks / "push.payload.json").read_bytes()
    assert "does not match" in refused(401, verify_github, body, sign(body, "other"), SECRET)


def test_the_old_sha1_header_form_is_refused():
    body = b"{}"
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert "sha256=<hex digest>" in refused(401, verify_github, body, sha1, SECRET)


@pytest.mark.parametrize("header", ["sha256=zz" + "0" * 62, "sha256=abc", "sha256=", "sha256"])
def test_a_digest_that_is_not_hex_is_refused(header):
    refused(401, verify_github, b"{}", header, SECRET)


def test_a_tampered_body_is_refused(hooks: Path):
    body = (hooks / "pull_request.opened.payload.json").read_bytes()
    signature = sign(body)
    tampered = body.replace(b'"OWNER"', b'"NONE!"', 1)
    assert tampered != body
    refused(401, verify_github, tampered, signature, SECRET)


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_configured_secret_even_signed_deliveries_are_refused(secret):
    body = b"{}"
    message = refused(401, verify_github, body, sign(body, ""), secret)
    assert message == "no github.webhook_secret_env is configured; webhooks are refused"


def test_refusals_never_show_the_secret_or_the_expected_digest():
    body = b'{"zen": "Keep it logically awesome."}'
    expected = sign(body)[len("sha256=") :]
    for header in (None, "sha1=00", "sha256=nothex", sign(body, "wrong"), sign(body + b" ")):
        message = refused(401, verify_github, body, header, SECRET)
        assert SECRET not in message and expected not in message


# ---------------------------------------------------------------- push


def test_push_of_a_tag_deletion_parses_with_the_zero_commit(hooks: Path):
    delivery = deliver("push", (hooks / "push.payload.json").read_bytes(), delivery="d-1")
    assert delivery == Delivery(
        provider="github",
        id="d-1",
        event="push",
        action=None,
        repository="Codertocat/Hello-World",
        installation_id=None,
        record=Push(
            repository="Codertocat/Hello-World",
            ref="refs/tags/simple-tag",
            before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            after=ZERO_COMMIT,
            forced=False,
            default_branch="master",
            sender="Codertocat",
        ),
    )
    assert delivery.record.deleted


def test_push_with_an_installation_names_it(hooks: Path):
    delivery = deliver("push", (hooks / "push.with-installation.payload.json").read_bytes())
    assert delivery.installation_id == 1
    assert delivery.record.repository == "Codertocat/Hello-World"


def test_forced_push_of_a_branch(hooks: Path):
    payload = load(hooks, "push.payload.json")
    payload.update(ref="refs/heads/main", after=SHA.upper(), deleted=False, forced=True)
    record = deliver("push", payload).record
    assert record == Push(
        repository="Codertocat/Hello-World",
        ref="refs/heads/main",
        before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        after=SHA,
        forced=True,
        default_branch="master",
        sender="Codertocat",
    )
    assert not record.deleted and not record.created


def test_branch_deletion_parses_and_the_daemon_decides(hooks: Path):
    payload = load(hooks, "push.payload.json")
    payload["ref"] = "refs/heads/feature"
    record = deliver("push", payload).record
    assert (record.ref, record.after, record.deleted) == ("refs/heads/feature", ZERO_COMMIT, True)


def test_push_default_branch_falls_back_to_master_branch(hooks: Path):
    payload = load(hooks, "push.payload.json")
    del payload["repository"]["default_branch"]
    payload["repository"]["master_branch"] = "trunk"
    assert deliver("push", payload).record.default_branch == "trunk"


# ---------------------------------------------------------------- pull requests


@pytest.mark.parametrize(
    "name, action",
    [("pull_request.opened.payload.json", "opened"), ("pull_request.synchronize.payload.json", "synchronize")],
)
def test_pull_request(hooks: Path, name: str, action: str):
    payload = load(hooks, name)
    delivery = deliver("pull_request", payload)
    assert (delivery.action, delivery.repository, delivery.installation_id) == (action, "Codertocat/Hello-World", 1)
    assert delivery.record == PullRequest(
        repository="Codertocat/Hello-World",
        action=action,
        number=2,
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        head_ref="changes",
        head_repository="Codertocat/Hello-World",
        base_ref="master",
        base_sha="f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        author="Codertocat",
        author_association="OWNER",
        sender="Codertocat",
    )
    pr = payload["pull_request"]  # the same values, read from the file
    assert (delivery.record.head_sha, delivery.record.base_sha) == (pr["head"]["sha"], pr["base"]["sha"])
    assert not delivery.record.from_fork


def test_every_pull_request_action_parses(hooks: Path):
    payload = load(hooks, "pull_request.opened.payload.json")
    payload["action"] = "labeled"
    delivery = deliver("pull_request", payload)
    assert delivery.record.action == "labeled" and delivery.ignored == ""


def test_pull_request_from_a_fork(hooks: Path):
    payload = load(hooks, "pull_request.opened.payload.json")
    payload["pull_request"]["head"]["repo"]["full_name"] = "forker/Hello-World"
    record = deliver("pull_request", payload).record
    assert record.head_repository == "forker/Hello-World" and record.from_fork


def test_pull_request_whose_fork_was_deleted_is_a_fork(hooks: Path):
    payload = load(hooks, "pull_request.synchronize.payload.json")
    payload["pull_request"]["head"]["repo"] = None
    record = deliver("pull_request", payload).record
    assert record.head_repository == DELETED_FORK and record.from_fork
    assert record.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


# ---------------------------------------------------------------- comments


@pytest.mark.parametrize(
    "name, installation",
    [("issue_comment.created.payload.json", None), ("issue_comment.created.with-installation.payload.json", 1)],
)
def test_new_comment_on_a_pull_request(hooks: Path, name: str, installation):
    delivery = deliver("issue_comment", on_a_pull_request(load(hooks, name)))
    assert delivery.installation_id == installation
    assert delivery.record == Comment(
        repository="Codertocat/Hello-World",
        number=1,
        body="You are totally right! I'll get this fixed right away.",
        author="Codertocat",
        author_association="OWNER",
    )


def test_comment_on_a_plain_issue_is_ignored(hooks: Path):
    delivery = deliver("issue_comment", (hooks / "issue_comment.created.with-installation.payload.json").read_bytes())
    assert delivery.record is None
    assert delivery.ignored == "comment on an issue, not a pull request"
    assert (delivery.action, delivery.repository, delivery.installation_id) == ("created", "Codertocat/Hello-World", 1)


@pytest.mark.parametrize("action", ["edited", "deleted"])
def test_edited_or_deleted_comments_are_ignored(hooks: Path, action: str):
    payload = on_a_pull_request(load(hooks, "issue_comment.created.payload.json"))
    payload["action"] = action
    delivery = deliver("issue_comment", payload)
    assert delivery.record is None and delivery.ignored == f"issue_comment action {action!r} does not trigger"


# ---------------------------------------------------------------- re-runs


def test_check_run_rerequested(hooks: Path):
    delivery = deliver("check_run", (hooks / "check_run.rerequested.payload.json").read_bytes())
    assert (delivery.repository, delivery.installation_id) == ("github/hello-world", 1)
    assert delivery.record == Rerequest(
        repository="github/hello-world",
        head_sha="d6fde92930d4715a2b49857d24b940956b26d2d3",
        head_branch="master",
        check_name="randscape",
        external_id=None,
        failed_only=False,
        sender="octocat",
    )


def test_check_run_rerequested_from_githubs_own_example_keeps_our_external_id(hooks: Path):
    payload = load(hooks, "check_run.rerequested.github-openapi-example-default.payload.json")
    payload["check_run"]["external_id"] = "job-42"
    record = deliver("check_run", payload).record
    assert (record.head_sha, record.head_branch, record.check_name, record.external_id) == (
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "changes",
        "Octocoders-linter",
        "job-42",
    )


def test_the_rerun_failed_button(hooks: Path):
    payload = load(hooks, "check_run.requested_action.payload.json")
    payload["requested_action"]["identifier"] = "rerun-failed"
    delivery = deliver("check_run", payload)
    assert (delivery.action, delivery.installation_id) == ("requested_action", 690857)
    assert delivery.record == Rerequest(
        repository="electron/electron",
        head_sha=SHA,
        head_branch="miniak/event-process-id",
        check_name="API Review",
        external_id=None,
        failed_only=True,
        sender="codebytere",
    )


def test_another_apps_button_is_ignored(hooks: Path):
    delivery = deliver("check_run", (hooks / "check_run.requested_action.payload.json").read_bytes())
    assert delivery.record is None and delivery.ignored == "check_run action button 'lgtm|26764' is not ours"


@pytest.mark.parametrize("action", ["created", "completed"])
def test_our_own_check_runs_echoes_are_ignored(hooks: Path, action: str):
    payload = load(hooks, "check_run.rerequested.payload.json")
    payload["action"] = action
    delivery = deliver("check_run", payload)
    assert delivery.record is None and delivery.ignored == f"check_run action {action!r} does not trigger"


def test_check_suite_rerequested(hooks: Path):
    delivery = deliver("check_suite", (hooks / "check_suite.rerequested.payload.json").read_bytes())
    assert delivery.installation_id == 957387
    assert delivery.record == Rerequest(
        repository="Codertocat/Hello-World",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        head_branch="changes",
        check_name=None,
        sender="octocoders-linter[bot]",
    )


@pytest.mark.parametrize("action", ["requested", "completed"])
def test_other_check_suite_actions_are_ignored(hooks: Path, action: str):
    payload = load(hooks, "check_suite.rerequested.payload.json")
    payload["action"] = action
    assert deliver("check_suite", payload).ignored == f"check_suite action {action!r} does not trigger"


# ---------------------------------------------------------------- ignored events, headers, form bodies


def test_ping_is_accepted_and_ignored():
    payload = {"zen": "Design for failure.", "hook_id": 1, "repository": {"full_name": "acme/models"}}
    delivery = deliver("ping", payload)
    assert (delivery.record, delivery.ignored, delivery.repository) == (None, "ping", "acme/models")


def test_an_unknown_event_is_ignored_not_refused():
    payload = {"action": "created", "repository": ["not", "an", "object"], "installation": {"id": "x"}}
    delivery = deliver("star", payload)
    assert delivery.record is None and delivery.ignored == "unsupported event 'star'"
    assert (delivery.action, delivery.repository, delivery.installation_id) == ("created", "", None)


def test_header_names_are_case_insensitive(hooks: Path):
    body = (hooks / "push.payload.json").read_bytes()
    delivery = parse_github({"x-github-event": "push", "X-GITHUB-DELIVERY": "abc"}, body)
    assert (delivery.event, delivery.id, delivery.record.ref) == ("push", "abc", "refs/tags/simple-tag")


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_missing_github_header_is_malformed(missing: str):
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "abc"}
    del headers[missing]
    assert missing in refused(400, parse_github, headers, b"{}")


def test_form_encoded_delivery_parses_like_json(hooks: Path):
    raw = (hooks / "pull_request.opened.payload.json").read_text()
    form = urlencode({"payload": raw}).encode()
    as_form = deliver("pull_request", form, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert as_form == deliver("pull_request", raw.encode())


def test_form_encoded_comment_with_non_ascii_text(hooks: Path):
    payload = on_a_pull_request(load(hooks, "issue_comment.created.payload.json"))
    payload["comment"]["body"] = "/fasttrack run 학습 🚀"
    form = urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()
    assert deliver("issue_comment", form, content_type="application/x-www-form-urlencoded").record.body == (
        "/fasttrack run 학습 🚀"
    )


def test_form_without_a_payload_field_is_malformed():
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "abc",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert "'payload'" in refused(400, parse_github, headers, b"other=1")
    assert "malformed" in refused(400, parse_github, headers, "payload=é".encode())
    assert "malformed" in refused(400, parse_github, headers, b"payload=%FF")


def test_a_burst_of_the_same_body_parses_every_time(hooks: Path):
    body = (hooks / "push.with-installation.payload.json").read_bytes()
    deliveries = [parse_github({"X-GitHub-Event": "push", "X-GitHub-Delivery": str(i)}, body) for i in range(10_000)]
    assert len({d.id for d in deliveries}) == 10_000
    assert len({d.record for d in deliveries}) == 1


def test_a_delivery_is_frozen(hooks: Path):
    delivery = deliver("push", (hooks / "push.payload.json").read_bytes())
    with pytest.raises(dataclasses.FrozenInstanceError):
        delivery.id = "other"  # type: ignore[misc]
