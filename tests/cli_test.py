"""The `fasttrack-gitops` command line as a whole: version, help, typos, exit codes, what it imports."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import MINIMAL, PROJECT, console_script, git
from engine.state.store_test import make_job

from fasttrack_gitops import __version__
from fasttrack_gitops.cli import main
from fasttrack_gitops.engine.state.store import Store

COMMANDS = [
    "ci",
    "doctor",
    "export",
    "gc",
    "graph",
    "import",
    "jobs",
    "plan",
    "run",
    "schema",
    "serve",
    "state",
    "trigger",
    "validate",
]
# Stacks that validating must never pay for (or need installed).
HEAVY = ["httpx", "dulwich", "git", "uvicorn", "starlette", "sqlite3", "_sqlite3"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_prints_the_package_version_and_the_checkouts_commit(capsys):
    """From this checkout (an editable install) the commit follows the version; scripts/check-wheel.sh shows a
    wheel installed elsewhere printing the version alone."""
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    if (PROJECT / ".git").exists():
        assert out == f"fasttrack-gitops {__version__} (git {git(PROJECT, 'rev-parse', 'HEAD')[:7]})\n"
    else:  # an unpacked sdist
        assert out == f"fasttrack-gitops {__version__}\n"
    assert __version__ == importlib.metadata.version("fasttrack-gitops")


def test_help_lists_every_command(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    listed = out.split("Commands:")[1].split()
    for command in COMMANDS:
        assert command in listed


def test_short_help_flag_works_too(capsys):
    assert cli(capsys, "-h")[1] == cli(capsys, "--help")[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    code, out, err = cli(capsys, command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: fasttrack-gitops {command} ")


def test_a_mistyped_command_suggests_the_right_one(capsys):
    code, out, err = cli(capsys, "validat")
    assert code == 2
    assert out == ""
    assert "no such command 'validat'" in err
    assert "did you mean 'validate'" in err


def test_an_unknown_command_lists_the_commands(capsys):
    code, _, err = cli(capsys, "deploy-everything")
    assert code == 2
    assert "did you mean" not in err
    assert f"commands: {', '.join(COMMANDS)}" in err


def test_python_dash_m_and_the_console_script_give_the_same_exit_codes(tmp_path, examples_repo):
    (tmp_path / "broken.yaml").write_text("version: 1\nname: x\ntasks: []\n")
    for runner in ([sys.executable, "-m", "fasttrack_gitops"], [console_script()]):

        def run(*argv, runner=runner):
            return subprocess.run([*runner, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)

        assert run("--version").stdout.startswith(f"fasttrack-gitops {__version__}")
        assert run("validate", str(examples_repo)).returncode == 0
        assert run("validate", "broken.yaml").returncode == 1
        bad = run("validat")
        assert bad.returncode == 2
        assert "did you mean 'validate'" in bad.stderr
        assert "Traceback" not in bad.stderr


# --- exit codes by who must act: 2 change the command, 3 fix or wait for the environment ------


def in_a_process(*argv: object, cwd: Path, busy_timeout: float | None = None) -> subprocess.CompletedProcess:
    """The command as a process of its own (its stderr is what a user sees), the store's busy timeout shortened."""
    shorten = f"migrations.BUSY_TIMEOUT = {busy_timeout!r}" if busy_timeout is not None else ""
    code = textwrap.dedent(f"""
        import sys
        from fasttrack_gitops.engine.state import migrations
        {shorten}
        from fasttrack_gitops.cli import main
        sys.exit(main({[str(a) for a in argv]!r}))
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    return stderr


@pytest.fixture
def stored_job(tmp_path: Path) -> tuple[Path, str]:
    """A state folder holding one pending job, and the job's id."""
    state, job = tmp_path / "state", make_job()
    with Store(state) as store:
        store.create_job(job)
    return state, job.id


def test_a_state_database_locked_past_the_timeout_exits_3_with_one_line(tmp_path, stored_job):
    state, job_id = stored_job
    with contextlib.closing(sqlite3.connect(state / "state.db", isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")  # another process's write transaction that does not end
        proc = in_a_process("jobs", "cancel", job_id, "--state-dir", state, cwd=tmp_path, busy_timeout=0.2)
    assert proc.returncode == 3
    assert one_error_line(proc.stderr) == (
        f"error: {state / 'state.db'} stayed locked by another process for 0.2 s: try again\n"
    )
    with Store(state) as store:  # the cancel request did not land
        assert [e.kind for e in store.events(job_id)] == ["job.created"]


def test_a_state_database_of_a_newer_version_exits_3(tmp_path, stored_job):
    state, _ = stored_job
    with contextlib.closing(sqlite3.connect(state / "state.db", isolation_level=None)) as cx:
        cx.execute("PRAGMA user_version = 999")
    proc = in_a_process("jobs", "list", "--state-dir", state, cwd=tmp_path)
    assert proc.returncode == 3
    assert "was written by a newer fasttrack-gitops (schema 999" in one_error_line(proc.stderr)


def test_a_revision_that_names_nothing_exits_2(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines/p.yaml").write_text(MINIMAL)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipelines")
    proc = in_a_process("run", "pipelines/p.yaml", "--rev", "no-such-branch", "--state-dir", tmp_path / "s", cwd=repo)
    assert proc.returncode == 2
    assert "revision 'no-such-branch' not found" in one_error_line(proc.stderr)


def test_a_job_id_that_names_no_job_exits_2(capsys, stored_job):
    state, _ = stored_job
    code, out, err = cli(capsys, "jobs", "show", "no-such-job", "--state-dir", str(state))
    assert (code, out) == (2, "")
    assert one_error_line(err) == f"error: no job 'no-such-job' in {state}\n"


@pytest.mark.parametrize("command", [[], ["run"], ["ci"]])
def test_the_help_names_every_exit_code(capsys, command):
    code, out, _ = cli(capsys, *command, "--help")
    text = " ".join(out.split())
    assert code == 0
    assert re.search(r"\b1 when (a job|it) failed|\b1 a failed validation or job", text), text
    assert re.search(r"\b2 (on )?a (usage|configuration)( or configuration)? error", text), text
    assert re.search(r"\b3 (on )?an operational", text), text


# --- lazy imports: a process shows what it loaded ----------------------------------------


def imported_modules(*argv: str, cwd: Path) -> set[str]:
    code = textwrap.dedent(f"""
        import json, sys
        from fasttrack_gitops.cli import main
        code = main({list(argv)!r})
        print("MODULES=" + json.dumps(sorted(sys.modules)))
        sys.exit(code)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("MODULES="))
    return set(json.loads(line[len("MODULES=") :]))


def _top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_help_imports_no_network_git_server_or_validation_stack(tmp_path):
    loaded = _top_level(imported_modules("--help", cwd=tmp_path))
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded.isdisjoint({"jsonschema", "jsonschema_rs", "yaml"}), sorted(loaded)


def test_validate_imports_no_network_git_or_server_stack(examples_repo):
    loaded = imported_modules("validate", str(examples_repo), cwd=examples_repo)
    top = _top_level(loaded)
    assert top.isdisjoint(HEAVY), sorted(top & set(HEAVY))
    assert "asyncio.subprocess" not in loaded
    assert {"yaml", "fasttrack_gitops.core.pipeline.schema"} <= top | loaded  # it did validate


# --- a reader that leaves early ------------------------------------------------------------


def _run_into_closed_pipe(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        return subprocess.run(
            [sys.executable, "-m", "fasttrack_gitops", *argv],
            cwd=cwd,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)


def test_output_into_a_closed_pipe_shows_no_traceback(examples_repo):
    proc = _run_into_closed_pipe("schema", cwd=examples_repo)
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr


def test_output_into_a_closed_pipe_is_not_a_failure(examples_repo):
    proc = _run_into_closed_pipe("graph", "pipelines/train-compare.yaml", cwd=examples_repo)
    assert proc.returncode == 0
