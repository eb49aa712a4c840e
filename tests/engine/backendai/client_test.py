"""The client against the emulator, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, VALID_23_09, Emulator, Reply

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.retry import RetryPolicy


def run(client: Client, *calls):
    """Run coroutines made from the client, in order, in one event loop; the last one's result."""

    async def main():
        async with client:
            result = None
            for call in calls:
                result = await call(client)
            return result

    return asyncio.run(main())


def after(setup, call):
    """A step that changes the emulator (a fault, a version) and then makes `call`."""

    async def step(client: Client):
        setup()
        return await call(client)

    return step


def slots(client: Client):
    return client.request("GET", "/config/resource-slots")


def negotiate(client: Client):
    return client.negotiate()


# -- version negotiation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("23.09", "v7.20230615"),
        ("24.03", "v8.20240315"),
        ("25.15", "v9.20250722"),
    ],
)
def test_negotiate_sends_the_newest_version_both_sides_know(make_client, server, expected):
    with Emulator(server) as emu:
        client = make_client(emu)
        info = run(client, negotiate)
        assert (info.api_version, info.version) == (expected, emu.version)
        assert info.manager == emu.manager
        hello = emu.requests[0]
        assert hello.target == "/" and "authorization" not in hello.headers  # GET / is not signed


def test_a_server_newer_than_every_known_version_gets_our_newest(make_client, emulator):
    emulator.version, emulator.manager = "v10.20270101", "27.03.0"
    assert run(make_client(emulator), negotiate).api_version == "v9.20250722"


def test_an_older_server_version_is_unsupported_with_a_clear_message(make_client, emulator):
    emulator.version, emulator.manager = "v6.20230315", "23.03.11"
    with pytest.raises(errors.UnsupportedVersionError) as caught:
        run(make_client(emulator), negotiate)
    message = str(caught.value)
    assert "v6.20230315" in message and "23.03.11" in message and emulator.endpoint in message
    assert "v7.20230615 (Backend.AI 23.09) or newer" in message


def test_a_web_page_is_not_a_manager(make_client, emulator):
    emulator.not_a_manager()
    with pytest.raises(errors.NotAManagerError) as caught:
        run(make_client(emulator), negotiate)
    assert emulator.endpoint in str(caught.value) and "text/html" in str(caught.value)
    assert "BACKEND_ENDPOINT" in str(caught.value) and caught.value.exit_code == 2


def test_a_path_that_is_not_the_api_is_not_a_manager(make_client, emulator):
    client = Client(Credentials(emulator.endpoint + "/webui/", ACCESS_KEY, "x"), trust_env=False)
    with pytest.raises(errors.NotAManagerError, match="404"):
        run(client, negotiate)
    assert emulator.requests[0].target == "/webui/"


def test_the_first_request_negotiates_once(make_client, emulator):
    client = make_client(emulator)

    async def three_at_once(client):
        return await asyncio.gather(*(slots(client) for _ in range(3)))

    assert run(client, three_at_once) == [{"cpu": "count", "mem": "bytes"}] * 3
    assert client.calls == {("GET", "/"): 1, ("GET", "/config/resource-slots"): 3}


def test_a_version_the_server_stops_accepting_is_unsupported(make_client):
    with Emulator("25.15") as emu:
        client = make_client(emu)

        async def downgrade_then_call(client):
            emu.valid_versions = VALID_23_09
            return await slots(client)

        with pytest.raises(errors.UnsupportedVersionError, match="Unsupported API version"):
            run(client, negotiate, downgrade_then_call)


# -- signed requests -----------------------------------------------------------------------------


def test_a_signed_request_is_accepted(make_client, emulator):
    assert run(make_client(emulator), slots) == {"cpu": "count", "mem": "bytes"}
    request = emulator.requests_to("/config/resource-slots")[0]
    assert request.status == 200
    assert request.headers["x-backendai-version"] == "v7.20230615"
    assert request.headers["content-type"] == "text/plain"
    assert request.headers["date"].endswith("+00:00")
    assert request.headers["authorization"].startswith(f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS_KEY}:")
    assert not any(SECRET_KEY in text for r in emulator.requests for text in (*r.headers.values(), r.target))


