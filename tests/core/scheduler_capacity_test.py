"""Capacity per scaling group (Backend.AI): each task draws on the group it names, and a waiting task says why."""

from __future__ import annotations

import math

from core.scheduler_test import GIB, instances, pipeline, step, tasks_yaml

from fasttrack_gitops.core.job import TaskState
from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.core.scheduler import UNLIMITED_MEM, Capacity

S = TaskState
NO_LIMIT = Resources(cpu=math.inf, mem=UNLIMITED_MEM)


def cpus(free: float, limit: float | None = None) -> Capacity:
    """A group with `free` CPUs now (unlimited memory), and at most `limit` ever (None: no limit)."""
    return Capacity(
        Resources(cpu=free, mem=UNLIMITED_MEM), NO_LIMIT if limit is None else Resources(cpu=limit, mem=UNLIMITED_MEM)
    )


def fan(n: int, group: str | None = None) -> str:
    where = f", environment: {{scaling-group: {group}}}" if group else ""
    return tasks_yaml(*(f"{{name: t{i}, command: t, resources: {{cpu: 1, mem: 1g}}{where}}}" for i in range(n)))


def test_tasks_of_the_default_group_start_as_far_as_its_capacity_goes():
    d = step(pipeline(fan(4)), capacity={None: cpus(2)})
    assert d.start == ("t0", "t1")
    assert d.wait == ("t2", "t3")
    assert d.why == {"t2": "waiting for capacity (cpu 2 of 2 in use)", "t3": "waiting for capacity (cpu 2 of 2 in use)"}


def test_running_tasks_count_against_their_own_group_only():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a, resources: {cpu: 1, mem: 1g}, environment: {scaling-group: gpu}}",
            "{name: b, command: b, resources: {cpu: 1, mem: 1g}, environment: {scaling-group: gpu}}",
            "{name: c, command: c, resources: {cpu: 1, mem: 1g}}",
        )
    )
    d = step(p, instances(a=S.RUNNING), capacity={"gpu": cpus(1), None: cpus(1)})
    assert d.start == ("c",)
    assert d.wait == ("b",)
    assert d.why == {"b": "waiting for capacity (cpu 1 of 1 in use)"}


def test_a_group_the_capacity_does_not_name_has_no_limit():
    d = step(pipeline(fan(3, "elsewhere")), capacity={None: cpus(1)})
    assert d.start == ("t0", "t1", "t2")


def test_a_task_above_the_group_limit_fails_at_once_and_one_above_what_is_free_waits():
    p = pipeline(
        tasks_yaml(
            "{name: huge, command: h, resources: {cpu: 8, mem: 1g}}",
            "{name: big, command: b, resources: {cpu: 3, mem: 1g}}",
        )
    )
    d = step(p, capacity={None: cpus(2, limit=4)})
    assert d.fail == {"huge": "needs cpu 8 · mem 1g, more than the default scaling group could ever give (cpu 4)"}
    assert d.wait == ("big",)
    assert d.why == {"big": "waiting for capacity (cpu 0 of 2 in use)"}


def test_the_limit_names_the_group_and_its_limited_slots():
    p = pipeline(tasks_yaml("{name: g, command: g, resources: {cpu: 1, mem: 4g}, environment: {scaling-group: gpu}}"))
    limit = Resources(cpu=math.inf, mem=2 * GIB, accelerators=(("cuda.shares", math.inf),))
    d = step(p, capacity={"gpu": Capacity(limit, limit)})
    assert d.fail == {"g": "needs cpu 1 · mem 4g, more than scaling group 'gpu' could ever give (mem 2g)"}


def test_max_parallel_stays_an_upper_bound_and_its_waits_give_no_capacity_reason():
    d = step(pipeline(fan(4)), capacity={None: cpus(3)}, max_parallel=1)
    assert d.start == ("t0",)
    assert d.wait == ("t1", "t2", "t3")
    assert d.why == {}


def test_one_resources_capacity_still_covers_every_task_whatever_its_group():
    d = step(pipeline(fan(3, "gpu")), instances(t0=S.RUNNING), capacity=Resources(cpu=2.0, mem=8 * GIB))
    assert d.start == ("t1",)
    assert d.why == {"t2": "waiting for capacity (cpu 2 of 2 in use)"}
