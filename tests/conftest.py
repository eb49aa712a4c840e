"""Fixtures shared by the whole suite: where the real example files are, a way to write pipelines, the one way
to wait for something (wait_until, await_until), and the one way to say a test cannot run here (cannot_run)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, settings

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLES_REPO = PROJECT / "examples-repo"
DATA = PROJECT / "tests" / "data"  # copies of public contracts and FastTrack exports; sources in its README.md


# -- Hypothesis ------------------------------------------------------------------------------------------------

# Property tests (tests/fuzz and the areas' own) run under a profile. "ci", the default, is what `pytest` and .ci/run
# use: derandomized (the same examples every run, so a failure reproduces and CI never flakes on a new one) and
# bounded, so the fuzz set adds seconds. "long" explores afresh with 50 times the examples:
#     HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz
# Each example must finish within 2 s (the "never a hang" invariant of the fuzz tests); a test that sets its own
# deadline or max_examples keeps them.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
        cannot_run("the fasttrack-gitops console script is not installed; pip install -e '.[test]' installs it")
    return found


# -- tests that cannot run here -------------------------------------------------------------------------------

# CI installs everything the suite needs (.ci/run), so there a test that cannot run is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def cannot_run(reason: str) -> NoReturn:
    """Skip a test that cannot run on this machine, saying what it lacks; under CI fail it instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: there a test that cannot run fails)", pytrace=False)
    pytest.skip(reason)


def required_module(name: str, package: str) -> ModuleType:
    """The module `name`, which the test extra installs (in `package`); cannot_run when it is not importable."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        cannot_run(f"{name} cannot be imported ({e}); pip install -e '.[test]' installs {package}")


@functools.cache
def _bubblewrap_problem() -> str:
    """Why bubblewrap cannot sandbox a task here ('' when it can), probed once per test session."""
    from fasttrack_gitops.engine.executors.bubblewrap import Bubblewrap

    probe = Bubblewrap("/bin/sh")
    return "" if asyncio.run(probe.prefix()) is not None else probe.reason


def require_bwrap() -> None:
    """cannot_run unless bubblewrap works here, naming why not (.ci/run installs it with apt-get)."""
    if problem := _bubblewrap_problem():
        cannot_run(f"bubblewrap does not work here: {problem}")


@pytest.fixture
def bwrap_works() -> None:
    """For tests that need bubblewrap: `@pytest.mark.usefixtures("bwrap_works")`."""
    require_bwrap()


def without_root_privilege(argv: list[str]) -> list[str]:
    """argv run so that a chmod 000 file cannot be read: as is, or, for root (who reads any file), under setpriv
    without the two capabilities that let root ignore file permissions, so it still owns and reaches its files."""
    if os.name != "posix" or os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        cannot_run("as root this test needs setpriv (util-linux) to drop the capabilities that read any file")
    dropped = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={dropped}", f"--inh-caps={dropped}", *argv]


# -- waiting ----------------------------------------------------------------------------------------------------

PATIENCE = 30.0  # seconds a wait may take before the test fails; far above what any wait takes on a busy machine


class _Deadline:
    """The end of one wait, and the failure that names what was awaited when it passes."""

    def __init__(self, predicate: Callable, timeout: float, what: str | Callable[[], str] | None):
        self.predicate, self.timeout, self.what = predicate, timeout, what
        self.ends = time.monotonic() + timeout

    def check(self) -> None:
        if time.monotonic() > self.ends:
            pytest.fail(f"timed out after {self.timeout:g}s waiting for {self._described()}", pytrace=False)

    def _described(self) -> str:
        if callable(self.what):
            return self.what()
        if self.what:
            return self.what
        try:  # no description given: the predicate's own source line says what it waited for
            return inspect.getsource(self.predicate).strip()
        except (OSError, TypeError):
            return repr(self.predicate)


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = PATIENCE,
    interval: float = 0.02,
    what: str | Callable[[], str] | None = None,
) -> Any:
    """Call predicate() until it returns something truthy, and return that; fail the test after `timeout` seconds
    with a message naming `what` (a text, or a function that describes the state; default: the predicate's code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop runs in this thread: sleeping between the calls holds nothing up
        pass
    else:
        raise AssertionError("wait_until would stop the running event loop it waits on: use await_until")
    deadline = _Deadline(predicate, timeout, what)
    while not (value := predicate()):
        deadline.check()
        time.sleep(interval)
    return value


async def await_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = PATIENCE,
    interval: float = 0.02,
    what: str | Callable[[], str] | None = None,
) -> Any:
    """wait_until inside a running event loop, which goes on between the calls; predicate may be async."""
    deadline = _Deadline(predicate, timeout, what)
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        deadline.check()
        await asyncio.sleep(interval)


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


@pytest.fixture
def emulated_cluster(monkeypatch):
    """A Backend.AI 23.09 manager emulator whose sessions run their startup scripts and mount its vfolders; the
    BACKEND_* variables name it, so `run --executor backendai` and `jobs outputs --executor backendai` use it."""
    from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
    from engine.backendai.emulator_sessions import install as install_sessions
    from engine.backendai.emulator_vfolders import install as install_vfolders

    with Emulator() as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            monkeypatch.setenv("BACKEND_ENDPOINT", emu.endpoint)
            monkeypatch.setenv("BACKEND_ACCESS_KEY", ACCESS_KEY)
            monkeypatch.setenv("BACKEND_SECRET_KEY", SECRET_KEY)
            yield emu
