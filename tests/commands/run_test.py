"""`fasttrack-gitops run`: real git repositories with real commits, a real state folder, real processes.

Most tests call `cli.main` in-process (capsys); what only a process shows
(kill -9, Ctrl-C, two runners at once) runs the installed console script.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import PROJECT, console_script, git, require_bwrap, wait_until
from engine.executors.local_fixtures import MARK, marked, none_marked_within

from fasttrack_gitops.cli import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: p
tasks:
  - name: a
    code: tasks/a
    command: cat msg.txt
"""


# -- helpers -------------------------------------------------------------------------------------


def cli(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one in-process command."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def clean(err: str) -> None:
    """Bad input is one clear message: no traceback, no 'internal error'."""
    assert "Traceback" not in err
    assert "internal error" not in err


def jobs(capsys, state: Path) -> list[dict]:
    """`jobs list --format json`: the store is still readable; the records, newest first."""
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", state, "--format", "json", "--limit", "100")
    assert code == 0, err
    return json.loads(out)


def show(capsys, state: Path, job_id: str) -> dict:
    code, out, err = cli(capsys, "jobs", "show", job_id, "--state-dir", state, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def logs(capsys, state: Path, job_id: str, task: str) -> str:
    code, out, err = cli(capsys, "jobs", "logs", job_id, task, "--state-dir", state)
    assert code == 0, err
    return out


def run_json(capsys, *args) -> tuple[int, dict, str]:
    code, out, err = cli(capsys, "run", *args, "--format", "json")
    clean(err)
    return code, json.loads(out), err


def commit(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def put(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_repo(root: Path, files: dict[str, str]) -> str:
    """A git repository at root with the files in one commit; the commit id."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for relpath, text in files.items():
        put(root, relpath, text)
    return commit(root, "first")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A pipeline repository with pipelines/p.yaml (task a: `cat msg.txt` in tasks/a), committed."""
    root = tmp_path / "repo"
    make_repo(
        root, {"pipelines/p.yaml": PIPELINE, "tasks/a/msg.txt": "committed\n", "README.txt": "the repository root\n"}
    )
    return root


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def environment() -> dict[str, str]:
    """Our environment without secrets, for the console script."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FTG_")}


# -- the examples repository ---------------------------------------------------------------------


def project_head() -> str:
    """This project's HEAD commit (read-only)."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_examples_repository_runs(capsys, state: Path):
    before = project_head()
    code, record, _ = run_json(capsys, PROJECT / "examples-repo/pipelines/train-compare.yaml", "--state-dir", state)
    after = project_head()  # others may commit meanwhile

    assert code == 0, record
    assert record["status"] == "succeeded"
    assert record["pipeline"] == "train-compare"
    assert record["pipeline_path"] == "pipelines/train-compare.yaml"
    assert record["source"] == "commit"
    assert record["dirty"] is False
    assert record["commit"] in {before, after}
    assert record["id"]
    assert [t["name"] for t in record["tasks"]] == ["prepare-data", "train-logreg", "train-mlp", "compare", "report"]
    for task in record["tasks"]:
        assert task["status"] == "succeeded", task
        assert task["exit_code"] == 0
        assert [a["outcome"] for a in task["attempts"]] == ["succeeded"]
        assert [a["exit_code"] for a in task["attempts"]] == [0]
    assert [j["id"] for j in jobs(capsys, state)] == [record["id"]]


# -- what runs: commit, work tree, older revision, monorepo, unversioned -------------------------


def test_run_uses_the_committed_code_not_the_working_tree(capsys, repo: Path, state: Path, monkeypatch):
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "tasks/a/msg.txt").write_text("uncommitted\n")
    monkeypatch.chdir(repo)

    code, record, _ = run_json(capsys, "pipelines/p.yaml", "--state-dir", state)

    assert code == 0
    assert record["status"] == "succeeded"
    assert record["source"] == "commit"
    assert record["commit"] == head
    assert record["ref"] == "refs/heads/main"
    assert record["dirty"] is False
    assert record["repository"] == str(repo.resolve())
    assert logs(capsys, state, record["id"], "a") == "committed\n"
    assert (repo / "tasks/a/msg.txt").read_text() == "uncommitted\n"  # the work tree is left alone


def test_worktree_runs_the_uncommitted_content(capsys, repo: Path, state: Path):
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "tasks/a/msg.txt").write_text("uncommitted\n")

    code, record, _ = run_json(capsys, repo / "pipelines/p.yaml", "--worktree", "--state-dir", state)

    assert code == 0
    assert record["source"] == "worktree"
    assert record["dirty"] is True
    assert record["commit"] == head
    assert logs(capsys, state, record["id"], "a") == "uncommitted\n"


def test_worktree_of_a_clean_tree_is_not_dirty(capsys, repo: Path, state: Path):
    code, record, _ = run_json(capsys, repo / "pipelines/p.yaml", "--worktree", "--state-dir", state)

    assert code == 0
    assert record["source"] == "worktree"
    assert record["dirty"] is False
    assert logs(capsys, state, record["id"], "a") == "committed\n"


def test_rev_runs_an_older_commits_pipeline(capsys, repo: Path, state: Path):
    first = git(repo, "rev-parse", "HEAD").strip()
    put(repo, "pipelines/p.yaml", PIPELINE.replace("cat msg.txt", "echo second commit"))
    put(repo, "tasks/a/msg.txt", "second\n")
    second = commit(repo, "second")

    code, old, _ = run_json(capsys, repo / "pipelines/p.yaml", "--rev", "HEAD~1", "--state-dir", state)
    assert code == 0
    assert old["commit"] == first
    assert logs(capsys, state, old["id"], "a") == "committed\n"

    code, new, _ = run_json(capsys, repo / "pipelines/p.yaml", "--state-dir", state)
    assert code == 0
    assert new["commit"] == second
    assert logs(capsys, state, new["id"], "a") == "second commit\n"


def test_rev_runs_a_pipeline_deleted_since(capsys, repo: Path, state: Path):
    first = git(repo, "rev-parse", "HEAD").strip()
    put(repo, "pipelines/other.yaml", PIPELINE.replace("name: p", "name: other"))
    (repo / "pipelines/p.yaml").unlink()
    commit(repo, "replace p.yaml")

    code, record, _ = run_json(capsys, repo / "pipelines/p.yaml", "--rev", first[:10], "--state-dir", state)

    assert code == 0, record
    assert record["commit"] == first
    assert record["pipeline"] == "p"
    assert logs(capsys, state, record["id"], "a") == "committed\n"


def test_repo_may_be_a_subfolder_of_a_git_repository(capsys, tmp_path: Path, state: Path):
    top = tmp_path / "mono"
    head = make_repo(
        top,
        {
            "tasks/a/msg.txt": "the top's tasks/a\n",
            "ml/pipelines/p.yaml": PIPELINE + "  - name: root\n    command: cat marker.txt\n",
            "ml/tasks/a/msg.txt": "ml's tasks/a\n",
            "ml/marker.txt": "ml's root\n",
        },
    )

    code, record, _ = run_json(capsys, top / "ml/pipelines/p.yaml", "--repo", top / "ml", "--state-dir", state)

    assert code == 0, record
    assert record["commit"] == head
    assert record["pipeline_path"] == "pipelines/p.yaml"
    assert logs(capsys, state, record["id"], "a") == "ml's tasks/a\n"
    assert logs(capsys, state, record["id"], "root") == "ml's root\n"


def test_a_pipeline_outside_any_git_repository_runs_unversioned(capsys, tmp_path: Path, state: Path):
    folder = tmp_path / "loose"
    put(folder, "p.yaml", PIPELINE)
    put(folder, "tasks/a/msg.txt", "loose file\n")
    assert not any((p / ".git").exists() for p in (folder, *folder.parents))

    code, record, _ = run_json(capsys, folder / "p.yaml", "--state-dir", state)

    assert code == 0, record
    assert record["source"] == "unversioned"
    assert record["commit"] is None
    assert record["dirty"] is False
    assert logs(capsys, state, record["id"], "a") == "loose file\n"


def test_a_pipeline_variable_the_data_folder_replaces_is_a_warning(capsys, repo: Path, state: Path):
    put(
        repo,
        "pipelines/env.yaml",
        """\
        version: "26.4.4"
        name: env
        environment:
          envs: {PIPELINE_OUTPUT_ROOT: /elsewhere}
        tasks:
          - name: where
            command: test "$PIPELINE_OUTPUT_ROOT" != /elsewhere
        """,
    )
    commit(repo)

    code, record, err = run_json(capsys, repo / "pipelines/env.yaml", "--state-dir", state)

    assert code == 0, record
    assert "warning: task 'where': PIPELINE_OUTPUT_ROOT is set to the pipeline data folder path" in err


PARAMS = """\
version: "26.4.4"
name: tuned
params:
  - {name: lr, type: number, default: 0.1}
  - {name: note, default: plain}
  - {name: dry, type: boolean, default: false}
tasks:
  - name: fit
    command: printf '%s|%s|%s' "$PARAM_LR" "$PARAM_NOTE" "$PARAM_DRY" > "$PIPELINE_OUTPUT_ROOT/seen.txt"
"""


def test_params_reach_the_tasks_as_environment_variables_and_show_in_the_job(
    capsys, repo: Path, state: Path, tmp_path: Path
):
    put(repo, "pipelines/tuned.yaml", PARAMS)
    commit(repo)
    hostile = "$(touch pwned); `touch pwned2` && rm -rf / ; 'quoted' \"double\" *"

    code, record, _ = run_json(
        capsys, repo / "pipelines/tuned.yaml", "--state-dir", state, "--param", "lr=0.5", "--param", f"note={hostile}"
    )

    assert (code, record["status"]) == (0, "succeeded")
    code, _, err = cli(capsys, "jobs", "outputs", record["id"], "fit", "--download", tmp_path, "--state-dir", state)
    assert code == 0, err
    assert (tmp_path / "fit/seen.txt").read_text() == f"0.5|{hostile}|false"  # as given: no shell ever read it
    assert [*state.rglob("pwned*"), *repo.rglob("pwned*"), *tmp_path.rglob("pwned*")] == []
    shown = show(capsys, state, record["id"])
    assert [(p["name"], p["value"], p["overridden"], p["env"]) for p in shown["params"]] == [
        ("lr", 0.5, True, "PARAM_LR"),
        ("note", hostile, True, "PARAM_NOTE"),
        ("dry", False, False, "PARAM_DRY"),
    ]
    code, text, _ = cli(capsys, "jobs", "show", record["id"], "--state-dir", state)
    assert "params: lr=0.5 (given; default 0.1) · note=" in text and "dry=false" in text


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("epochs=3", "pipeline 'tuned' has no parameter 'epochs'; its parameters: lr, note, dry"),
        ("lr=fast", "parameter 'lr' is a number: 'fast' is not; write e.g. 0.01"),
        ("dry=maybe", "parameter 'dry' is a boolean: 'maybe' is not; write true or false"),
        ("lr", "--param 'lr': write NAME=VALUE"),
    ],
)
def test_an_unknown_parameter_or_a_wrong_type_exits_2_before_anything_runs(
    capsys, repo: Path, state: Path, given, says
):
    put(repo, "pipelines/tuned.yaml", PARAMS)
    commit(repo)

    code, out, err = cli(capsys, "run", repo / "pipelines/tuned.yaml", "--state-dir", state, "--param", given)

    assert code == 2 and says in err, err
    clean(err)
    assert jobs(capsys, state) == []  # no job was made


