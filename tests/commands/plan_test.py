"""`plan`: what a run would run and reuse, and why, told before it runs; real commits, real runs, a real cache.

The chain (prepare -> train -> report, every task cached) is run_cache_test's:
each task appends its name to runs.log, so "plan started nothing" is what
the processes did, not what the store says.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from commands.run_cache_test import PIPELINE, TRAIN, ran
from commands.run_cache_test import chain as chain  # a fixture
from commands.run_test import clean, cli, commit, put
from conftest import git

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


def plan(capsys, repo: Path, state: Path, *extra) -> tuple[int, dict, str]:
    code, out, err = cli(
        capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state, "--format", "json", *extra
    )
    clean(err)
    return code, (json.loads(out) if code == 0 else {}), err


def run(capsys, repo: Path, state: Path, *extra) -> dict:
    code, out, err = cli(capsys, "run", repo / "pipelines/chain.yaml", "--state-dir", state, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def actions(forecast: dict) -> dict[str, tuple[str, str]]:
    return {t["name"]: (t["action"], t["reason"]) for t in forecast["tasks"]}


def jobs_in(capsys, state: Path) -> int:
    code, out, _ = cli(capsys, "jobs", "list", "--state-dir", state, "--format", "json")
    return len(json.loads(out)) if code == 0 else 0


def test_before_any_run_every_task_runs_and_nothing_is_started_or_stored(capsys, chain):
    repo, state, runs = chain
    code, forecast, _ = plan(capsys, repo, state)
    assert code == 0
    assert actions(forecast) == {
        "prepare": ("run", "no earlier run with this key"),
        "train": ("run", "input 'prepare' will run"),
        "report": ("run", "input 'train' will run"),
    }
    assert forecast["pipeline"] == "chain"
    assert forecast["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert forecast["critical_path"] == ["prepare", "train", "report"]
    assert forecast["estimate_s"] is None  # no earlier run to estimate from
    assert ran(runs) == []  # no task ran
    assert jobs_in(capsys, state) == 0  # and no job was stored


def test_after_a_run_every_task_is_reused_from_that_job_with_its_duration(capsys, chain):
    repo, state, runs = chain
    first = run(capsys, repo, state)
    ran(runs)

    code, forecast, _ = plan(capsys, repo, state)
    assert code == 0
    assert {t["name"]: (t["action"], t["reuse_from"]) for t in forecast["tasks"]} == dict.fromkeys(
        ("prepare", "train", "report"), ("reuse", first["id"])
    )
    commit_id = first["commit"][:7]
    assert all(t["reason"] == f"reused from job {first['id']} (commit {commit_id})" for t in forecast["tasks"])
    # The past durations are the estimates; reused tasks cost nothing and save their resources.
    assert all(t["estimate_s"] is not None and t["estimate_s"] >= 0 for t in forecast["tasks"])
    assert forecast["estimate_s"] == 0.0 and forecast["critical_path"] == []
    assert forecast["resources"]["run"] == {"cpu_hours": 0.0, "gpu_hours": 0.0}
    assert forecast["resources"]["saved"]["cpu_hours"] > 0
    assert forecast["counts"] == {"run": 0, "reuse": 3, "skip": 0}
    assert ran(runs) == []


def test_a_changed_task_runs_naming_its_code_and_its_dependants_wait_for_it(capsys, chain):
    repo, state, runs = chain
    run(capsys, repo, state)
    ran(runs)
    old_tree = git(repo, "rev-parse", "HEAD:tasks/train").strip()
    put(repo, "tasks/train/train.sh", TRAIN.replace("tr a-z A-Z", "rev"))
    commit(repo, "train: another model")
    new_tree = git(repo, "rev-parse", "HEAD:tasks/train").strip()

    code, forecast, _ = plan(capsys, repo, state)
    assert code == 0
    found = actions(forecast)
    assert found["prepare"][0] == "reuse"
    assert found["train"] == ("run", f"code of tasks/train changed ({old_tree[:7]} → {new_tree[:7]})")
    # report has an entry: if train rewrites byte-identical outputs, it is reused after all (early cutoff)
    assert found["report"] == ("run", "input 'train' will run; reused if its outputs come out byte-identical")
    assert forecast["critical_path"] == ["train", "report"]

    # What the run then does agrees with the plan.
    record = run(capsys, repo, state)
    assert ran(runs) == ["train", "report"]
    assert {t["name"]: t["status"] for t in record["tasks"]}["prepare"] == "reused"


def test_base_says_what_changed_since_another_revision(capsys, chain):
    repo, state, _ = chain
    put(repo, "tasks/prepare/data.txt", "xyz\n")
    commit(repo, "new data")

    code, forecast, _ = plan(capsys, repo, state, "--base", "HEAD~1")
    assert code == 0
    since = {t["name"]: t["since_base"] for t in forecast["tasks"]}
    assert len(since["prepare"]) == 1 and since["prepare"][0].startswith("code of tasks/prepare changed (")
    assert since["train"] == [] and since["report"] == []
    assert forecast["base"] == "HEAD~1"

    code, out, err = cli(capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state, "--base", "HEAD~1")
    assert code == 0, err
    assert "changed since HEAD~1" in out.splitlines()[2]  # the column's header
    assert re.search(r"^\*train .* input 'prepare' will run +nothing$", out, re.MULTILINE)
    assert re.search(r"^\*prepare .* code of tasks/prepare changed \(\w{7} → \w{7}\)$", out, re.MULTILINE)


def test_no_cache_plans_every_task_to_run(capsys, chain):
    repo, state, _ = chain
    run(capsys, repo, state)
    code, forecast, _ = plan(capsys, repo, state, "--no-cache")
    assert code == 0
    assert {action for action, _ in actions(forecast).values()} == {"run"}
    assert all(reason == "--no-cache: nothing is reused" for _, reason in actions(forecast).values())
    assert forecast["estimate_s"] > 0  # the chain's past durations, end to end


def test_the_json_shape_is_the_published_one(capsys, chain):
    repo, state, _ = chain
    code, forecast, _ = plan(capsys, repo, state)
    assert code == 0
    assert {"pipeline", "commit", "tasks", "estimate_s", "critical_path", "resources"} <= forecast.keys()
    for task in forecast["tasks"]:
        assert {"name", "action", "reason", "reuse_from", "estimate_s", "cpu_hours", "gpu_hours", "critical"} <= (
            task.keys()
        )
    assert set(forecast["resources"]) == {"run", "saved"}


def test_text_and_markdown(capsys, chain):
    repo, state, _ = chain
    run(capsys, repo, state)
    code, out, err = cli(capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state)
    assert code == 0, err
    assert re.match(r"plan chain at [0-9a-f]{12}: will run 0 · reuse 3 of 3 tasks · nothing to wait for", out)
    assert re.search(r"^ prepare +reuse +0 +reused from job ", out, re.MULTILINE)
    assert "critical path: none (nothing runs)" in out

    code, out, err = cli(capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state, "--format", "markdown")
    assert code == 0, err
    assert out.startswith("### Plan for `chain` at `")
    assert "| `train` | ♻️ reuse | reused from job " in out


def test_a_skipped_task_and_a_task_without_cache(capsys, tmp_path):
    repo = tmp_path / "repo"
    text = PIPELINE.format(runs=tmp_path / "runs.log")
    text = text.replace("    code: tasks/prepare\n", "    code: tasks/prepare\n    skip: true\n")
    text = text.replace("    code: tasks/report ", "    cache: false\n    code: tasks/report ")
    from commands.run_test import make_repo

    make_repo(
        repo,
        {
            "pipelines/chain.yaml": text,
            "tasks/prepare/data.txt": "abc\n",
            "tasks/train/train.sh": TRAIN,
            "tasks/report/README": "r\n",
        },
    )
    code, forecast, _ = plan(capsys, repo, tmp_path / "state")
    assert code == 0
    assert actions(forecast) == {
        "prepare": ("skip", "skip: true in the pipeline"),
        "train": ("run", "no earlier run with this key"),  # its input's outputs: an empty folder, known now
        "report": ("run", "cache off for this task"),
    }


# -- bad input: one clear message, the exit code `run` uses -----------------------------------------------------


def test_a_missing_file_is_a_usage_error(capsys, chain):
    repo, state, _ = chain
    code, out, err = cli(capsys, "plan", repo / "pipelines/nope.yaml", "--state-dir", state)
    clean(err)
    assert code == 2
    assert "pipelines/nope.yaml is not a file in" in err and "commit it, or give --rev a revision" in err


def test_a_missing_folder_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "plan", tmp_path / "nowhere/p.yaml", "--state-dir", tmp_path / "state")
    clean(err)
    assert code == 2 and "no such file or folder" in err


def test_invalid_yaml_names_the_file_and_line_and_exits_1(capsys, chain):
    repo, state, _ = chain
    put(repo, "pipelines/chain.yaml", "version: '26.4.4'\nname: chain\ntasks: [\n")
    commit(repo, "broken")
    code, out, err = cli(capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state)
    clean(err)
    assert code == 1 and out == ""
    assert re.search(r"pipelines/chain\.yaml:\d+:\d+: error", err)
    assert "the pipeline is not valid; nothing to plan" in err


def test_an_unknown_revision_is_a_usage_error(capsys, chain):
    repo, state, _ = chain
    for option in ("--rev", "--base"):
        code, _, err = cli(capsys, "plan", repo / "pipelines/chain.yaml", "--state-dir", state, option, "no-such-rev")
        clean(err)
        assert code == 2, err
        assert "no-such-rev" in err


def test_parameter_values_are_part_of_the_cache_key(capsys, chain):
    repo, state, runs = chain
    text = (
        (repo / "pipelines/chain.yaml")
        .read_text()
        .replace("tasks:\n", "params:\n  - {name: lr, default: 1}\ntasks:\n", 1)
    )
    put(repo, "pipelines/chain.yaml", text)
    commit(repo)
    run(capsys, repo, state, "--param", "lr=2")
    assert ran(runs) == ["prepare", "train", "report"]

    code, same, _ = plan(capsys, repo, state, "--param", "lr=2")
    assert code == 0 and {a for a, _ in actions(same).values()} == {"reuse"}
    code, other, _ = plan(capsys, repo, state)  # the default, 1: not the values that ran
    assert actions(other)["prepare"] == ("run", "pipeline params changed")
    code, _, err = plan(capsys, repo, state, "--param", "lr=x")
    assert code == 2 and "parameter 'lr' is an integer: 'x' is not" in err
    run(capsys, repo, state, "--param", "lr=2")
    assert ran(runs) == []  # the same values: every task reused
