"""The state folder: where it is by default, what lives in it, and a folder that cannot be one."""

from __future__ import annotations

import pytest

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.engine.state.errors import JobRecordError, StoreError
from fasttrack_gitops.engine.state.state_folder import default_state_dir
from fasttrack_gitops.engine.state.store import Store


def test_an_unwritable_state_folder_names_the_folder_and_suggests_state_dir(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "state"
    with pytest.raises(StoreError) as unwritable:
        Store(folder)
    assert str(folder) in str(unwritable.value) and "--state-dir" in str(unwritable.value)
    assert isinstance(unwritable.value, UsageError)


def test_log_paths_and_data_folders_live_in_the_state_folder(store):
    path = store.log_path("20260101-000000-abcdef", "train", 2)
    assert path == store.state_dir / "logs" / "20260101-000000-abcdef" / "train" / "2.log"
    assert path.parent.is_dir()
    data = store.data_dir("20260101-000000-abcdef")
    assert data == store.state_dir / "data" / "20260101-000000-abcdef" and data.is_dir()
    with pytest.raises(JobRecordError):
        store.log_path("../escape", "train", 1)


def test_the_default_state_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FTG_STATE_DIR", str(tmp_path / "ftg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "ftg"
    monkeypatch.delenv("FTG_STATE_DIR")
    assert default_state_dir() == tmp_path / "xdg" / "fasttrack-gitops"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / ".local" / "state" / "fasttrack-gitops"
