"""The Backend.AI manager emulator as a `run --executor backendai` sees it, shared by the commands' tests."""

from __future__ import annotations

import pytest
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders


@pytest.fixture
def cluster(monkeypatch):
    """A 23.09 manager emulator whose sessions run and mount its vfolders; the CLI's credentials name it."""
    with Emulator() as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
            monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
            monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
            yield emu