def test_the_record_and_jobs_show_say_where_a_task_would_run_on_a_cluster(capsys, state: Path):
    code, record, _ = run_json(capsys, PROJECT / "examples-repo/pipelines/train-compare.yaml", "--state-dir", state)
    assert code == 0, record
    mlp = next(t for t in record["tasks"] if t["name"] == "train-mlp")
    assert mlp["image"] == "cr.backend.ai/cloud/ngc-pytorch:24.09-pytorch2.5-py310-cuda12.6"
    assert mlp["resources"] == "cpu 4 · mem 16g · cuda.shares 1"
    assert mlp["cluster"] == {"mode": "single-node", "size": 1}
    assert len(mlp["code_tree"]) == 40

    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--state-dir", state)
    assert code == 0
    assert "ngc-pytorch:24.09-pytorch2.5-py310-cuda12.6" in out and "single-node x1" in out


def test_a_task_without_code_runs_in_the_root_of_the_snapshot(capsys, repo: Path, state: Path):
    put(
        repo,
        "pipelines/root.yaml",
        """\
        version: "26.4.4"
        name: root
        tasks:
          - name: look
            command: cat README.txt; ls tasks
        """,
    )
    commit(repo)
    (repo / "README.txt").write_text("changed, not committed\n")

    code, record, _ = run_json(capsys, repo / "pipelines/root.yaml", "--state-dir", state)

    assert code == 0, record
    assert logs(capsys, state, record["id"], "look") == "the repository root\na\n"


