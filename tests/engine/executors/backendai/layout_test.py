"""The Backend.AI session's startup script: what it refuses, and what a real sh makes of it.

The script runs against a folder laid out like the pipeline data folder,
found through $BACKENDAI_VFOLDER_FTG_FOLDER as on the realstack agent without
a sandbox.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from engine.executors.backendai.fixtures import JOB, TREE

from fasttrack_gitops.core import cache
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


# -- the outputs' manifest, written by the session after the command succeeded ---------------------------------


def manifest_of(tmp_path: Path, task: str = "train", job: str = JOB) -> Path:
    return tmp_path / "folder" / "jobs" / job / datafolder.task_manifest(task)


def expected_manifest(outputs: Path) -> str:
    """core.cache.manifest_text of the folder's files, hashed here with hashlib."""
    files = [
        cache.OutputFile(
            p.relative_to(outputs).as_posix(), p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for p in outputs.rglob("*")
        if p.is_file()
    ]
    return cache.manifest_text(files)


def test_the_manifest_lists_every_output_file_as_core_cache_does(tmp_path):
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=1, tree=TREE, manifest=True)
    command = (
        'cd "$PIPELINE_OUTPUT_ROOT" && mkdir -p "sub dir/deep" a && printf "x" > a.txt && printf "" > empty && '
        "printf 'y%.0s' $(seq 1 5000) > 'sub dir/deep/big file' && echo b > a/b && echo back > 'back\\slash' && "
        "echo lead > ' lead' && echo '-' > -dash && echo u > 'ünï' && echo done"
    )
    done = run_script(tmp_path, script, command)
    assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr
    outputs = tmp_path / "folder" / "jobs" / JOB / "tasks" / "train" / "outputs"
    text = manifest_of(tmp_path).read_text()
    assert text == expected_manifest(outputs) and len(text.splitlines()) == 8
    assert [f.path for f in cache.parse_manifest(text)][:3] == [" lead", "-dash", "a.txt"]  # path bytes order
    assert sorted(p.name for p in manifest_of(tmp_path).parent.iterdir()) == ["manifest.txt", "outputs"]  # no temp


def test_empty_outputs_have_an_empty_manifest_and_no_manifest_leaves_the_exec_path(tmp_path):
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=1, tree=TREE, manifest=True)
    assert run_script(tmp_path, script, "true").returncode == 0
    assert manifest_of(tmp_path).read_bytes() == b""
    plain = layout.startup_script(job_id=JOB, task="other", dependencies=(), attempt=1, tree=TREE)
    assert 'exec /bin/sh -c "$ftg_command"' in plain and "ftg_list" not in plain
    assert run_script(tmp_path, plain, "echo x > $PIPELINE_OUTPUT_ROOT/x").returncode == 0
    assert not manifest_of(tmp_path, "other").exists()


@pytest.mark.parametrize(
    "make, reason",
    [
        ('ln -s /etc/passwd "$PIPELINE_OUTPUT_ROOT/link"', "outputs/link is a symbolic link"),
        ('mkdir "$PIPELINE_OUTPUT_ROOT/d" && mkfifo "$PIPELINE_OUTPUT_ROOT/d/pipe"', "outputs/d/pipe is a FIFO"),
        ('touch "$PIPELINE_OUTPUT_ROOT/two\nlines"', "outputs/two?lines has a name with a line break"),
        ('touch "$PIPELINE_OUTPUT_ROOT/cr\r"', "outputs/cr? has a name with a line break"),
        (
            "touch \"$PIPELINE_OUTPUT_ROOT/ls$(printf '\\342\\200\\250')x\"",
            "outputs/ls\u2028x has a name with a line break",
        ),
    ],
)
def test_outputs_that_cannot_be_cached_get_one_reason_line(tmp_path, make, reason):
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=1, tree=TREE, manifest=True)
    done = run_script(tmp_path, script, f'echo fine > "$PIPELINE_OUTPUT_ROOT/ok"; {make}')
    assert done.returncode == 0, done.stderr
    assert manifest_of(tmp_path).read_text() == f"! {reason}; the outputs are not cached\n"


def test_a_failing_command_writes_no_manifest_and_keeps_its_exit_code(tmp_path):
    job = tmp_path / "folder" / "jobs" / JOB / "tasks" / "train"
    job.mkdir(parents=True)
    (job / "manifest.txt").write_text("from an earlier attempt\n")
    script = layout.startup_script(job_id=JOB, task="train", dependencies=(), attempt=2, tree=TREE, manifest=True)
    done = run_script(tmp_path, script, 'echo x > "$PIPELINE_OUTPUT_ROOT/x"; exit 3')
    assert done.returncode == 3
    assert not manifest_of(tmp_path).exists()


def test_an_input_is_read_from_the_job_that_made_it(tmp_path):
    old = "20261101-090000-0ld0ld"
    made = tmp_path / "folder" / "jobs" / old / "tasks" / "prep" / "outputs"
    made.mkdir(parents=True)
    (made / "data.txt").write_text("from the earlier job\n")
    script = layout.startup_script(
        job_id=JOB, task="train", dependencies=("prep", "b"), attempt=1, tree=TREE, input_jobs=(old, JOB)
    )
    done = run_script(tmp_path, script, 'cat "$PIPELINE_INPUT1/data.txt"; echo "$PIPELINE_INPUT1|$PIPELINE_INPUT2"')
    assert done.returncode == 0, done.stderr
    job = tmp_path / "folder" / "jobs" / JOB
    assert done.stdout.splitlines() == ["from the earlier job", f"{made}|{job}/tasks/b/outputs"]
    assert not (job / "tasks" / "prep").exists()  # nothing copied, nothing made up in this job
    (made / "data.txt").unlink()
    made.rmdir()
    done = run_script(tmp_path, script, "echo never")
    assert done.returncode == layout.SETUP_FAILED and "never" not in done.stdout
    assert f"the outputs of 'prep' reused from job {old} are gone" in done.stderr
    with pytest.raises(ValueError, match="1 input jobs for 2 dependencies"):
        layout.startup_script(job_id=JOB, task="t", dependencies=("a", "b"), attempt=1, tree=TREE, input_jobs=(old,))
