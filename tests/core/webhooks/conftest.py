"""What the webhook tests share: the real GitHub payload files, and how a refusal is checked."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fasttrack_gitops.core.webhooks import WebhookError


@pytest.fixture
def hooks(contracts: Path) -> Path:
    return contracts / "github-webhooks"


def load(hooks: Path, name: str) -> dict:
    return json.loads((hooks / name).read_text())


def refused(status: int, call, *args) -> str:
    with pytest.raises(WebhookError) as caught:
        call(*args)
    assert caught.value.status == status, str(caught.value)
    return str(caught.value)


def on_a_pull_request(payload: dict) -> dict:
    payload = copy.deepcopy(payload)
    number = payload["issue"]["number"]
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/Codertocat/Hello-World/pulls/{number}"}
    return payload