def test_secrets_come_from_ftg_secret_variables_and_stay_masked(capsys, repo: Path, state: Path, monkeypatch):
    put(
        repo,
        "pipelines/s.yaml",
        """\
        version: "26.4.4"
        name: s
        environment:
          envs: {TOKEN: "${{ secrets.API_TOKEN }}"}
        tasks:
          - name: use
            command: echo "token=$TOKEN"; test "$TOKEN" = hunter2-value && echo same
        """,
    )
    commit(repo)
    monkeypatch.setenv("FTG_SECRET_API_TOKEN", "hunter2-value")

    code, out, err = cli(capsys, "run", repo / "pipelines/s.yaml", "--state-dir", state, "--format", "json")

    assert code == 0, err
    assert "hunter2-value" not in out + err
    job_id = json.loads(out)["id"]
    assert logs(capsys, state, job_id, "use") == "token=***\nsame\n"


# -- bad input: one clear message, the right exit code, the store intact -------------------------


def test_a_revision_that_does_not_exist(capsys, repo: Path, state: Path):
    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--rev", "no-such-branch", "--state-dir", state)

    assert code == 2
    assert "no-such-branch" in err
    assert "not found" in err
    clean(err)
    assert out == ""
    assert jobs(capsys, state) == []


def test_a_pipeline_file_absent_at_the_commit(capsys, repo: Path, state: Path):
    put(repo, "pipelines/new.yaml", PIPELINE.replace("name: p", "name: new"))  # in the work tree only

    code, out, err = cli(capsys, "run", repo / "pipelines/new.yaml", "--state-dir", state)

    assert code == 2
    assert "pipelines/new.yaml is not a file" in err
    assert "--worktree" in err
    clean(err)
    assert jobs(capsys, state) == []

    commit(repo)  # now it is in HEAD, but not in HEAD~1
    code, out, err = cli(capsys, "run", repo / "pipelines/new.yaml", "--rev", "HEAD~1", "--state-dir", state)
    assert code == 2
    assert "pipelines/new.yaml is not a file" in err
    clean(err)
    assert jobs(capsys, state) == []


