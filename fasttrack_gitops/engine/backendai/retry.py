"""When to try a request again, and how long to wait first. Pure: no clock, no I/O.

Backoff is exponential (base * 2^(attempt-1), capped at max_delay) with
jitter, so many runners that failed together do not come back together:
"full" jitter waits uniformly in [0, cap], "equal" in [cap/2, cap] (never
almost zero). A 429 carries no Retry-After on Backend.AI; the manager's
rate limit is a rolling window (`X-RateLimit-Window`, 900 s) of
`X-RateLimit-Limit` requests per keypair, where every request, refused ones
included, counts. So a 429 waits at least window/limit (the time one slot takes to
free up on average, longer when Remaining is below zero), capped by
max_rate_limit_wait, and never less than the ordinary backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

# Methods whose repetition has the effect of one call (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_LARGEST_COUNT = 2**53  # X-RateLimit-Limit and -Remaining beyond this are not counts (and overflow a float)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # attempts in all, the first included
    base_delay: float = 0.5  # seconds before the second attempt (before jitter)
    max_delay: float = 30.0  # cap on one backoff wait
    jitter: Literal["full", "equal"] = "equal"
    max_rate_limit_wait: float = 60.0  # cap on one wait after a 429

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.jitter not in ("full", "equal"):
            raise ValueError("jitter must be 'full' or 'equal'")

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """The wait after failed attempt number `attempt` (from 1)."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        if self.jitter == "full":
            return random() * cap
        return cap / 2 + random() * cap / 2


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    window: float | None  # seconds

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """The X-RateLimit-* headers of a response; None when it has none."""
        values = [headers.get(f"X-RateLimit-{name}") for name in ("Limit", "Remaining", "Window")]
        if all(value is None for value in values):
            return None
        return cls(_number(values[0], int), _number(values[1], int), _number(values[2], float))


def rate_limit_wait(
    policy: RetryPolicy,
    attempt: int,
    random: Callable[[], float],
    rate_limit: RateLimit | None,
    retry_after: str | None = None,
) -> float:
    """How long to wait after a 429 (attempt from 1); `rate_limit` is the latest the manager told us."""
    wait = policy.backoff(attempt, random)
    seconds = _number(retry_after, float)
    if seconds is not None:  # not sent by the manager, but a proxy in front of it may
        wait = max(wait, seconds)
    elif rate_limit and rate_limit.limit and rate_limit.window:
        # The 429 itself says we are over, whatever an older Remaining said (23.09 puts no
        # X-RateLimit-* on its 429s, so these may come from an earlier answer): one slot must
        # free up; N + 1 slots when Remaining is -N.
        over = 1 + max(0, -(rate_limit.remaining or 0))
        wait = max(wait, over * rate_limit.window / rate_limit.limit)
    return min(wait, policy.max_rate_limit_wait)


def _number(text: str | None, kind: type):
    if text is None:
        return None
    try:
        value = kind(text.strip())
    except ValueError:
        return None
    if kind is int and abs(value) > _LARGEST_COUNT:  # no real count; the wait's float arithmetic would overflow
        return None
    return value if value >= 0 or kind is int else None
