"""The daemon's own log never shows a secret: a canary in every secret slot, every path that logs, then read back.

A real `fasttrack-gitops serve` process (tests/daemon/recovery_test.py's
`Served`) gets a distinct canary value in each secret it reads: the webhook
secret, the API token, the GitHub token, the Slack bot token, the Backend.AI
keys, a task's FTG_SECRET_*, and a token in a remote repository's URL. It is
then driven through what logs: a webhook with a bad signature, an API call
with a wrong token, a job whose task prints its secret and fails, GitHub and
Slack (the contract-checking servers of tests/engine/reporters) answering
errors that quote the token they were sent, and a remote repository that
cannot be fetched. Its stderr must hold no canary, and `***` where each would
have been. `serve --check` prints none either.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import console_script, git
from daemon.conftest import commit_file, free_port, push_payload, signed
from daemon.recovery_test import Served
from engine.reporters.contract_server import Answer
from engine.reporters.github_test import PLAIN_TOKEN, Clock, FakeGitHub
from engine.reporters.slack_test import TOKEN as SLACK_TOKEN
from engine.reporters.slack_test import FakeSlack

pytestmark = pytest.mark.skipif(os.name != "posix", reason="daemon processes and local tasks run POSIX shells")

PATIENCE = 60.0  # seconds any one wait may take before the test fails

# Each slot the daemon reads a secret from, with the canary put there (the GitHub and Slack ones are what the
# contract servers accept).
CANARIES = {
    "FTG_TEST_WEBHOOK_SECRET": "canary-webhook-secret-3d7b91",
    "FTG_TEST_API_TOKEN": "canary-api-token-51c2e8",
    "FTG_TEST_GH_TOKEN": PLAIN_TOKEN,
    "FTG_TEST_SLACK_TOKEN": SLACK_TOKEN,
    "FTG_TEST_BACKEND_ACCESS_KEY": "AKCANARYACCESS5e0f17",
    "FTG_TEST_BACKEND_SECRET_KEY": "canary-backendai-secret-8e44c0",
    "FTG_TEST_GIT_TOKEN": "canary-git-token-6f0d42",
    "FTG_SECRET_LEAKY": "canary-task-secret-a1b2c3",
}
WEBHOOK_SECRET = CANARIES["FTG_TEST_WEBHOOK_SECRET"]
API_TOKEN = CANARIES["FTG_TEST_API_TOKEN"]

PIPELINE = """\
version: "26.4.4"
name: leaky
notify:
  slack: {channel: "#ml-pipelines", on: [start, failure]}
environment:
  envs: {LEAKY: "${{ secrets.LEAKY }}"}
tasks:
  - name: train
    command: echo "the secret is $LEAKY"; exit 3
"""


def eventually(predicate: Callable, what: Callable[[], str], timeout: float = PATIENCE):
    """Poll until predicate() is truthy (its value); fail after timeout seconds, saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what()}")
        time.sleep(0.1)
    return value


@pytest.fixture
def services(contracts):
    """GitHub and Slack on 127.0.0.1, each answering every report with an error that quotes the token it got."""
    github = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), Clock())
    github.server.fail_next(
        "POST",
        r"/repos/.*/check-runs",
        Answer(400, {"message": f"Bad credentials: the token {PLAIN_TOKEN} was revoked"}),
        times=1000,
    )
    slack = FakeSlack(contracts)
    slack.server.fail_next(
        "POST",
        r"/api/chat\.postMessage",
        Answer(200, {"ok": False, "error": f"token_revoked:{SLACK_TOKEN}"}),
        times=1000,
    )
    with github.server.serving(), slack.server.serving():
        yield github, slack


def write_config(tmp_path: Path, repo: Path, github: FakeGitHub, slack: FakeSlack, port: int) -> Path:
    """A configuration that reads a secret in every slot there is (secret values only through the environment)."""
    config = tmp_path / "ftg.yaml"
    config.write_text(
        f"""\
state_dir: {tmp_path / "state"}
listen: 127.0.0.1:{port}
shutdown_grace: 2s
api_token_env: FTG_TEST_API_TOKEN
github:
  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET
  token_env: FTG_TEST_GH_TOKEN
  api_url: {github.url}
slack:
  bot_token_env: FTG_TEST_SLACK_TOKEN
  default_channel: "#general"
  api_url: {slack.api_url}
backendai:
  endpoint: http://127.0.0.1:{free_port()}
  access_key_env: FTG_TEST_BACKEND_ACCESS_KEY
  secret_key_env: FTG_TEST_BACKEND_SECRET_KEY
repositories:
  - name: acme/pipes
    url: {repo}
    provider: github
    branches: [main]
    watch: false
  - name: acme/remote
    url: http://${{FTG_TEST_GIT_TOKEN}}@127.0.0.1:{free_port()}/remote.git
    provider: github
    poll_interval: 1s
"""
    )
    return config


