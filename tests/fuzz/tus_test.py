"""Fuzz: the offsets a storage proxy answers a tus upload with (engine/backendai/tus.py).

Invariant: whatever Upload-Offset and status each PATCH and HEAD answer carries (missing, not a number,
negative, beyond the size, going backwards), the upload ends, done or with a BackendAIError, after a bounded
number of requests: it never loops for ever on a proxy that makes no progress.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.retry import RetryPolicy
from fasttrack_gitops.engine.backendai.tus import Source, StorageProxy

SIZE = 100
OFFSETS = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=SIZE + 5).map(str),
    st.sampled_from(["", "x", "1e3", " 50 ", "1_0", "9" * 5000]),
)
ANSWERS = st.lists(st.tuples(st.sampled_from([200, 204, 204, 409, 404, 500, 429]), OFFSETS), min_size=1, max_size=30)
MOST_REQUESTS = 2000  # far beyond any honest upload of SIZE bytes in chunks of 10 with retries


async def upload(answers: list[tuple[int, str | None]]) -> int:
    requests = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        assert requests <= MOST_REQUESTS, "the upload does not end"
        status, offset = answers[requests % len(answers)]
        if request.method == "HEAD":
            status = 200 if status in (204, 409) else status
        return httpx.Response(status, headers={} if offset is None else {"Upload-Offset": offset})

    async def no_wait(seconds: float) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        proxy = StorageProxy(http, retry=RetryPolicy(), sleep=no_wait, random=lambda: 0.5, calls=Counter())
        try:
            await proxy.upload("http://proxy.test/upload", "token", Source(b"x" * SIZE), chunk_size=10, what="f")
        except errors.BackendAIError as e:
            assert str(e)
    return requests


@given(answers=ANSWERS)
def test_any_offsets_a_proxy_answers_end_the_upload(answers):
    assert asyncio.run(upload(answers)) <= MOST_REQUESTS