def test_a_code_folder_absent_at_the_commit(capsys, repo: Path, state: Path):
    put(repo, "pipelines/p.yaml", PIPELINE.replace("tasks/a", "tasks/b"))
    commit(repo)  # the pipeline names tasks/b, which is not committed
    put(repo, "tasks/b/msg.txt", "only in the work tree\n")

    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", state)

    assert code == 1
    assert "FT113" in err
    assert "tasks/b" in err
    assert "no job was created" in err
    clean(err)
    assert jobs(capsys, state) == []


def test_an_invalid_pipeline(capsys, repo: Path, state: Path):
    put(repo, "pipelines/p.yaml", PIPELINE.replace("command:", "comand:"))
    commit(repo)

    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", state)

    assert code == 1
    assert "error FT101: unknown key 'comand'" in err
    assert "did you mean 'command'" in err
    assert "pipelines/p.yaml:" in err  # file:line:col, as validate prints it
    assert "no job was created" in err
    clean(err)
    assert jobs(capsys, state) == []


def test_an_unwritable_state_folder(capsys, repo: Path, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")

    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", blocker / "state")

    assert code == 2
    assert "cannot use" in err
    assert str(blocker / "state") in err
    clean(err)
    assert blocker.read_text() == "not a folder\n"


def test_a_database_from_a_newer_version(capsys, repo: Path, state: Path):
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / "state.db")) as cx:
        cx.execute("PRAGMA user_version = 999")

    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", state)

    assert code == 3  # an operational failure: upgrade, or use another state folder
    assert "newer" in err
    clean(err)
    # left as it was: not migrated, nothing written
    with contextlib.closing(sqlite3.connect(state / "state.db")) as cx:
        assert cx.execute("PRAGMA user_version").fetchone()[0] == 999
        assert cx.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", state, "--format", "json")
    assert code == 3 and "newer" in err
    clean(err)


