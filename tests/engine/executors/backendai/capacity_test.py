"""Capacity-aware dispatch on Backend.AI: the job runner asks the emulated manager only for sessions that fit.

The emulator's cluster (emulator_capacity.py) has a limited scaling group and
answers check-presets; a session asked for beyond what fits waits PENDING
for a scheduler pass, as on the real manager. Its `peak` is the most sessions
asked for and not yet ended at once.
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from pathlib import Path

import pytest
from engine.backendai.emulator_capacity import install as install_capacity
from engine.executors.backendai import fixtures
from engine.executors.backendai.fixtures import TREE, run

from fasttrack_gitops.core.job import JobStatus, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine.runner import Change, JobRunner
from fasttrack_gitops.engine.state.store import Store

cluster = fixtures.cluster
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")


def fan(n: int, *, cpu: float = 1, command: str = "sleep 0.2", extra: str = "") -> str:
    tasks = "".join(
        f'  - {{name: t{i}, command: "{command}", resources: {{cpu: {cpu}, mem: 256m}}, environment: {{image: python}}}}\n'
        for i in range(n)
    )
    return f'version: "26.4.4"\nname: demo\ntasks:\n{tasks}{textwrap.dedent(extra)}'


def run_job(emu, tmp_path: Path, text: str, also=lambda change: None, **runner_options) -> tuple:
    """Run the pipeline `text` on the emulator with the job runner: (the job's view, every change it reported)."""
    checked = check_pipeline(text.encode(), "pipelines/demo.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    code = tmp_path / "repo"
    code.mkdir(exist_ok=True)
    store = Store(tmp_path / "state")
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/demo.yaml",
        repository="/repos/demo",
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree=TREE,
        code_trees={},
    )
    store.create_job(job)
    changes: list[Change] = []

    def on_change(change: Change) -> None:
        changes.append(change)
        also(change)

    async def scenario(ex):
        runner = JobRunner(job, store, ex, workdir=lambda task: code, on_change=on_change, **runner_options)
        return await runner.run()

    return run(emu, scenario), changes


def waits(changes: list[Change]) -> list[str]:
    """Why tasks waited, in order. The first decision's reason is exact; a later one may count a session that
    just ended as in use still (the runner has not taken its end yet), which only errs on the safe side."""
    return [c.message for c in changes if c.instance.state == TaskState.WAITING]


def full(message: str) -> bool:
    """A capacity wait with at least all of what is free in use."""
    match = re.fullmatch(r"waiting for capacity \(cpu (\d+) of (\d+) in use\)", message)
    return match is not None and int(match[1]) >= int(match[2])


def states(view) -> dict[str, tuple]:
    return {name: (i.state, i.reason) for name, i in view.tasks.items()}


def test_a_fan_never_asks_for_more_sessions_than_fit_and_all_succeed(cluster, tmp_path):
    capacity = install_capacity(cluster, {"default": {"cpu": 2}}, pass_interval=0.5)
    view, changes = run_job(cluster, tmp_path, fan(8), max_parallel=16)
    assert view.status == JobStatus.SUCCEEDED, states(view)
    assert len([r for r in cluster.requests_to("/session") if r.method == "POST"]) == 8
    assert capacity.peak == 2
    assert capacity.waited == 0  # none was asked for before it fitted, so none waited for a scheduler pass
    assert waits(changes)[0] == "waiting for capacity (cpu 2 of 2 in use)"
    assert all(full(message) for message in waits(changes)), sorted(set(waits(changes)))


def test_max_parallel_stays_an_upper_bound(cluster, tmp_path):
    capacity = install_capacity(cluster, {"default": {"cpu": 4}}, pass_interval=0.5)
    view, _ = run_job(cluster, tmp_path, fan(4, command="sleep 0.1"), max_parallel=1)
    assert view.status == JobStatus.SUCCEEDED, states(view)
    assert capacity.peak == 1


def test_a_task_asking_for_more_than_the_keypair_may_ever_hold_fails_at_once(cluster, tmp_path):
    install_capacity(cluster, {"default": {"cpu": 2}}, keypair_limits={"cpu": 4}, pass_interval=0.5)
    view, _ = run_job(cluster, tmp_path, fan(1, cpu=8, command="true"))
    assert states(view)["t0"] == (
        TaskState.FAILED,
        "needs cpu 8 · mem 256m, more than the default scaling group could ever give (cpu 4)",
    )
    assert view.tasks["t0"].attempts == ()
    assert not cluster.requests_to("/session")


def test_a_named_scaling_group_has_its_own_capacity(cluster, tmp_path):
    capacity = install_capacity(cluster, {"default": {"cpu": 1}, "big": {"cpu": 3}}, pass_interval=0.5)
    text = fan(0) + "".join(
        f"  - {{name: b{i}, command: sleep 0.2, resources: {{cpu: 1, mem: 256m}}, "
        "environment: {image: python, scaling-group: big}}\n"
        for i in range(4)
    )
    view, changes = run_job(cluster, tmp_path, text)
    assert view.status == JobStatus.SUCCEEDED, states(view)
    assert capacity.peak == 3
    assert waits(changes)[0] == "waiting for capacity (cpu 3 of 3 in use)"
    assert all(full(message) for message in waits(changes)), sorted(set(waits(changes)))


def test_capacity_freed_by_other_users_is_used(cluster, tmp_path):
    capacity = install_capacity(cluster, {"default": {"cpu": 2}}, others={"default": {"cpu": 2}}, pass_interval=0.2)

    def free_it(change: Change) -> None:
        if change.instance.state == TaskState.WAITING:
            capacity.others.clear()  # the other user's sessions end

    view, changes = run_job(cluster, tmp_path, fan(2, command="true"), also=free_it, capacity_refresh=0.2)
    assert view.status == JobStatus.SUCCEEDED, states(view)
    assert set(waits(changes)) == {"waiting for capacity (cpu 0 of 0 in use)"}
    assert capacity.waited == 0


def test_a_manager_without_check_presets_is_warned_about_once_and_nothing_is_limited(cluster, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="fasttrack_gitops.engine.backendai"):
        view, changes = run_job(cluster, tmp_path, fan(3, command="true"))
    assert view.status == JobStatus.SUCCEEDED, states(view)
    warnings = [r.getMessage() for r in caplog.records if "cannot learn what the cluster has free" in r.getMessage()]
    assert len(warnings) == 1 and "Unknown URL path" in warnings[0], warnings
    assert len(cluster.requests_to("/resource/check-presets")) == 1
    assert not any(c.instance.state == TaskState.WAITING for c in changes)
