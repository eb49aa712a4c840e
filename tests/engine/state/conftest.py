"""The fixture of the state tests: a store in a fresh state folder."""

from __future__ import annotations

import pytest

from fasttrack_gitops.engine.state.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "state") as s:
        yield s