def environment() -> dict[str, str]:
    return {**os.environ, **CANARIES, "FTG_BWRAP": "0"}


def leaked(text: str) -> list[str]:
    """The slots whose canary the text shows."""
    return [slot for slot, canary in CANARIES.items() if canary in text]


def test_the_daemons_log_shows_no_secret_on_any_path_that_logs(tmp_path, source_repo, contracts, services):
    github, slack = services
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/leaky.yaml", PIPELINE)
    port = free_port()
    served = Served(
        write_config(tmp_path, source_repo, github, slack, port), port, tmp_path / "daemon.log", environment()
    )
    try:
        served.start()
        body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}

        forged = httpx.post(
            served.url + "/webhooks/github",
            content=body,
            headers={**headers, "X-GitHub-Delivery": "d-forged", "X-Hub-Signature-256": signed(body, "not-it")},
            timeout=PATIENCE,
        )
        assert forged.status_code == 401, forged.text
        wrong = httpx.post(
            served.url + "/api/trigger",
            json={"repository": "acme/pipes", "pipeline": "leaky"},
            headers={"Authorization": f"Bearer not-{API_TOKEN}"},
            timeout=PATIENCE,
        )
        assert wrong.status_code == 401, wrong.text
        pushed = httpx.post(
            served.url + "/webhooks/github",
            content=body,
            headers={**headers, "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": signed(body, WEBHOOK_SECRET)},
            timeout=PATIENCE,
        )
        assert pushed.status_code == 202, pushed.text
        (job,) = [j for j in pushed.json()["jobs"] if served.view(j).job.pipeline == "leaky"]
        remote = httpx.post(
            served.url + "/api/trigger",
            json={"repository": "acme/remote", "pipeline": "leaky", "ref": "main"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=PATIENCE,
        )
        assert remote.status_code == 422 and "***@127.0.0.1" in remote.json()["note"], remote.text
        assert leaked(remote.text) == []

        eventually(
            lambda: served.view(job).status.value == "failed",
            lambda: f"the job to fail: {served.view(job)}\n{served.log()}",
        )
        gave_up = [f"reporter github, job {job}: ", f"reporter slack, job {job}: "]
        eventually(
            lambda: all(line in served.log() for line in gave_up) and "acme/remote: cannot reach" in served.log(),
            lambda: f"the reporters to give up and a fetch to fail; the log:\n{served.log()}",
        )
        assert served.terminate() == 0
    finally:
        served.stop()

    log = served.output.read_text(errors="replace")
    assert leaked(log) == [], log
    lines = log.splitlines()
    github_line = next(line for line in lines if gave_up[0] in line)
    assert "Bad credentials: the token *** was revoked" in github_line
    slack_line = next(line for line in lines if gave_up[1] in line)
    assert "token_revoked:***" in slack_line
    fetch_line = next(line for line in lines if "acme/remote: cannot reach" in line)
    assert "http://***@127.0.0.1:" in fetch_line
    attempt_log = (tmp_path / "state" / "logs" / job / "train" / "1.log").read_text()
    assert attempt_log == "the secret is ***\n"
    # what left for GitHub and Slack: the reports were refused, but what they said was masked too
    sent = "\n".join(r.body.decode(errors="replace") for s in (github, slack) for r in s.server.requests)
    assert leaked(sent) == [] and slack.server.requests and github.server.requests


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_serve_check_prints_no_secret(tmp_path, source_repo, services, fmt):
    github, slack = services
    config = write_config(tmp_path, source_repo, github, slack, free_port())

    checked = subprocess.run(
        [console_script(), "serve", "--config", str(config), "--check", "--format", fmt],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )

    assert checked.returncode == 0, checked.stderr
    assert leaked(checked.stdout + checked.stderr) == [], checked.stdout + checked.stderr
    if fmt == "json":
        record = json.loads(checked.stdout)
        assert record["integrations"] == {"github": True, "gitlab": False, "slack": True, "backendai": True}
        assert record["api_token"] is True
        remote = next(r for r in record["repositories"] if r["name"] == "acme/remote")
        assert remote["url"].startswith("http://***@127.0.0.1:") and remote["url"].endswith("/remote.git")