def test_query_json_body_and_path_parameters_are_signed_as_sent(make_client, emulator):
    emulator.route("GET", "/session/{name}", lambda req: Reply.json({"name": req.params["name"], **req.query}))
    client = make_client(emulator)
    echoed = run(client, lambda c: c.request("GET", "/auth", params={"echo": "a b&c=*/é"}))
    assert echoed == {"authorized": "yes", "echo": "a b&c=*/é"}
    posted = run(make_client(emulator), lambda c: c.request("POST", "/auth", json={"echo": "ü"}))
    assert posted == {"authorized": "yes", "echo": "ü"}
    client = make_client(emulator)
    got = run(
        client, lambda c: c.request("GET", "/session/{name}", path_params={"name": "a b/../c"}, params={"x": "1"})
    )
    assert got == {"name": "a%20b%2F..%2Fc", "x": "1"}  # one segment: a name cannot change the path
    assert client.calls[("GET", "/session/{name}")] == 1


def test_an_answer_that_is_not_json_comes_back_raw(make_client, emulator):
    emulator.route("GET", "/logs", lambda req: Reply(200, b"plain text", {"Content-Type": "text/plain"}))
    assert run(make_client(emulator), lambda c: c.request("GET", "/logs")) == b"plain text"


def test_a_wrong_secret_is_an_auth_error_naming_the_key_and_never_the_secret(make_client, emulator, caplog):
    wrong = "not-the-secret/Wrong+Key0123456789abcdefgh"
    client = make_client(emulator, secret=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.AuthError) as caught:
        run(client, slots)
    error = caught.value
    assert ACCESS_KEY in str(error) and "BACKEND_SECRET_KEY" in str(error) and "Signature mismatch" in str(error)
    assert error.status == 401 and error.exit_code == 2
    logged = [record.getMessage() for record in caplog.records] + [repr(record.args) for record in caplog.records]
    assert logged, "the client logs its requests"
    for text in (
        str(error),
        repr(error),
        repr(error.args),
        repr(error.problem),
        repr(client),
        repr(client.credentials),
        *logged,
    ):
        assert wrong not in text
    assert emulator.requests[-1].status == 401 and len(emulator.requests_to("/config/resource-slots")) == 1


def test_an_unknown_access_key_is_an_auth_error_saying_so(make_client, emulator):
    with pytest.raises(errors.AuthError, match="does not know access key AKIANOBODY"):
        run(make_client(emulator, access_key="AKIANOBODY"), slots)


@pytest.mark.parametrize(("minutes", "direction"), [(20, "ahead of"), (-20, "behind")])
def test_a_clock_twenty_minutes_off_is_a_clock_skew_error(make_client, emulator, minutes, direction):
    from datetime import timedelta

    emulator.clock_skew = timedelta(minutes=minutes)
    with pytest.raises(errors.ClockSkewError) as caught:
        run(make_client(emulator), slots)
    message = str(caught.value)
    assert "20 minutes apart" in message and f"manager's clock is {direction}" in message and "NTP" in message
    assert abs(caught.value.skew - timedelta(minutes=minutes)) < timedelta(seconds=3)
    assert len(emulator.requests_to("/config/resource-slots")) == 1  # not retried


# -- errors the manager answers ----------------------------------------------------------------------


