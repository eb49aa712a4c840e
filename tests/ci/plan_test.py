"""`fasttrack-gitops ci --mode plan`: the step summary says what a run would run and reuse, and nothing runs;
the `no-cache` input, in plan and run mode. A simulated runner whose state folder lasts across steps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

CACHED = """\
version: "26.4.4"
name: train
cache: true
on:
  push:
    branches: [main]
environment:
  envs:
    RUNS: {runs}
tasks:
  - name: prepare
    code: tasks/prepare
    command: echo prepare >> "$RUNS"; cp data.txt "$PIPELINE_OUTPUT_ROOT/"
  - name: fit
    code: tasks/fit
    dependencies: [prepare]
    command: echo fit >> "$RUNS"; cat "$PIPELINE_INPUT1/data.txt" > "$PIPELINE_OUTPUT_ROOT/model.txt"
"""
LOCAL = ("--executor", "local")


def ran(runs: Path) -> list[str]:
    names = runs.read_text().split() if runs.exists() else []
    runs.write_text("")
    return names


def test_plan_mode_summarises_the_forecast_and_runs_nothing(runner, tmp_path):
    runs = tmp_path / "runs.log"
    runner.write("README.md", "# pipelines\n")
    before = runner.commit("first")
    runner.write("pipelines/train.yaml", CACHED.format(runs=runs))
    runner.write("tasks/prepare/data.txt", "abc\n")
    runner.write("tasks/fit/README", "fit\n")
    after = runner.commit("pipeline")
    push = runner.push(before, after)
    token = {"GITHUB_TOKEN": "none"}

    step = runner.step("push", push, "--mode", "plan", *LOCAL, sha=after, env=token)
    assert step.code == 0, step.out + step.err
    assert ran(runs) == []
    assert step.outputs["conclusion"] == "success" and step.outputs["job-ids"] == ""
    summary = step.summary
    assert summary.startswith("## FastTrack pipelines: ✅ 1 pipeline planned, nothing run\n")
    assert "Plan only (`mode: plan`): nothing ran; what `mode: run` would run and reuse of `train` is below." in summary
    assert f"### Plan for `train` at `{after[:12]}`\n\n**will run 2 · reuse 0 of 2 tasks" in summary
    assert "| `prepare` **(critical)** | ▶️ run | no earlier run with this key | - |" in summary
    assert "| `fit` **(critical)** | ▶️ run | input 'prepare' will run | - |" in summary
    assert "plan pipelines/train.yaml: will run 2 · reuse 0 of 2 tasks" in step.out

    step = runner.step("push", push, "--mode", "run", *LOCAL, sha=after, env=token)
    assert step.code == 0, step.out + step.err
    assert ran(runs) == ["prepare", "fit"]
    [job_id] = step.outputs["job-ids"].split()

    step = runner.step("push", push, "--mode", "plan", *LOCAL, sha=after, env=token)
    assert step.code == 0, step.out + step.err
    assert "**will run 0 · reuse 2 of 2 tasks · nothing to wait for" in step.summary
    assert f"| `fit` | ♻️ reuse | reused from job {job_id} (commit {after[:7]}) | 0 |" in step.summary
    assert ran(runs) == []

    # no-cache: planned to run, and run
    step = runner.step("push", push, "--mode", "plan", *LOCAL, sha=after, env={**token, "FTG_CI_NO_CACHE": "true"})
    assert step.code == 0, step.out + step.err
    assert "| `fit` **(critical)** | ▶️ run | --no-cache: nothing is reused | ~" in step.summary
    step = runner.step("push", push, "--mode", "run", *LOCAL, "--no-cache", "true", sha=after, env=token)
    assert step.code == 0, step.out + step.err
    assert ran(runs) == ["prepare", "fit"]


def test_plan_mode_with_nothing_selected_is_skipped(runner):
    first = runner.standard()
    runner.write("README.md", "# only the readme changed\n")
    after = runner.commit("docs")
    step = runner.step(
        "push", runner.push(first, after), "--mode", "plan", *LOCAL, sha=after, env={"GITHUB_TOKEN": "none"}
    )
    assert step.code == 0, step.out + step.err
    assert step.outputs["conclusion"] == "skipped"
    assert "### Plan for" not in step.summary
