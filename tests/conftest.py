"""Fixtures shared by the whole suite: where the real example files are, and a way to write pipelines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLES_REPO = PROJECT / "examples-repo"
DATA = PROJECT / "tests" / "data"  # copies of public contracts and FastTrack exports; sources in its README.md


@pytest.fixture
def fasttrack_examples() -> list[Path]:
    """The real pipeline files exported from FastTrack clusters (tests/data/fasttrack-examples)."""
    files = sorted((DATA / "fasttrack-examples").glob("*.yaml"))
    assert files, "tests/data/fasttrack-examples has no example pipelines"
    return files


@pytest.fixture
def contracts() -> Path:
    """tests/data/contracts: the published GitHub, Slack and GitLab schemas and real webhook payloads."""
    return DATA / "contracts"


@pytest.fixture
def examples_repo() -> Path:
    return EXAMPLES_REPO


@pytest.fixture
def write(tmp_path: Path):
    """write('pipelines/x.yaml', yaml_text) -> the path; text is dedented."""

    def _write(relpath: str, text: str | bytes) -> Path:
        path = tmp_path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


def console_script() -> str:
    """The installed `fasttrack-gitops` command, for tests of what only a real process shows."""
    script = Path(sys.executable).with_name("fasttrack-gitops")
    if script.exists():
        return str(script)
    found = shutil.which("fasttrack-gitops")
    if not found:
        pytest.skip("the fasttrack-gitops console script is not installed")
    return found


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def git(repo: Path, *args: str) -> str:
    """Run git in repo with a fixed identity, so tests make real commits anywhere."""
    env = {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "HOME": str(repo),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


MINIMAL = """\
version: "26.4.4"
name: demo
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    command: echo train
"""
