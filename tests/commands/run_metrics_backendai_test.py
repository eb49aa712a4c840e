"""Model results on Backend.AI: metrics read from the pipeline vfolder after the session, on the manager emulator.

The emulator runs each session's startup script as a real sh process against
the vfolder, so the metrics file is what the task wrote there; the runner
reads it back through the vfolder API (engine/executors/backendai/outputs.py).
"""

from __future__ import annotations

import json
import os

import pytest
from commands.run_test import clean, cli, commit, make_repo, put

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: scored
tasks:
  - name: evaluate
    code: tasks/evaluate
    command: cp score.yaml "$PIPELINE_OUTPUT_ROOT/metrics.yaml"
    environment: {image: python}
    metrics:
      files: [metrics.yaml]
      rules:
        accuracy: {direction: higher, gate: {max_regression: 0.01}}
"""


def test_metrics_come_from_the_vfolder_and_a_regression_fails_the_gate(capsys, tmp_path, emulated_cluster):
    root, state = tmp_path / "repo", tmp_path / "state"
    make_repo(root, {"pipelines/p.yaml": PIPELINE, "tasks/evaluate/score.yaml": "accuracy: 0.91\nval: {loss: 0.2}\n"})
    args = ["run", root / "pipelines/p.yaml", "--executor", "backendai", "--state-dir", state, "--format", "json"]
    code, out, err = cli(capsys, *args)
    clean(err)
    first = json.loads(out)
    assert code == 0, err
    assert {m["name"]: m["head"] for m in first["metrics"]["metrics"]} == {"accuracy": 0.91, "val.loss": 0.2}

    put(root, "tasks/evaluate/score.yaml", "accuracy: 0.85\nval: {loss: 0.2}\n")
    commit(root, "worse")
    code, out, err = cli(capsys, *args)
    clean(err)
    second = json.loads(out)
    assert code == 1 and second["status"] == "succeeded"
    assert second["metrics"]["base"]["job"] == first["id"] and second["metrics"]["gates_failed"] == 1
    code, out, _ = cli(capsys, "jobs", "metrics", second["id"], "--state-dir", state, "--format", "json")
    assert code == 1 and json.loads(out)["metrics"] == second["metrics"]["metrics"]