def test_a_task_that_prints_a_gigabyte_leaves_a_capped_log(capsys, tmp_path: Path, state: Path):
    put(
        tmp_path / "big",
        "p.yaml",
        r"""
        version: "26.4.4"
        name: big
        tasks:
          - name: loud
            command: head -c 1000000000 /dev/zero | tr '\0' x; echo; echo the end
        """,
    )
    code, record, _ = run_json(capsys, tmp_path / "big/p.yaml", "--state-dir", state)

    assert code == 0, record
    log = state / "logs" / record["id"] / "loud" / "1.log"
    size = log.stat().st_size
    assert 2 * 2**20 <= size < 2 * 2**20 + 200
    with log.open("rb") as f:
        assert f.read(10) == b"x" * 10
        f.seek(-9, os.SEEK_END)
        assert f.read() == b"\nthe end\n"
    omitted = [line for line in log.read_bytes().split(b"\n") if line.startswith(b"[... ")]
    assert len(omitted) == 1
    assert omitted[0].endswith(b"bytes omitted ...]")
    assert jobs(capsys, state)[0]["status"] == "succeeded"


def test_a_task_that_never_ends_times_out(capsys, tmp_path: Path, state: Path):
    put(
        tmp_path / "slow",
        "p.yaml",
        """\
        version: "26.4.4"
        name: slow
        tasks:
          - name: forever
            command: sleep 300
            timeout: 1
        """,
    )
    started = time.monotonic()

    code, record, _ = run_json(capsys, tmp_path / "slow/p.yaml", "--state-dir", state)

    assert time.monotonic() - started < 10  # the bound is the behaviour: the timeout fires, long before the sleep ends
    assert code == 1
    assert record["status"] == "failed"
    [task] = record["tasks"]
    assert task["status"] == "failed"
    assert [a["outcome"] for a in task["attempts"]] == ["timed_out"]
    assert task["attempts"][0]["message"] == "timed out after 1s"