def test_problem_answers_become_typed_errors_with_the_servers_words(make_client, emulator):
    emulator.route(
        "POST",
        "/session",
        lambda req: Reply.problem(
            412,
            "quota-exceeded",
            "You have reached your resource limit.",
            "Your keypair has reached the concurrency limit.",
        ),
    )
    emulator.route(
        "POST",
        "/folders",
        lambda req: Reply.problem(
            400,
            "invalid-api-params",
            "Missing or invalid API parameters.",
            "Input validation error",
            data={"image": "is required"},
        ),
    )
    emulator.route("GET", "/session/{name}", lambda req: Reply.problem(404, "object-not-found", "No such session."))
    with pytest.raises(errors.QuotaError, match="concurrency limit"):
        run(make_client(emulator), lambda c: c.request("POST", "/session", json={}))
    with pytest.raises(errors.BackendAIError) as caught:
        run(make_client(emulator), lambda c: c.request("POST", "/folders", json={}))
    assert str(caught.value) == (
        "Backend.AI refused POST /folders: Missing or invalid API parameters: "
        "Input validation error (image: is required) [400 invalid-api-params]"
    )
    with pytest.raises(errors.NotFoundError, match="No such session") as caught:
        run(make_client(emulator), lambda c: c.request("GET", "/session/{name}", path_params={"name": "s1"}))
    assert caught.value.slug == "object-not-found" and caught.value.path == "/session/s1"


# -- retries ------------------------------------------------------------------------------------------


def test_503_twice_then_success_after_backoff(make_client, emulator, sleeps):
    client = make_client(emulator)
    assert run(client, negotiate, after(lambda: emulator.fail(503, times=2), slots)) == {"cpu": "count", "mem": "bytes"}
    assert [r.status for r in emulator.requests_to("/config/resource-slots")] == [503, 503, 200]
    assert sleeps == [pytest.approx(0.075), pytest.approx(0.15)]  # equal jitter: cap/2 + 0.5 * cap/2, cap doubling
    assert client.calls[("GET", "/config/resource-slots")] == 3


def test_5xx_on_every_attempt_is_a_server_error(make_client, emulator, sleeps):
    emulator.fail(500, times=10, path="/config/resource-slots")
    with pytest.raises(errors.ServerError, match="after 4 attempts: Internal server error"):
        run(make_client(emulator), slots)
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)


def test_full_jitter_waits_up_to_the_cap(make_client, emulator, sleeps):
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, jitter="full")
    emulator.fail(503, times=2, path="/config/resource-slots")
    run(make_client(emulator, retry=policy, random=lambda: 0.25), slots)
    assert sleeps == [pytest.approx(0.025), pytest.approx(0.05)]


def test_a_post_is_retried_after_503_but_not_after_500_or_a_dropped_connection(make_client, emulator):
    def post(c):
        return c.request("POST", "/auth", json={"echo": "1"})

    emulator.fail(503, times=1, path="/auth")
    assert run(make_client(emulator), post)["echo"] == "1"
    emulator.fail(500, times=1, path="/auth")
    with pytest.raises(errors.ServerError):
        run(make_client(emulator), post)
    emulator.drop(times=1, path="/auth")
    with pytest.raises(errors.ConnectionFailedError, match="cannot reach"):
        run(make_client(emulator), post)
    assert [r.status for r in emulator.requests_to("/auth")] == [503, 200, 500, None]


def test_a_get_is_retried_after_a_dropped_connection(make_client, emulator):
    emulator.drop(times=1, path="/config/resource-slots")
    assert run(make_client(emulator), slots) == {"cpu": "count", "mem": "bytes"}
    assert [r.status for r in emulator.requests_to("/config/resource-slots")] == [None, 200]


def test_429_waits_by_the_rate_limit_headers_then_succeeds(make_client, emulator, sleeps):
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_rate_limit_wait=2.0)
    emulator.rate_limited(times=1, limit=100, remaining=0, window=900, path="/config/resource-slots")
    client = make_client(emulator, retry=policy)
    assert run(client, slots) == {"cpu": "count", "mem": "bytes"}
    assert sleeps == [2.0]  # 900 s / 100 requests = 9 s for a slot, capped at 2 s
    assert client.rate_limit.limit == 1000 and client.rate_limit.window == 900


