"""`run` with the task cache: real commits, real processes, a real state folder; what runs is counted by the tasks.

Each task appends its name to runs.log outside the state folder, so "ran" and
"reused" are what the processes did, not what the store says.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from commands.run_test import clean, cli, commit, make_repo, put

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: chain
cache: true
environment:
  envs:
    RUNS: {runs}
tasks:
  - name: prepare
    code: tasks/prepare
    command: echo prepare >> "$RUNS"; cp data.txt "$PIPELINE_OUTPUT_ROOT/data.txt"
  - name: train
    code: tasks/train
    dependencies: [prepare]
    command: echo train >> "$RUNS"; sh train.sh
  - name: report
    code: tasks/report  # without a code: folder a task runs in the whole repository: any commit changes its key
    dependencies: [train]
    command: echo report >> "$RUNS"; cat "$PIPELINE_INPUT1/model.txt" > "$PIPELINE_OUTPUT_ROOT/report.txt"
"""
TRAIN = 'tr a-z A-Z < "$PIPELINE_INPUT1/data.txt" > "$PIPELINE_OUTPUT_ROOT/model.txt"\n'


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(repository, state folder, runs.log) for a three-task chain, every task cached."""
    runs = tmp_path / "runs.log"
    root = tmp_path / "repo"
    make_repo(
        root,
        {
            "pipelines/chain.yaml": PIPELINE.format(runs=runs),
            "tasks/prepare/data.txt": "abc\n",
            "tasks/train/train.sh": TRAIN,
            "tasks/report/README": "the report task\n",
        },
    )
    return root, tmp_path / "state", runs


def run(capsys, repo: Path, state: Path, *extra) -> tuple[int, dict, str]:
    code, out, err = cli(capsys, "run", repo / "pipelines/chain.yaml", "--state-dir", state, "--format", "json", *extra)
    clean(err)
    return code, json.loads(out), err


def ran(runs: Path) -> list[str]:
    """The tasks that ran since the last look (and forget them)."""
    names = runs.read_text().split() if runs.exists() else []
    runs.write_text("")
    return names


def states(record: dict) -> dict[str, str]:
    return {t["name"]: t["status"] for t in record["tasks"]}


def test_an_unchanged_rerun_reuses_every_task_and_runs_nothing(capsys, chain):
    repo, state, runs = chain
    code, first, _ = run(capsys, repo, state)
    assert (code, first["status"]) == (0, "succeeded")
    assert ran(runs) == ["prepare", "train", "report"]

    code, second, _ = run(capsys, repo, state)
    assert (code, second["status"]) == (0, "succeeded")
    assert ran(runs) == []  # no process ran
    assert states(second) == {"prepare": "reused", "train": "reused", "report": "reused"}
    assert all(t["reused_from"] == first["id"] and t["attempts"] == [] for t in second["tasks"])
    # the dependants' outputs are there, as hard links to the first job's (no copy)
    old = state / "data" / first["id"] / "tasks/report/outputs/report.txt"
    new = state / "data" / second["id"] / "tasks/report/outputs/report.txt"
    assert new.read_text() == "ABC\n"
    assert os.stat(new).st_ino == os.stat(old).st_ino
    assert not os.stat(new).st_mode & stat.S_IWUSR  # read-only: a dependant cannot change the cache in place


def test_a_changed_task_runs_with_its_dependants_and_byte_identical_outputs_cut_off(capsys, chain):
    repo, state, runs = chain
    run(capsys, repo, state)
    ran(runs)

    put(repo, "tasks/train/train.sh", TRAIN.replace("tr a-z A-Z", "tr a-c A-C"))  # other code, the same output
    commit(repo, "train: same output")
    code, record, _ = run(capsys, repo, state)
    assert code == 0
    assert ran(runs) == ["train"]  # early cutoff: report's inputs did not change
    assert states(record) == {"prepare": "reused", "train": "succeeded", "report": "reused"}

    put(repo, "tasks/train/train.sh", TRAIN.replace("tr a-z A-Z", "rev"))  # a different output
    commit(repo, "train: another model")
    code, record, _ = run(capsys, repo, state)
    assert code == 0
    assert ran(runs) == ["train", "report"]
    assert states(record)["prepare"] == "reused"

    code, out, err = cli(capsys, "jobs", "show", record["id"], "--cache", "--state-dir", state)
    assert code == 0, err
    assert "train: run: code of tasks/train changed (" in out


def test_no_cache_runs_everything_and_says_why(capsys, chain):
    repo, state, runs = chain
    run(capsys, repo, state)
    ran(runs)
    code, record, _ = run(capsys, repo, state, "--no-cache")
    assert code == 0
    assert ran(runs) == ["prepare", "train", "report"]
    assert set(states(record).values()) == {"succeeded"}
    assert record["trigger"]["no_cache"] is True
    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--cache", "--state-dir", state, "--format", "json")
    assert json.loads(out)["cache"]["prepare"]["decision"] == "run: --no-cache"


def test_a_secret_enters_the_key_by_name_never_by_value(capsys, chain, tmp_path):
    repo, state, runs = chain
    put(
        repo,
        "pipelines/chain.yaml",
        PIPELINE.format(runs=runs).replace("RUNS: ", "TOKEN: ${{ secrets.TOKEN }}\n    RUNS: "),
    )
    commit(repo, "a secret")
    secrets = tmp_path / "secrets"
    secrets.write_text("TOKEN=first-value-1234\n")
    run(capsys, repo, state, "--secrets-file", secrets)
    ran(runs)
    secrets.write_text("TOKEN=rotated-value-5678\n")
    code, record, _ = run(capsys, repo, state, "--secrets-file", secrets)
    assert code == 0 and ran(runs) == []  # a rotated token does not re-run anything
    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--cache", "--state-dir", state, "--format", "json")
    assert "${{ secrets.TOKEN }}" in out
    assert "first-value" not in out and "rotated-value" not in out
    cache_files = "".join(p.read_text() for p in (state / "cache").rglob("*.json"))
    assert "${{ secrets.TOKEN }}" in cache_files and "value-" not in cache_files


def test_outputs_with_a_symlink_are_not_cached_and_the_run_says_so(capsys, chain):
    repo, state, runs = chain
    put(
        repo,
        "pipelines/chain.yaml",
        PIPELINE.format(runs=runs).replace(
            'cp data.txt "$PIPELINE_OUTPUT_ROOT/data.txt"',
            'cp data.txt "$PIPELINE_OUTPUT_ROOT/data.txt"; ln -s /etc/passwd "$PIPELINE_OUTPUT_ROOT/passwd"',
        ),
    )
    commit(repo, "a symlink")
    code, _, err = run(capsys, repo, state)
    assert code == 0
    assert "warning: task 'prepare': outputs of task 'prepare' hold a symlink, passwd -> /etc/passwd" in err
    ran(runs)
    code, record, _ = run(capsys, repo, state)
    assert code == 0
    # prepare has no entry and no digest, so train cannot be keyed; train's outputs come out the same: report is reused
    assert ran(runs) == ["prepare", "train"]
    assert states(record)["report"] == "reused"
    assert all(json.loads(p.read_text())["task"] != "prepare" for p in (state / "cache").rglob("entries/*.json"))


def test_deleted_outputs_are_a_miss_and_the_task_runs_again(capsys, chain):
    repo, state, runs = chain
    code, first, _ = run(capsys, repo, state)
    ran(runs)
    for path in sorted((state / "data" / first["id"]).rglob("*"), reverse=True):  # as a retention sweep would
        if path.is_file():
            path.chmod(0o644)
            path.unlink()
        elif path.is_dir():
            path.rmdir()
    code, record, _ = run(capsys, repo, state)
    assert code == 0
    assert ran(runs) == ["prepare", "train", "report"]
    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--cache", "--state-dir", state)
    assert f"prepare: run: the outputs of job {first['id']} were deleted" in out
    ran(runs)
    code, record, _ = run(capsys, repo, state)  # the new entries replaced the stale ones
    assert ran(runs) == [] and set(states(record).values()) == {"reused"}


def test_a_damaged_index_file_is_a_miss_with_a_warning_and_is_replaced(capsys, chain):
    repo, state, runs = chain
    run(capsys, repo, state)
    ran(runs)
    entries = sorted((state / "cache").rglob("entries/*.json"))
    assert len(entries) == 3
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:40])  # truncated, as a crash or a full disk leaves it
    code, record, err = run(capsys, repo, state)
    assert code == 0 and ran(runs) == ["prepare", "train", "report"]
    assert "is damaged" in err
    code, record, _ = run(capsys, repo, state)
    assert ran(runs) == [] and set(states(record).values()) == {"reused"}


def test_a_cache_path_that_matches_nothing_is_a_warning_and_paths_enter_the_key(capsys, chain):
    repo, state, runs = chain
    text = PIPELINE.format(runs=runs).replace(
        "    code: tasks/train\n", "    code: tasks/train\n    cache: {paths: [data/labels.csv, configs/**]}\n"
    )
    put(repo, "pipelines/chain.yaml", text)
    put(repo, "data/labels.csv", "cat,dog\n")
    commit(repo, "labels")
    code, _, err = run(capsys, repo, state)
    assert code == 0
    assert "cache path 'configs/**' matches no file at this commit" in err
    ran(runs)
    put(repo, "data/labels.csv", "cat,dog,bird\n")
    commit(repo, "more labels")
    code, record, _ = run(capsys, repo, state)
    assert ran(runs) == ["train"]  # its output did not change: report is cut off
    code, out, _ = cli(capsys, "jobs", "show", record["id"], "--cache", "--state-dir", state)
    assert "train: run: data/labels.csv changed (" in out
