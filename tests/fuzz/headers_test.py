"""Fuzz: the wait a service's headers ask for (Retry-After, X-RateLimit-*, RateLimit-Reset) and Backend.AI's.

Invariants: any header text gives a finite wait of zero or more seconds or "none asked" (never a traceback, never
an endless wait), and a 429's wait never exceeds the policy's cap.
"""

from __future__ import annotations

import email.utils
import math
import random

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.reports.model import retry_after
from fasttrack_gitops.engine.backendai.retry import RateLimit, RetryPolicy, rate_limit_wait

NOW = 1_764_000_000.0

# What shows up in such headers, and what a broken proxy may put there: numbers of every shape, HTTP dates, words.
NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "Infinity", "1e999", "-1e999", "1_000", " 7 ", "+3", "0x10", "٣"]),
    st.integers(min_value=300, max_value=5000).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=5000).map(lambda n: "-" + "9" * n),
)
DATES = st.one_of(
    st.floats(min_value=-1e10, max_value=1e10).map(lambda t: email.utils.formatdate(t, usegmt=True)),
    st.from_regex(
        r"\A[A-Za-z]{3}, [0-9]{1,6} [A-Za-z]{3} -?[0-9]{1,6} [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3} [-+A-Z0-9]{1,6}\Z"
    ),
)
HEADER_TEXT = st.one_of(NUMBERS, DATES, st.text(max_size=40))
HEADERS = st.dictionaries(
    st.sampled_from(
        ["retry-after", "x-ratelimit-reset", "ratelimit-reset", "X-RateLimit-Limit", "X-RateLimit-Remaining"]
        + ["X-RateLimit-Window"]
    ),
    HEADER_TEXT,
)


def finite_wait(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isfinite(value) and value >= 0)


@given(headers=HEADERS, reset=st.sampled_from([None, "x-ratelimit-reset", "ratelimit-reset"]))
def test_any_retry_after_or_reset_header_gives_a_finite_wait_or_none(headers, reset):
    assert finite_wait(retry_after(headers, NOW, reset=reset))


# Backend.AI's three rate-limit headers: all three as counts of any size (a Remaining far below zero included),
# or each present or not as any text.
COUNTS = st.one_of(
    st.integers(min_value=-1000, max_value=1000).map(str),
    st.integers(min_value=20, max_value=4000).map(lambda n: "-" + "9" * n),
    st.integers(min_value=20, max_value=4000).map(lambda n: "9" * n),
)
RATE_LIMIT_NAMES = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Window")
RATE_LIMIT_HEADERS = st.one_of(
    st.fixed_dictionaries(dict.fromkeys(RATE_LIMIT_NAMES, COUNTS)),
    st.fixed_dictionaries({}, optional=dict.fromkeys(RATE_LIMIT_NAMES, HEADER_TEXT)),
)


@given(headers=RATE_LIMIT_HEADERS, attempt=st.integers(min_value=1, max_value=100), retry=st.none() | HEADER_TEXT)
def test_a_429s_wait_is_finite_and_within_the_cap_whatever_the_rate_limit_headers_say(headers, attempt, retry):
    policy = RetryPolicy()
    limit = RateLimit.from_headers(headers)
    wait = rate_limit_wait(policy, attempt, random.Random(attempt).random, limit, retry)
    assert 0 <= wait <= policy.max_rate_limit_wait
