"""The daemon's API client, against a local server answering as the daemon does (or as something else does).

The whole trigger story with a real daemon is in tests/daemon/http_test.py
(the `trigger` command) and tests/ci/push_test.py (`wait: false`); here,
each way of going wrong and the one line it becomes.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from engine.reporters.contract_server import Answer, ContractServer

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.engine.daemon_client import DaemonError, trigger

REQUEST = dict(repository="acme/ml", pipeline="pipelines/train.yaml", ref="main", request_id="r-1", sender="me")


def daemon(answer: Answer) -> ContractServer:
    server = ContractServer()
    server.route("POST", "/api/trigger", lambda request: answer)
    return server


def test_a_job_made_is_the_answer_with_its_ids_and_the_token_goes_as_bearer():
    server = daemon(Answer(201, {"jobs": ["20240921-062640-abc123"], "note": "manual run of train"}))
    with server.serving():
        triggered = trigger(server.url + "/", api_token="api-token-0042", **REQUEST)
    assert (triggered.made, triggered.jobs, triggered.message) == (
        True,
        ("20240921-062640-abc123",),
        "manual run of train",
    )
    [request] = server.requests
    assert request.json() == REQUEST
    assert request.headers["authorization"] == "Bearer api-token-0042"


def test_no_job_made_is_an_answer_the_caller_judges():
    server = daemon(Answer(422, {"error": "no valid pipeline nope at main;\n  known: train"}))
    with server.serving():
        triggered = trigger(server.url, **REQUEST)
    assert (triggered.made, triggered.jobs) == (False, ())
    assert triggered.message == "no valid pipeline nope at main; known: train"
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    "token, advice",
    [
        (None, "; give the daemon's API token in $FTG_API_TOKEN"),
        ("wrong", "; $FTG_API_TOKEN is not the daemon's API token"),
    ],
)
def test_a_refusal_is_a_usage_error_that_says_how_to_give_the_token(token, advice):
    server = daemon(Answer(401, {"error": "this API needs Authorization: Bearer <api token>"}))
    with server.serving(), pytest.raises(DaemonError) as caught:
        trigger(server.url, api_token=token, **REQUEST)
    assert isinstance(caught.value, UsageError)
    assert str(caught.value) == (
        "the daemon refused to run pipelines/train.yaml of acme/ml (401): this API needs Authorization: "
        f"Bearer <api token>{advice}"
    )
    assert caught.value.answer == {"error": "this API needs Authorization: Bearer <api token>"}


def test_an_answer_that_is_not_the_daemons_says_to_check_the_address():
    server = daemon(Answer(502, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}))
    with server.serving(), pytest.raises(DaemonError) as caught:
        trigger(server.url, where="the daemon-url input", **REQUEST)
    assert str(caught.value) == (
        f"{server.url} answered 502 Bad Gateway without the JSON a fasttrack-gitops daemon answers; is that the "
        "daemon's address? (the daemon-url input)"
    )


def test_no_daemon_listening_is_one_line_naming_the_address():
    with socket.socket() as s:  # a port that was free a moment ago, and nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DaemonError) as caught:
        trigger(url, where="--daemon or $FTG_DAEMON_URL", **REQUEST)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the daemon at {url}: ConnectError")
    assert message.endswith("is `fasttrack-gitops serve` running there? (--daemon or $FTG_DAEMON_URL)")
    assert "\n" not in message


def test_a_daemon_that_does_not_answer_in_time_is_said_so():
    with socket.socket() as s:  # listening, so the connection is made, and never answering
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(DaemonError) as caught:
            trigger(url, timeout=httpx.Timeout(0.2), **REQUEST)
    assert str(caught.value).startswith(f"the daemon at {url} did not answer in time (ReadTimeout)")
