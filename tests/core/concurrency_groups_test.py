"""The concurrency group a selection joins: placeholders expanded for each kind of event."""

from __future__ import annotations

import pytest
from core.triggers_test import AFTER, AT, REPO, candidate, pull_request

from fasttrack_gitops.core.concurrency_groups import PLACEHOLDERS, concurrency_group, group_context
from fasttrack_gitops.core.pipeline.model import CONCURRENCY_PLACEHOLDERS
from fasttrack_gitops.core.triggers import Selection, select_pull_request, trigger_key


def test_placeholders_are_the_ones_the_pipeline_check_allows():
    assert tuple(PLACEHOLDERS) == CONCURRENCY_PLACEHOLDERS
    assert all(doc and "\n" not in doc for doc in PLACEHOLDERS.values())


CONTEXT = {
    "ref": "refs/heads/main",
    "branch": "main",
    "pr": "",
    "sha": AFTER,
    "pipeline": "train",
    "repository": REPO,
    "event": "push",
}


@pytest.mark.parametrize(
    "template, expanded",
    [
        ("deploy-${{ branch }}", "deploy-main"),
        ("deploy-${{branch}}", "deploy-main"),
        ("${{  pipeline  }}/${{ ref }}", "train/refs/heads/main"),
        ("${{ repository }}@${{ sha }} (${{ event }})", f"{REPO}@{AFTER} (push)"),
        ("pr-${{ pr }}", "pr-"),  # no value: empty
        ("fixed-name", "fixed-name"),
    ],
)
def test_concurrency_group_expands_placeholders(template, expanded):
    assert concurrency_group(template, CONTEXT) == expanded


def test_concurrency_group_with_a_missing_name_expands_to_empty():
    assert concurrency_group("x-${{ branch }}-${{ pr }}", {"branch": "dev"}) == "x-dev-"


def sel(trigger: dict, name: str = "train") -> Selection:
    return Selection("pipelines/train.yaml", name, trigger, trigger_key(trigger), "why")


@pytest.mark.parametrize(
    "trigger, ref, branch, pr",
    [
        ({"event": "push", "ref": "refs/heads/feature/x"}, "refs/heads/feature/x", "feature/x", ""),
        ({"event": "push", "ref": "refs/tags/v1"}, "refs/tags/v1", "", ""),
        (
            {"event": "pull_request", "number": 12, "head_ref": "feature/x", "base_ref": "main"},
            "refs/pull/12/head",
            "feature/x",
            "12",
        ),
        ({"event": "schedule", "cron": "0 3 * * *", "at": AT}, "", "", ""),
        ({"event": "manual", "ref": "main", "request_id": "r"}, "refs/heads/main", "main", ""),
        ({"event": "manual", "ref": "refs/tags/v2", "request_id": "r"}, "refs/tags/v2", "", ""),
        ({"event": "manual", "ref": AFTER, "request_id": "r"}, "", "", ""),
        ({"event": "rerun", "id": "x", "ref": "refs/heads/dev"}, "refs/heads/dev", "dev", ""),
    ],
)
def test_group_context_for_each_event(trigger, ref, branch, pr):
    context = group_context(sel(trigger), repository=REPO, commit=AFTER)
    assert context == {
        "ref": ref,
        "branch": branch,
        "pr": pr,
        "sha": AFTER,
        "pipeline": "train",
        "repository": REPO,
        "event": trigger["event"],
    }
    assert set(context) == set(CONCURRENCY_PLACEHOLDERS)


def test_a_checked_pipelines_group_expands_for_a_pull_request():
    c = candidate(
        "pull_request",
        name="deploy",
        concurrency={"group": "${{ pipeline }}-pr${{ pr }}-${{ branch }}", "cancel_in_progress": True},
    )
    [selection] = select_pull_request([c], pull_request(), changed=None)
    context = group_context(selection, repository=REPO, commit=AFTER)
    assert concurrency_group(selection.concurrency["group"], context) == "deploy-pr12-feature/x"