def test_a_task_that_leaves_a_child_running(capsys, tmp_path: Path, state: Path, monkeypatch):
    outlived = tmp_path / "outlived"  # the child's mark, had the run waited for it to live out its sleep
    put(
        tmp_path / "fork",
        "p.yaml",
        f"""\
        version: "26.4.4"
        name: fork
        tasks:
          - name: parent
            command: (sleep 300; touch {outlived}) & echo started
        """,
    )
    mark = f"fork-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setenv(MARK, mark)  # the task's processes inherit it: found by it, whatever pids they see
    try:
        code, record, _ = run_json(capsys, tmp_path / "fork/p.yaml", "--state-dir", state)

        assert code == 0, record
        assert logs(capsys, state, record["id"], "parent") == "started\n"
        none_marked_within(mark, 1.0)
        assert not outlived.exists()
    finally:
        for pid in marked(mark):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_secret_named_but_not_provided(capsys, repo: Path, state: Path, monkeypatch, tmp_path: Path):
    for name in [k for k in os.environ if k.startswith("FTG_SECRET_")]:
        monkeypatch.delenv(name)
    marker = tmp_path / "ran"
    put(
        repo,
        "pipelines/p.yaml",
        f"""\
        version: "26.4.4"
        name: p
        environment:
          envs: {{TOKEN: "${{{{ secrets.API_TOKEN }}}}"}}
        tasks:
          - name: a
            command: touch {marker}
        """,
    )
    commit(repo)

    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", state)

    assert code == 2
    assert "API_TOKEN" in err
    assert "FTG_SECRET_API_TOKEN" in err
    clean(err)
    assert not marker.exists()
    assert jobs(capsys, state) == []


def test_rev_and_worktree_exclude_each_other(capsys, repo: Path, state: Path):
    code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--rev", "HEAD", "--worktree", "--state-dir", state)

    assert code == 2
    assert "--rev" in err and "--worktree" in err
    clean(err)
    assert jobs(capsys, state) == []


def test_progress_goes_to_the_stderr_of_the_moment(capsys, repo: Path, state: Path):
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        code = main(["run", str(repo / "pipelines/p.yaml"), "--state-dir", str(state)])

    assert code == 0
    assert "a succeeded" in stream.getvalue()


# -- what only a process shows -------------------------------------------------------------------


