"""Model results through `run` and `jobs metrics`: real commits, real task processes, metrics read from outputs.

The baseline is the store's own record: the newest succeeded job of the
pipeline at the job's base commit (for `run`, the commit's first parent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from commands.run_test import clean, cli, commit, make_repo, put

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: model
tasks:
  - name: train
    code: tasks/train
    command: cp score.json "$PIPELINE_OUTPUT_ROOT/metrics.json"; mkdir -p "$PIPELINE_OUTPUT_ROOT/plots"; cp roc.svg "$PIPELINE_OUTPUT_ROOT/plots/"
    metrics:
      files: [metrics.json]
      rules:
        accuracy: {direction: higher, noise: 0.002, gate: {min: 0.90, max_regression: "1%"}}
        loss: {direction: lower}
    plots: [{path: plots/roc.svg, title: ROC curve}]
"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


def score(accuracy: float, loss: float) -> str:
    return json.dumps({"accuracy": accuracy, "loss": loss, "eval": {"f1": 0.8}})


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    make_repo(
        root,
        {
            "pipelines/model.yaml": PIPELINE,
            "tasks/train/score.json": score(0.93, 0.30),
            "tasks/train/roc.svg": SVG,
        },
    )
    return root, tmp_path / "state"


def run(capsys, root: Path, state: Path, pipeline: str = "pipelines/model.yaml") -> tuple[int, dict, str]:
    code, out, err = cli(capsys, "run", root / pipeline, "--state-dir", state, "--format", "json")
    clean(err)
    return code, json.loads(out), err


def by_name(record: dict) -> dict[str, dict]:
    return {m["name"]: m for m in record["metrics"]["metrics"]}


def test_a_worse_model_fails_its_gate_against_the_parent_commit_and_run_exits_1(capsys, repo):
    root, state = repo
    code, first, _ = run(capsys, root, state)
    assert code == 0 and first["status"] == "succeeded"
    assert first["metrics"]["base"] is None and first["metrics"]["gates_failed"] == 0
    assert by_name(first)["accuracy"]["head"] == 0.93 and by_name(first)["eval.f1"]["head"] == 0.8

    put(root, "tasks/train/score.json", score(0.88, 0.25))
    commit(root, "a worse model")
    code, second, err = run(capsys, root, state)
    assert code == 1 and second["status"] == "succeeded"  # every task exited 0: the gate decides
    assert "gate failed: accuracy 0.93 → 0.88" in err
    assert second["metrics"]["base"]["job"] == first["id"] and second["metrics"]["gates_failed"] == 1
    accuracy, loss = by_name(second)["accuracy"], by_name(second)["loss"]
    assert (accuracy["verdict"], accuracy["gate"], accuracy["base"]) == ("worse", "fail", 0.93)
    assert round(accuracy["delta"], 4) == -0.05
    assert (loss["verdict"], loss["gate"]) == ("better", None)

    # jobs metrics says the same, as JSON and as a table, and exits 1 on the failed gate
    code, out, err = cli(capsys, "jobs", "metrics", second["id"], "--state-dir", state, "--format", "json")
    assert code == 1 and json.loads(out) == second["metrics"]
    code, out, _ = cli(capsys, "jobs", "metrics", second["id"], "--state-dir", state)
    assert code == 1 and "accuracy" in out and "0.88" in out and "▼" in out
    # the first job against itself: nothing changed, and its gate holds
    code, out, _ = cli(capsys, "jobs", "metrics", first["id"], "--base", first["id"], "--state-dir", state)
    assert code == 0 and "1 gate failed" not in out, out
    # --base as a revision: the pipeline's succeeded job at that commit
    code, out, _ = cli(
        capsys, "jobs", "metrics", second["id"], "--base", "HEAD~1", "--state-dir", state, "--format", "json"
    )
    assert code == 1 and json.loads(out)["base"]["job"] == first["id"]
    code, _, err = cli(capsys, "jobs", "metrics", second["id"], "--base", "nope", "--state-dir", state)
    assert code == 2 and "--base nope" in err
    clean(err)


def test_bad_metrics_files_are_problems_in_the_report_never_a_crash(capsys, tmp_path):
    root, state = tmp_path / "repo", tmp_path / "state"
    files = {
        "empty.json": "",
        "broken.json": '{"accuracy": 0.9,',
        "nan.json": '{"accuracy": NaN}',
        "list.json": '{"scores": [1, 2]}',
        "text.yaml": "accuracy: high\n",
        "dotted.json": '{"a.b": 1}',
    }
    names = ", ".join([*files, "missing.json"])
    pipeline = f"""\
version: "26.4.4"
name: bad
tasks:
  - name: evaluate
    code: tasks/evaluate
    command: cp *.json *.yaml "$PIPELINE_OUTPUT_ROOT/"; head -c 1100000 /dev/zero | tr '\\\\0' ' ' > "$PIPELINE_OUTPUT_ROOT/big.json"
    metrics:
      files: [{names}, big.json]
      rules:
        accuracy: {{direction: higher, gate: {{min: 0.5}}}}
        recall: {{direction: higher, gate: {{required: true}}}}
"""
    make_repo(root, {"pipelines/bad.yaml": pipeline, **{f"tasks/evaluate/{n}": t for n, t in files.items()}})
    code, record, err = run(capsys, root, state, "pipelines/bad.yaml")
    assert code == 1 and record["status"] == "succeeded", err  # the task ran fine; its gates failed
    problems = "\n".join(record["metrics"]["problems"])
    for name in [*files, "missing.json", "big.json"]:
        assert name in problems, (name, problems)
    assert (
        "NaN" in problems
        and "is a list" in problems
        and "1 MiB" in problems
        and "not in the task's outputs" in problems
    )
    failed = {m["name"]: m["reason"] for m in record["metrics"]["metrics"] if m["gate"] == "fail"}
    assert set(failed) == {"accuracy", "recall"}  # no task produced them: each gate fails, with that reason


def test_a_reused_task_brings_the_metrics_of_the_job_it_reuses(capsys, repo):
    root, state = repo
    put(root, "pipelines/model.yaml", PIPELINE.replace("name: model\n", "name: model\ncache: true\n"))
    commit(root, "cache it")
    code, first, _ = run(capsys, root, state)
    put(root, "README.md", "docs\n")
    commit(root, "docs only")
    code, second, _ = run(capsys, root, state)
    assert code == 0 and second["tasks"][0]["status"] == "reused"
    assert by_name(second)["accuracy"]["head"] == 0.93
    assert by_name(second)["accuracy"]["verdict"] == "same" and second["metrics"]["base"]["job"] == first["id"]
