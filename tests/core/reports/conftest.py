"""The store every report test reads its jobs from: a real SQLite store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from fasttrack_gitops.engine.state.store import Store


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state") as opened:
        yield opened
