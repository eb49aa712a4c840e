"""The Backend.AI session's startup script: what it refuses, and what a real sh makes of it.

The script runs against a folder laid out like the pipeline data folder,
found through $BACKENDAI_VFOLDER_FTG_FOLDER as on the realstack agent without
a sandbox.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from engine.executors.backendai.fixtures import JOB, TREE

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.backendai import layout

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the script is POSIX sh")

HOSTILE = ["x'; touch pwned; '", "$(touch pwned)", "`touch pwned`", "a\nb; touch pwned", "-rf", "*", '"; exit 9; "']


# -- the startup script ---------------------------------------------------------------------------------------


def test_a_name_that_is_not_one_folder_is_refused():
    for bad in ("", ".", "..", "a/b", "a\0b"):
        with pytest.raises(ValueError):
            layout.startup_script(job_id=JOB, task=bad, dependencies=(), attempt=1, tree=TREE)


# -- the startup script, run by a real sh against a folder laid out like the pipeline folder -----------------------


def run_script(tmp_path: Path, script: str, command: str, *, tree: str = TREE, env=None) -> subprocess.CompletedProcess:
    root, cwd = tmp_path / "folder", tmp_path / "kernel"
    code = root / "code" / tree
    code.mkdir(parents=True, exist_ok=True)
    (code / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")  # 0644, as the upload leaves it
    (code / layout.CODE_MARKER).write_bytes(layout.code_marker(["tool.sh"]))
    cwd.mkdir(exist_ok=True)
    environ = {
        "PATH": os.environ["PATH"],
        datafolder.FOLDER_VARIABLE: str(root),
        layout.COMMAND_VARIABLE: command,
        **(env or {}),
    }
    return subprocess.run(
        ["/bin/sh", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True, timeout=10, check=False
    )


def test_the_script_lays_out_the_job_and_runs_the_command_in_a_copy_of_the_code(tmp_path):
    script = layout.startup_script(job_id=JOB, task="train", dependencies=("b", "a"), attempt=1, tree=TREE)
    job = tmp_path / "folder" / "jobs" / JOB
    (job / "tasks" / "a" / "outputs").mkdir(parents=True)
    (job / "tasks" / "a" / "outputs" / "data.txt").write_text("from a\n")
    done = run_script(
        tmp_path,
        script,
        'cat "$PIPELINE_INPUT2/data.txt"; ./tool.sh; echo out > "$PIPELINE_OUTPUT_ROOT/o"; '
        'echo "$PIPELINE_INPUT_ROOT|$PIPELINE_VFROOT|$PWD"; echo "[$FTG_TASK_COMMAND]"; '
        "cat code.txt 2>/dev/null; ls -a",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["from a", "tool ran"]
    assert lines[2] == f"{job}/tasks/b/outputs|{job}/vfroot|{tmp_path}/kernel/{layout.CODE_COPY}"
    assert lines[3] == "[]"  # the command's variable is not passed on
    assert layout.CODE_MARKER not in lines and "tool.sh" in lines
    assert (job / "tasks" / "train" / "outputs" / "o").read_text() == "out\n"
    assert (job / "tasks" / "b" / "outputs").is_dir() and (job / "vfroot").is_dir()  # an input always exists
    assert not (tmp_path / "folder" / "code" / TREE / "o").exists()  # the shared tree is never written


def test_a_retry_starts_from_empty_outputs_and_the_exit_code_is_the_commands(tmp_path):
    outputs = tmp_path / "folder" / "jobs" / JOB / "tasks" / "train" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "stale").write_text("from attempt 1")
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=2, tree=TREE)
    done = run_script(tmp_path, script, "ls $PIPELINE_OUTPUT_ROOT; exit 7")
    assert (done.returncode, done.stdout) == (7, "")


def test_a_missing_folder_or_code_fails_the_setup_with_a_reason(tmp_path):
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=1, tree="b" * 40)
    done = run_script(tmp_path, script, "echo never")
    assert done.returncode == layout.SETUP_FAILED and "never" not in done.stdout
    assert "fasttrack-gitops: the task's code is not in the pipeline data folder" in done.stderr
    done = run_script(tmp_path, script, "echo never", env={datafolder.FOLDER_VARIABLE: ""})
    assert done.returncode == layout.SETUP_FAILED and "mounted neither at /pipeline/ftg-folder" in done.stderr


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_and_commands_stay_quoted(tmp_path, name):
    tree = name.replace("/", "_")
    script = layout.startup_script(job_id=name, task=name, dependencies=(name, "ok"), attempt=2, tree=tree)
    command = f"printf '%s\\n' {shlex.quote(name)}; echo \"$PIPELINE_INPUT1\""
    done = run_script(tmp_path, script, command, tree=tree)
    assert done.returncode == 0, done.stderr
    job = tmp_path / "folder" / "jobs" / name
    assert done.stdout == f"{name}\n{job}/tasks/{name}/outputs\n"
    assert (job / "tasks" / name / "outputs").is_dir()
    assert not list(tmp_path.rglob("pwned"))  # nothing ran that the names or the command did not say