def test_429_without_headers_waits_by_the_last_ones_the_manager_sent(make_client, sleeps):
    with Emulator(rate_limit=50) as emu:  # every answer says 50 requests per 900 s
        client = make_client(emu, retry=RetryPolicy(max_attempts=3, max_rate_limit_wait=100))
        fault = after(lambda: emu.rate_limited(times=1, headers=False, path="/config/resource-slots"), slots)
        assert run(client, slots, fault) == {"cpu": "count", "mem": "bytes"}
        refused = emu.requests_to("/config/resource-slots")[1]
        assert refused.status == 429 and "X-RateLimit-Limit" not in refused.reply_headers
        assert sleeps == [18]  # 900 s / 50: the 429 says over, whatever the last Remaining said


def test_429_with_a_generous_limit_waits_the_ordinary_backoff(make_client, emulator, sleeps):
    emulator.rate_limited(times=1, limit=100000, remaining=0, window=60, path="/config/resource-slots")
    run(make_client(emulator), slots)
    assert sleeps == [pytest.approx(0.075)]


def test_429_on_every_attempt_is_a_rate_limited_error(make_client, emulator, sleeps):
    emulator.rate_limited(times=10, limit=100, remaining=0, window=900, path="/config/resource-slots")
    with pytest.raises(errors.RateLimitedError) as caught:
        run(make_client(emulator, retry=RetryPolicy(max_attempts=3, max_rate_limit_wait=0.5)), slots)
    message = str(caught.value)
    assert ACCESS_KEY in message and "100 requests per 900 s" in message and "after 3 attempts" in message
    assert sleeps == [0.5, 0.5]


def test_the_emulators_own_rolling_limit_is_honoured(make_client, sleeps):
    with Emulator(rate_limit=2) as emu:
        client = make_client(emu, retry=RetryPolicy(max_attempts=2, max_rate_limit_wait=0.25))

        async def three_calls(client):
            await slots(client)
            assert (client.rate_limit.limit, client.rate_limit.remaining) == (2, 1)
            await slots(client)
            assert client.rate_limit.remaining == 0
            with pytest.raises(errors.RateLimitedError):
                await slots(client)

        run(client, three_calls)
        assert sleeps == [0.25]  # 900 s / 2 requests, capped
        assert [r.status for r in emu.requests_to("/config/resource-slots")] == [200, 200, 429, 429]


# -- the network failing -------------------------------------------------------------------------------


def test_a_hanging_server_times_out_after_the_read_timeout(make_client, emulator):
    # the server would answer after 5 s: the error, not the clock, shows the 0.2 s timeout ended each attempt
    client = make_client(emulator, timeout=0.2, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(errors.RequestTimeoutError) as caught:
        run(client, negotiate, after(lambda: emulator.slow(5, times=5, path="/config/resource-slots"), slots))
    assert len(emulator.requests_to("/config/resource-slots")) == 2
    assert str(caught.value) == (
        f"the Backend.AI manager at {emulator.endpoint} did not answer "
        "GET /config/resource-slots within 0.2 s (read timeout) (2 attempts)"
    )


def test_a_per_request_timeout_overrides_the_default(make_client, emulator):
    client = make_client(emulator, retry=RetryPolicy(max_attempts=1))
    emulator.slow(5, path="/config/resource-slots")
    with pytest.raises(errors.RequestTimeoutError, match="within 0.1 s"):
        run(client, lambda c: c.request("GET", "/config/resource-slots", timeout=0.1))
    assert len(emulator.requests_to("/")) == 1  # the default timeout (30 s) still applied to GET /


def test_connection_refused_names_the_endpoint(sleeps):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    client = Client(
        Credentials(endpoint, ACCESS_KEY, "x"),
        trust_env=False,
        sleep=sleeps,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01),
    )
    with pytest.raises(errors.ConnectionFailedError) as caught:
        run(client, slots)
    assert str(caught.value) == (
        f"cannot reach the Backend.AI manager at {endpoint} (GET /): connection refused "
        "(3 attempts); check BACKEND_ENDPOINT and that the manager is running"
    )
    assert len(sleeps) == 2
