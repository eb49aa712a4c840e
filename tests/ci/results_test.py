"""`ci` with model results: the summary opens with them, a failed gate fails the step, plots and artifacts are
collected for the upload step. A simulated runner, real commits, real local tasks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ci.conftest import TOKEN

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: model
tasks:
  - name: evaluate
    code: tasks/evaluate
    command: cp -r metrics.json plots model "$PIPELINE_OUTPUT_ROOT/"
    metrics:
      files: [metrics.json]
      rules:
        accuracy: {direction: higher, gate: {min: 0.9}}
    plots: [{path: plots/roc.svg, title: ROC curve}]
    artifacts: [model/, report.html]
"""


def test_a_failed_gate_fails_the_step_and_the_declared_files_are_collected_for_upload(runner, github):
    first = runner.standard()
    runner.write("pipelines/model.yaml", PIPELINE)
    runner.write("tasks/evaluate/metrics.json", '{"accuracy": 0.85, "loss": 0.4}')
    runner.write("tasks/evaluate/plots/roc.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    runner.write("tasks/evaluate/model/weights.json", "[1, 2, 3]\n")
    runner.write("tasks/evaluate/model/config/size.txt", "3\n")
    after = runner.commit("a model")

    step = runner.step(
        "push",
        runner.push(first, after),
        "--mode",
        "run",
        "--executor",
        "local",
        "--pipelines",
        "pipelines/model.yaml",
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},
    )

    assert step.code == 1, step.out + step.err  # the task succeeded; its gate did not
    assert step.outputs["conclusion"] == "failure"
    check = next(c for c in github.check_runs.values() if c["name"] == "fasttrack/model")
    assert check["conclusion"] == "failure" and check["output"]["title"].startswith("Gate failed: accuracy 0.85")
    summary = step.summary
    assert "### Model results" in summary and "No baseline" in summary and "gate ≥ 0.9" in summary
    results = Path(step.outputs["results-dir"])
    files = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file())
    assert files == [
        "model/evaluate/model/config/size.txt",
        "model/evaluate/model/weights.json",
        "model/evaluate/plots/roc.svg",
    ]
    assert (results / "model/evaluate/model/weights.json").read_text() == "[1, 2, 3]\n"
    warnings = "\n".join(step.commands("warning"))
    assert "report.html is declared but not in its outputs" in warnings
