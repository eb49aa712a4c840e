"""`run --executor backendai` on a cluster of limited size: sessions asked for only as they fit, the reasons shown.

The emulated cluster (tests/engine/backendai/emulator_capacity.py) has 2 CPU
slots and a keypair that may hold 4 CPUs at most; a session asked for beyond
what fits would wait PENDING for the emulator's scheduler pass.
"""

from __future__ import annotations

import json
import os

import pytest
from commands.run_test import clean, cli, make_repo
from engine.backendai.emulator_capacity import install as install_capacity

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

TASK = (
    "  - {{name: {name}, command: sleep 0.2, resources: {{cpu: {cpu}, mem: 256m}}, environment: {{image: python}}}}\n"
)
PIPELINE = (
    'version: "26.4.4"\nname: fan\ntasks:\n'
    + "".join(TASK.format(name=f"t{i}", cpu=1) for i in range(4))
    + TASK.format(name="huge", cpu=9)
)


def test_a_fan_waits_for_capacity_with_its_reason_and_a_task_too_big_fails_at_once(capsys, tmp_path, emulated_cluster):
    cluster = install_capacity(emulated_cluster, {"default": {"cpu": 2}}, keypair_limits={"cpu": 4}, pass_interval=0.5)
    root = tmp_path / "repo"
    make_repo(root, {"pipelines/fan.yaml": PIPELINE})
    args = ["run", root / "pipelines/fan.yaml", "--executor", "backendai", "--state-dir", tmp_path / "state"]
    code, out, err = cli(capsys, *args, "--format", "json")
    clean(err)
    assert code == 1
    tasks = {t["name"]: t for t in json.loads(out)["tasks"]}
    assert {name: t["status"] for name, t in tasks.items()} == {
        "t0": "succeeded",
        "t1": "succeeded",
        "t2": "succeeded",
        "t3": "succeeded",
        "huge": "failed",
    }
    assert (
        tasks["huge"]["reason"] == "needs cpu 9 · mem 256m, more than the default scaling group could ever give (cpu 4)"
    )
    assert "t2 waiting: waiting for capacity (cpu 2 of 2 in use)" in err
    assert (cluster.peak, cluster.waited) == (2, 0)
