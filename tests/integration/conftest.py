"""Fixtures for the tests against a REAL Backend.AI manager (scripts/realstack).

These tests run only when asked to: FTG_REALSTACK=1 and the three BACKEND_* variables
set, which scripts/realstack-env.sh prints after bringing the stack up. Everywhere else
(a laptop, CI without the stack) every test here is skipped with the command that runs
them; asked to run (FTG_REALSTACK=1) without the variables, they fail. The gate is an
autouse fixture, so it applies to this folder only.
"""

from __future__ import annotations

import os

import pytest

from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import ACCESS_KEY, ENDPOINT, SECRET_KEY, Credentials
from fasttrack_gitops.engine.backendai.retry import RetryPolicy

HOW_TO_RUN = 'eval "$(scripts/realstack-env.sh)" && FTG_REALSTACK=1 .venv/bin/python -m pytest tests/integration'


@pytest.fixture(autouse=True)
def _realstack_only() -> None:
    if os.environ.get("FTG_REALSTACK") != "1":
        pytest.skip(f"real-manager tests run only with FTG_REALSTACK=1; run them with: {HOW_TO_RUN}")
    missing = [name for name in (ENDPOINT, ACCESS_KEY, SECRET_KEY) if not os.environ.get(name, "").strip()]
    if missing:
        pytest.fail(f"FTG_REALSTACK=1 asks for them, but {', '.join(missing)} not set; run them with: {HOW_TO_RUN}")


@pytest.fixture
def credentials() -> Credentials:
    """The keypair of the running stack, read the way the CLI will read it."""
    return Credentials.from_env()


# Few, short retries: a stack that is down should fail in seconds, not after the
# default policy's 5 attempts; a wrong answer is never retried anyway.
FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=0.5)


@pytest.fixture
def make_client(credentials):
    """make_client(credentials=..., **Client kwargs) -> a Client on the real manager (proxies never used)."""

    def _make(creds: Credentials | None = None, **kwargs) -> Client:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("timeout", 15.0)
        return Client(creds or credentials, trust_env=False, **kwargs)

    return _make
