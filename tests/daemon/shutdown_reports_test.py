"""SIGTERM is not held up by a report service that stopped answering (found by the chaos campaign, tests/chaos).

A real `serve` process reports to the contract-checking Slack of
tests/engine/reporters, which holds every answer past the client's 30 s
timeout. Before the fix the stopping daemon waited for the request in
flight to time out (30 s per request, whatever shutdown_grace said); now it
gives the reporters a moment after the drain's last flush, then leaves what
they still owe in the outbox for the next start.
"""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from conftest import wait_until
from daemon.conftest import SECRET, commit_file, free_port, github_headers, pipeline_text, push_payload
from daemon.recovery_test import Served
from engine.reporters.contract_server import Answer
from engine.reporters.slack_test import TOKEN as SLACK_TOKEN
from engine.reporters.slack_test import FakeSlack

pytestmark = pytest.mark.skipif(os.name != "posix", reason="a daemon process and SIGTERM")

STOPS_WITHIN = 25.0  # seconds: shutdown_grace 1 s, the last flush 10 s, the reporters' moment; a held answer is 30+


def test_sigterm_does_not_wait_out_a_slack_request_that_hangs(tmp_path, source_repo, contracts):
    slack = FakeSlack(contracts)
    slack.server.fail_for(
        "POST", r"/api/chat\.postMessage", Answer(200, {"ok": True}, delay=60), seconds=600
    )  # no answer within the reporter's 30 s timeout
    after = commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline_text(extra='notify:\n  slack: {channel: "#ml-pipelines", on: [start]}\n'),
        "notify",
    )
    with slack.server.serving():
        port = free_port()
        config = tmp_path / "ftg.yaml"
        config.write_text(
            f"state_dir: {tmp_path / 'state'}\nlisten: 127.0.0.1:{port}\nshutdown_grace: 1s\n"
            "github: {webhook_secret_env: FTG_TEST_WEBHOOK_SECRET}\n"
            f'slack: {{bot_token_env: FTG_TEST_SLACK_TOKEN, default_channel: "#ml-pipelines", api_url: {slack.api_url}}}\n'
            f"repositories:\n  - {{name: acme/pipes, url: {source_repo}, provider: github, watch: false}}\n"
        )
        env = {**os.environ, "FTG_TEST_WEBHOOK_SECRET": SECRET, "FTG_TEST_SLACK_TOKEN": SLACK_TOKEN, "FTG_BWRAP": "0"}
        daemon = Served(config, port, tmp_path / "daemon.log", env).start()
        try:
            body = json.dumps(push_payload(contracts, ref="refs/heads/main", before="0" * 40, after=after)).encode()
            answer = httpx.post(
                daemon.url + "/webhooks/github", content=body, headers=github_headers(body, "push", "d-1"), timeout=30
            )
            assert answer.status_code == 202, answer.text
            wait_until(lambda: slack.server.calls("POST", r"/api/chat\.postMessage"), what="a Slack post in flight")
            stopping = time.monotonic()
            code = daemon.terminate(timeout=60)
            took = time.monotonic() - stopping
        finally:
            daemon.stop()
    assert code == 0
    assert took < STOPS_WITHIN, f"the daemon took {took:.1f}s to stop; its output:\n{daemon.log()}"
