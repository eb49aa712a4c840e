"""The pure decisions: which API version to send, how long to back off, what an error says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.retry import RateLimit, RetryPolicy, rate_limit_wait
from fasttrack_gitops.engine.backendai.versions import (
    KNOWN_VERSIONS,
    choose_version,
    parse_version,
)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("v7.20230615", "v7.20230615"),
        ("v8.20240315", "v8.20240315"),
        ("v8.20240601", "v8.20240315"),  # an unknown release between two we know: the older one
        ("v8.20240915", "v8.20240915"),
        ("v9.20250722", "v9.20250722"),
        ("v9.20260101", "v9.20250722"),
        ("v12.20300101", "v9.20250722"),
    ],
)
def test_the_newest_version_both_sides_know(server, expected):
    assert choose_version(server) == expected


@pytest.mark.parametrize("server", ["v6.20230315", "v7.20230101", "v4.20181215"])
def test_older_servers_are_unsupported(server):
    with pytest.raises(errors.UnsupportedVersionError, match=f"speaks API {server}, older than any"):
        choose_version(server)


def test_a_malformed_version_is_unsupported():
    with pytest.raises(errors.UnsupportedVersionError, match="not of the form vN.YYYYMMDD"):
        choose_version("7.0")
    assert parse_version("v10.20300101") == (10, "20300101") and parse_version("v7") is None
    assert list(KNOWN_VERSIONS) == sorted(KNOWN_VERSIONS, key=parse_version)


def test_backoff_doubles_up_to_the_cap_with_jitter():
    equal = RetryPolicy(base_delay=1, max_delay=5)
    assert [equal.backoff(n, lambda: 0.0) for n in range(1, 6)] == [0.5, 1, 2, 2.5, 2.5]
    assert [equal.backoff(n, lambda: 1.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    full = RetryPolicy(base_delay=1, max_delay=5, jitter="full")
    assert [full.backoff(n, lambda: 0.0) for n in range(1, 4)] == [0, 0, 0]
    assert [full.backoff(n, lambda: 0.5) for n in range(1, 5)] == [0.5, 1, 2, 2.5]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_rate_limit_waits_for_a_slot_of_the_rolling_window():
    policy = RetryPolicy(base_delay=0.1, max_rate_limit_wait=60)

    def half():
        return 0.5

    assert rate_limit_wait(policy, 1, half, RateLimit(100, 0, 900)) == 9  # 900 s / 100
    assert rate_limit_wait(policy, 1, half, RateLimit(100, -2, 900)) == 27  # three over: three slots
    assert rate_limit_wait(policy, 1, half, RateLimit(1000, 0, 900)) == pytest.approx(0.9)
    assert rate_limit_wait(policy, 1, half, RateLimit(10, 0, 900)) == 60  # capped
    assert rate_limit_wait(policy, 1, half, RateLimit(100, 5, 900)) == 9  # a stale Remaining: the 429 says over
    assert rate_limit_wait(policy, 1, half, None) == pytest.approx(0.075)
    assert rate_limit_wait(policy, 1, half, None, retry_after="3") == 3
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Window": "900"}
    assert RateLimit.from_headers(headers) == RateLimit(100, 0, 900.0)
    assert RateLimit.from_headers({}) is None


def problem(slug: str, title: str, msg: str | None = None) -> bytes:
    import json

    body = {"type": f"https://api.backend.ai/probs/{slug}", "title": title}
    return json.dumps({**body, "msg": msg} if msg else body).encode()


def error(status, body=b"", headers=None, **kwargs):
    return errors.error_from_response(
        status, headers or {}, body, method="GET", path="/x", endpoint="http://m:8081", access_key="AKIAX", **kwargs
    )


def test_error_messages_say_what_the_server_said():
    frozen = error(
        503, problem("server-frozen", "The server is frozen due to maintenance. Please try again later."), attempts=5
    )
    assert isinstance(frozen, errors.ServerError)
    assert str(frozen) == (
        "the Backend.AI manager at http://m:8081 failed on GET /x after 5 attempts: The server is "
        "frozen due to maintenance. Please try again later. [503 server-frozen]"
    )
    proxy = error(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
    assert "Bad Gateway (text/html: <html><body><h1>502 Bad Gateway</h1></body></html>) [502 Bad Gateway]" in str(proxy)
    quota = error(400, problem("quota-exceeded", "You have reached your resource limit.", "cpu 4 > 2"))
    assert isinstance(quota, errors.QuotaError) and "resource limit: cpu 4 > 2" in str(quota)
    generic = error(403, problem("insufficient-privilege", "Insufficient privilege."))
    assert type(generic) is errors.BackendAIError and generic.slug == "insufficient-privilege"


def test_clock_skew_is_measured_from_the_two_date_headers():
    sent = "2024-09-20T12:00:00.000000+00:00"
    body = problem("invalid-auth-params", "Missing or invalid authorization parameters.", "Date/time sync error")
    skewed = error(400, body, {"Date": "Fri, 20 Sep 2024 12:20:00 GMT"}, sent_date=sent)
    assert isinstance(skewed, errors.ClockSkewError) and skewed.skew == timedelta(minutes=20)
    assert "20 minutes apart (the manager's clock is ahead of this machine's)" in str(skewed)
    unknown = error(400, body, sent_date=sent)
    assert unknown.skew is None and "more than 15 minutes apart" in str(unknown)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "-" + "9" * 400, "X-RateLimit-Window": "900"},
        {"X-RateLimit-Limit": "-" + "9" * 309, "X-RateLimit-Remaining": "0", "X-RateLimit-Window": "900"},
    ],
)
def test_rate_limit_counts_too_large_to_be_real_are_ignored(headers):
    """Found by tests/fuzz/headers_test.py: such a count raised OverflowError (int too large to convert to float)
    while the wait after a 429 was worked out. Now it is read as absent, and the wait is within the policy's cap."""
    policy = RetryPolicy()
    assert 0 < rate_limit_wait(policy, 1, lambda: 0.5, RateLimit.from_headers(headers)) <= policy.max_rate_limit_wait
