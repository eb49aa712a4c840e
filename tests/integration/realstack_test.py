"""Our Backend.AI client against a REAL Backend.AI 23.09 manager (scripts/realstack).

Skipped unless FTG_REALSTACK=1 and BACKEND_ENDPOINT / _ACCESS_KEY / _SECRET_KEY are set:

    eval "$(scripts/realstack-env.sh)" && FTG_REALSTACK=1 .venv/bin/python -m pytest tests/integration

What the emulator tests cannot prove, these do: that the unmodified manager accepts
our signature (its `sign_request` recomputes it from the raw request), and that its
real refusals map to our errors. On 23.09 only handlers marked `auth_required`
check the Date and the signature at all; `GET /` and `GET /config/resource-slots`
are public. So the signing tests use `/auth` and `/auth/test` (the manager's
own "am I authorized" echo handler, which answers {"authorized": "yes"} only to
a request it verified), and the date test too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials


def run(client: Client, call):
    """call(client) -> a coroutine; run it in a fresh event loop with the client open, return its result."""

    async def main():
        async with client:
            return await call(client)

    return asyncio.run(main())


def shifted_clock(minutes: float):
    """A clock `minutes` ahead of the real one (behind when negative)."""
    return lambda: datetime.now(timezone.utc) + timedelta(minutes=minutes)


def wrong_secret(credentials: Credentials) -> str:
    """The real secret with its last character changed: same length and alphabet, another key."""
    real = credentials.secret_key.reveal()
    return real[:-1] + ("A" if real[-1] != "A" else "B")


def assert_no_secret(texts, *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- negotiation -------------------------------------------------------------------------------------


def test_negotiate_picks_v7_and_reports_the_23_09_manager(make_client, credentials):
    client = make_client()
    server = run(client, lambda c: c.negotiate())
    assert server.endpoint == credentials.endpoint
    assert server.version == "v7.20230615"  # the manager's latest API, from GET /
    assert server.api_version == "v7.20230615"  # what we send
    assert re.fullmatch(r"23\.09\.\d+", server.manager), server.manager
    assert client.server == server


# -- signed requests the manager verifies ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth", "/auth/test"])
@pytest.mark.parametrize(
    "echo",
    [
        "hello",
        "a b/ü&x=1?#%",  # the query is part of the signed request target, percent-encoded as sent
        "~!*'()",
    ],
)
def test_a_signed_get_is_authorized(make_client, credentials, path, echo):
    async def call(client: Client):
        response = await client.send("GET", path, params={"echo": echo})
        return response.request, response.json()

    request, answer = run(make_client(), call)
    assert answer == {"authorized": "yes", "echo": echo}
    # What went over the wire is what §1 says a 23.09 manager verifies.
    assert request.headers["X-BackendAI-Version"] == "v7.20230615"
    assert request.headers["Content-Type"] == "text/plain"
    assert request.headers["Host"] == credentials.endpoint.split("://", 1)[1]
    assert datetime.fromisoformat(request.headers["Date"]).utcoffset() == timedelta(0)
    assert re.fullmatch(
        rf"BackendAI signMethod=HMAC-SHA256, credential={re.escape(credentials.access_key)}:[0-9a-f]{{64}}",
        request.headers["Authorization"],
    )


def test_a_signed_post_with_a_json_body_is_authorized(make_client):
    async def call(client: Client):
        response = await client.send("POST", "/auth/test", json={"echo": "posted ü"})
        return response.request, response.json()

    request, answer = run(make_client(), call)
    assert answer == {"authorized": "yes", "echo": "posted ü"}
    assert request.headers["Content-Type"] == "application/json"  # signed as content-type:application/json


def test_the_resource_slots_include_cpu_and_mem(make_client):
    async def call(client: Client):
        slots = await client.request("GET", "/config/resource-slots")
        # Public on 23.09, so it proves nothing about signing: check the same client is authorized too.
        whoami = await client.request("GET", "/auth/test", params={"echo": "slots"})
        return slots, whoami

    slots, whoami = run(make_client(), call)
    assert slots["cpu"] == "count"
    assert slots["mem"] == "bytes"
    assert whoami["authorized"] == "yes"


def test_the_auth_handler_really_refuses_an_unsigned_request(credentials):
    """The control for the tests above: /auth/test does not answer 'authorized' to just anyone."""

    # Everything our signer sends but the Authorization header (without a Date, 23.09 answers
    # 400 "Date/time sync error" before it looks for a signature).
    headers = {
        "X-BackendAI-Version": "v7.20230615",
        "Content-Type": "text/plain",
        "Date": datetime.now(timezone.utc).isoformat(),
    }

    async def call():
        async with httpx.AsyncClient(base_url=credentials.endpoint, trust_env=False) as http:
            return await http.get("/auth/test", params={"echo": "x"}, headers=headers)

    response = asyncio.run(call())
    assert response.status_code == 401, response.text
    assert response.json()["msg"] == "Unauthorized access"
    assert '"authorized": "yes"' not in response.text


# -- refusals mapped to our errors -------------------------------------------------------------------


def test_a_wrong_secret_is_an_auth_error_naming_the_access_key_not_the_secret(make_client, credentials, caplog):
    caplog.set_level(logging.DEBUG)
    bad = wrong_secret(credentials)
    client = make_client(Credentials(credentials.endpoint, credentials.access_key, bad))
    with pytest.raises(errors.AuthError) as caught:
        run(client, lambda c: c.request("GET", "/auth/test", params={"echo": "x"}))

    error = caught.value
    message = str(error)
    assert error.status == 401
    assert error.slug == "auth-failed"
    assert error.problem.msg == "Signature mismatch"  # 23.09's words for a wrong secret
    assert credentials.access_key in message
    assert "BACKEND_SECRET_KEY" in message  # says which setting to fix
    assert_no_secret(
        [message, repr(error), repr(error.args), repr(client), caplog.text], bad, credentials.secret_key.reveal()
    )
    assert client.calls[("GET", "/auth/test")] == 1  # a refusal is not retried


def test_an_unknown_access_key_is_an_auth_error_naming_it(make_client, credentials):
    unknown = "AKIANOSUCHKEY0000000"
    client = make_client(Credentials(credentials.endpoint, unknown, credentials.secret_key))
    with pytest.raises(errors.AuthError) as caught:
        run(client, lambda c: c.request("GET", "/auth/test", params={"echo": "x"}))

    assert caught.value.status == 401
    assert caught.value.problem.msg == "Access key not found"
    assert unknown in str(caught.value) and "BACKEND_ACCESS_KEY" in str(caught.value)
    assert_no_secret([str(caught.value), repr(caught.value.args)], credentials.secret_key.reveal())


@pytest.mark.parametrize("minutes", [20, -20])
def test_a_date_20_minutes_off_is_a_clock_skew_error(make_client, credentials, minutes):
    client = make_client(clock=shifted_clock(minutes))
    with pytest.raises(errors.ClockSkewError) as caught:
        run(client, lambda c: c.request("GET", "/auth/test", params={"echo": "x"}))

    error = caught.value
    assert error.status == 400
    assert error.slug == "invalid-auth-params"
    # The manager's own Date header tells us how far apart we are: ours is `minutes` ahead,
    # so the manager's clock is `minutes` behind (to within its one-second resolution).
    assert error.skew is not None
    assert abs(error.skew + timedelta(minutes=minutes)) < timedelta(seconds=5)
    assert "20 minutes apart" in str(error)
    assert ("behind" if minutes > 0 else "ahead of") in str(error)
    assert_no_secret([str(error), repr(error.args)], credentials.secret_key.reveal())
    assert client.calls[("GET", "/auth/test")] == 1


@pytest.mark.parametrize("minutes", [10, -10])
def test_a_date_10_minutes_off_is_still_accepted(make_client, minutes):
    """The other side of the 15-minute window: a slow clock is not mistaken for skew."""
    client = make_client(clock=shifted_clock(minutes))
    answer = run(client, lambda c: c.request("GET", "/auth/test", params={"echo": "x"}))
    assert answer["authorized"] == "yes"


def test_doctor_passes_on_a_pipeline_that_fits_the_real_cluster(capsys, tmp_path):
    """cpu and mem are what the real stack offers: every check passes; a GPU request is named as missing."""
    import json

    from fasttrack_gitops.cli import main

    pipeline = tmp_path / "pipelines" / "p.yaml"
    pipeline.parent.mkdir()
    pipeline.write_text(
        'version: "23.09"\nname: fits\ntasks:\n  - name: a\n    command: "true"\n    resources: {cpu: 1, mem: 512m}\n'
    )
    assert main(["doctor", str(tmp_path), "--format", "json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert [c["ok"] for c in checks] == [True] * 6
    assert "23.09" in checks[1]["detail"]

    pipeline.write_text(pipeline.read_text().replace("mem: 512m}", "mem: 512m, cuda.shares: 1}"))
    assert main(["doctor", str(tmp_path), "--format", "json"]) == 1
    slots = next(c for c in json.loads(capsys.readouterr().out) if c["name"] == "resource slots")
    assert slots["ok"] is False and "missing cuda.shares" in slots["detail"]
