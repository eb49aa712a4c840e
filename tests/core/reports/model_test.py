"""What a service's answer says about waiting: Retry-After and the rate-limit reset headers."""

from __future__ import annotations

from fasttrack_gitops.core.reports.model import retry_after

NOW = 1_700_000_000.0


def test_retry_after_reads_seconds_or_an_http_date():
    assert retry_after({"retry-after": "30"}, NOW) == 30.0
    assert retry_after({"retry-after": "Tue, 14 Nov 2023 22:14:20 GMT"}, NOW) == 60.0
    assert retry_after({"retry-after": "-5"}, NOW) == 0.0
    assert retry_after({"retry-after": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None


def test_the_reset_header_counts_only_when_named_and_only_without_a_retry_after():
    reset = {"ratelimit-reset": str(int(NOW) + 12)}
    assert retry_after(reset, NOW, reset="ratelimit-reset") == 12.0  # GitLab's epoch second
    assert retry_after(reset, NOW) is None  # Slack names none
    assert retry_after({**reset, "retry-after": "3"}, NOW, reset="ratelimit-reset") == 3.0
    assert retry_after({"ratelimit-reset": "later"}, NOW, reset="ratelimit-reset") is None
    assert retry_after({"ratelimit-reset": str(int(NOW) - 9)}, NOW, reset="ratelimit-reset") == 0.0


def test_a_retry_after_that_is_not_a_finite_number_asks_for_no_wait():
    """Found by tests/fuzz/headers_test.py: "inf" (and "1e999") read as an endless wait, so the report was
    never sent again; "nan" in a reset header likewise. Now they say nothing, as any other unreadable value."""
    assert retry_after({"retry-after": "inf"}, 1000.0) is None
    assert retry_after({"retry-after": "1e999"}, 1000.0) is None
    assert retry_after({"x-ratelimit-reset": "inf"}, 1000.0, reset="x-ratelimit-reset") is None
    assert retry_after({"retry-after": "nan", "x-ratelimit-reset": "1030"}, 1000.0, reset="x-ratelimit-reset") == 30