def start_run(
    pipeline: Path, state: Path, folder: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, Path]:
    """`run` as a subprocess, not on a terminal; (the process, its stderr file)."""
    err = folder / "run.err"
    with open(folder / "run.out", "wb") as out, open(err, "wb") as errf:
        proc = subprocess.Popen(
            [console_script(), "run", str(pipeline), "--state-dir", str(state)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=errf,
            env={**environment(), **(env or {})},
        )
    return proc, err


def running_job(capsys, state: Path, task: str) -> dict | None:
    """The one job's record once `jobs show` reports the task running."""
    if not (state / "state.db").exists():
        return None
    found = jobs(capsys, state)
    if not found:
        return None
    record = show(capsys, state, found[0]["id"])
    states = {t["name"]: t["status"] for t in record["tasks"]}
    return record if states[task] == "running" else None


# What the task leaves running, each in its own way: a background child, a setsid escapee, a double fork (its
# parent gone at once), and the shell itself, ignoring SIGTERM and SIGHUP as its children do.
ESCAPING = "sleep 301 & setsid sleep 302 & (sleep 303 &); trap '' TERM HUP; sleep 304"


@pytest.mark.parametrize("bwrap", [False, True], ids=["without-bwrap", "under-bwrap"])
def test_a_runner_killed_with_sigkill_leaves_no_task_process_and_an_interrupted_job(
    capsys, tmp_path: Path, state: Path, bwrap: bool
):
    if bwrap:
        require_bwrap()
    put(
        tmp_path / "kill",
        "p.yaml",
        f"""\
        version: "26.4.4"
        name: killed
        tasks:
          - name: long
            command: {ESCAPING}
        """,
    )
    # Every process of the run (the runner, its launcher, the task's) inherits the mark: found by it from /proc,
    # not by the pids the task sees (under bubblewrap, its PID namespace's).
    mark = f"run-{os.getpid()}-{tmp_path.name}"
    env = {MARK: mark, "FTG_BWRAP": "1" if bwrap else "0"}
    proc, err = start_run(tmp_path / "kill/p.yaml", state, tmp_path, env)
    try:
        record = wait_until(lambda: running_job(capsys, state, "long"), what="the task running")
        wanted = {"sleep 301", "sleep 302", "sleep 303", "sleep 304"}
        before = wait_until(
            lambda: wanted <= set(found := marked(mark).values()) and found, what=lambda: f"{wanted} in {marked(mark)}"
        )
        assert record["status"] == "running"

        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

        none_marked_within(mark, 1.0)  # not one of {before}
        assert before
        after = show(capsys, state, record["id"])
        assert after["status"] == "interrupted"
        assert [t["status"] for t in after["tasks"]] == ["running"]  # as the dead runner left it
        listed = jobs(capsys, state)
        assert [(j["id"], j["status"]) for j in listed] == [(record["id"], "interrupted")]
        with contextlib.closing(sqlite3.connect(state / "state.db")) as cx:
            assert cx.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in marked(mark):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_cancels_the_job(capsys, tmp_path: Path, state: Path):
    put(
        tmp_path / "int",
        "p.yaml",
        """\
        version: "26.4.4"
        name: interrupted
        tasks:
          - name: long
            command: sleep 30
          - name: next
            dependencies: [long]
            command: echo never
        """,
    )
    proc, err = start_run(tmp_path / "int/p.yaml", state, tmp_path)
    try:
        record = wait_until(lambda: running_job(capsys, state, "long"), what="the task running")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 1

        after = show(capsys, state, record["id"])
        assert after["status"] == "cancelled"
        assert {t["name"]: t["status"] for t in after["tasks"]} == {"long": "cancelled", "next": "cancelled"}
        assert [a["outcome"] for a in after["tasks"][0]["attempts"]] == ["cancelled"]
        text = err.read_text()
        assert "cancelling the job" in text
        clean(text)
        lines = text.splitlines()
        assert lines[0] == f"job {record['id']}: interrupted (2 tasks)"
        assert any(line.endswith("long running attempt 1") for line in lines)  # one line per change
        assert any(line.endswith("next cancelled: the job was cancelled") for line in lines)
        assert "\x1b[" not in text  # no terminal codes: not a terminal
        assert (tmp_path / "run.out").read_text().startswith(f"job {record['id']}  interrupted  cancelled")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_runs_against_one_state_folder_at_once(capsys, repo: Path, state: Path, tmp_path: Path):
    put(repo, "pipelines/p.yaml", PIPELINE.replace("cat msg.txt", "sleep 0.5; cat msg.txt"))
    commit(repo)
    # The database exists already (two runs on a brand-new one race: see the next test).
    assert jobs(capsys, state) == []
    procs = []
    for n in (1, 2):
        folder = tmp_path / f"runner{n}"
        folder.mkdir()
        procs.append(start_run(repo / "pipelines/p.yaml", state, folder)[0])
    try:
        codes = [p.wait(timeout=30) for p in procs]
        errors = [(tmp_path / f"runner{n}" / "run.err").read_text() for n in (1, 2)]
        assert codes == [0, 0], errors
        for text in errors:
            clean(text)
        listed = jobs(capsys, state)
        assert len(listed) == 2
        assert len({j["id"] for j in listed}) == 2
        assert [j["status"] for j in listed] == ["succeeded", "succeeded"]
        for j in listed:
            assert logs(capsys, state, j["id"], "a") == "committed\n"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_new_state_database_that_another_process_is_writing_is_waited_for(capsys, repo: Path, state: Path):
    state.mkdir()
    other = sqlite3.connect(state / "state.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as another runner's first open holds it, for a moment
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        started = time.monotonic()
        code, out, err = cli(capsys, "run", repo / "pipelines/p.yaml", "--state-dir", state)
        took = time.monotonic() - started
    finally:
        release.join()
        other.close()

    assert code == 0, f"{err} (after {took:.2f} s)"
