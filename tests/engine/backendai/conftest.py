"""Fixtures for the Backend.AI layer: a started emulator and clients wired to it (loopback only)."""

from __future__ import annotations

import pytest
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_sessions import install as install_sessions

from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.retry import RetryPolicy


@pytest.fixture
def emulator():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def session_emulator():
    """A 23.09 emulator with compute sessions (`emu.sessions`: faults, the sessions it ran), fast steps."""
    with Emulator() as emu:
        install_sessions(emu, step=0.02)
        yield emu


class Sleeps(list):
    """A fake asyncio.sleep that records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps):
    """make_client(emulator, secret=..., **Client kwargs): never reads proxies from the environment."""

    def _make(emu: Emulator, *, access_key: str = ACCESS_KEY, secret: str = SECRET_KEY, **kwargs) -> Client:
        kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1.0))
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("random", lambda: 0.5)
        return Client(Credentials(emu.endpoint, access_key, secret), trust_env=False, **kwargs)

    return _make
