"""The scheduler: which task instances start, skip, wait or can never run; priorities; when a retry may start."""

from __future__ import annotations

import random
import textwrap

import pytest
from conftest import MINIMAL

from fasttrack_gitops.core.job import SKIP_REQUESTED, Attempt, Outcome, TaskInstance, TaskState
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.core.scheduler import DEFAULT_DURATION, Decision, decide, order, priorities, retry_at

S = TaskState
GIB = 1 << 30


def pipeline(text: str):
    result = check_pipeline(textwrap.dedent(text).encode("utf-8"), "p.yaml")
    assert result.pipeline is not None, result.diagnostics
    return result.pipeline


def tasks_yaml(*lines: str) -> str:
    """A pipeline from one flow-style task per line: tasks_yaml("{name: a, command: a}", ...)."""
    return 'version: "1"\nname: p\ntasks:\n' + "".join(f"  - {line}\n" for line in lines)


def instances(**states: TaskState) -> dict[str, TaskInstance]:
    return {name: TaskInstance(name, state) for name, state in states.items()}


def step(p, tasks=None, *, now: float = 0.0, durations=None, **kwargs) -> Decision:
    return decide(p, tasks or {}, now=now, priority=priorities(p, durations), **kwargs)


def failed_attempt(number: int = 1, outcome: Outcome = Outcome.FAILED) -> Attempt:
    return Attempt(number, started_at=0.0, ended_at=1.0, exit_code=1, outcome=outcome)


CHAIN = tasks_yaml(
    "{name: a, command: a}",
    "{name: b, command: b, dependencies: [a]}",
    "{name: c, command: c, dependencies: [b]}",
)
FAN_OUT = tasks_yaml(
    "{name: root, command: r}",
    "{name: x, command: x, dependencies: [root]}",
    "{name: y, command: y, dependencies: [root]}",
    "{name: z, command: z, dependencies: [root]}",
)
DIAMOND = tasks_yaml(
    "{name: a, command: a}",
    "{name: b, command: b, dependencies: [a]}",
    "{name: c, command: c, dependencies: [a]}",
    "{name: d, command: d, dependencies: [b, c]}",
)


# --- what starts ------------------------------------------------------------------------------------------------


def test_a_new_chain_starts_only_its_first_task():
    assert step(pipeline(CHAIN)) == Decision(start=("a",))


def test_a_chain_starts_the_next_task_once_its_dependency_succeeded():
    p = pipeline(CHAIN)
    assert step(p, instances(a=S.SUCCEEDED)).start == ("b",)
    assert step(p, instances(a=S.SUCCEEDED, b=S.SUCCEEDED)).start == ("c",)


def test_a_job_whose_tasks_all_ended_has_nothing_to_do():
    assert step(pipeline(CHAIN), instances(a=S.SUCCEEDED, b=S.SUCCEEDED, c=S.SUCCEEDED)) == Decision()


def test_a_fan_out_starts_every_ready_task():
    d = step(pipeline(FAN_OUT), instances(root=S.SUCCEEDED))
    assert d.start == ("x", "y", "z")
    assert d.wait == () and d.skip == {} and d.fail == {}


def test_independent_tasks_all_start_at_once():
    p = pipeline(tasks_yaml("{name: a, command: a}", "{name: b, command: b}", "{name: c, command: c}"))
    assert step(p).start == ("a", "b", "c")


def test_a_task_waits_for_every_dependency():
    p = pipeline(DIAMOND)
    assert step(p, instances(a=S.SUCCEEDED, b=S.SUCCEEDED, c=S.RUNNING)).start == ()
    assert step(p, instances(a=S.SUCCEEDED, b=S.SUCCEEDED, c=S.SUCCEEDED)).start == ("d",)


@pytest.mark.parametrize("max_parallel, started", [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_max_parallel_limits_how_many_start_and_the_rest_wait(max_parallel, started):
    d = step(pipeline(FAN_OUT), instances(root=S.SUCCEEDED), max_parallel=max_parallel)
    assert d.start == ("x", "y", "z")[:started]
    assert d.wait == ("x", "y", "z")[started:]


@pytest.mark.parametrize("active", [S.RUNNING, S.SUBMITTED])
def test_max_parallel_counts_the_tasks_already_running(active):
    p = pipeline(FAN_OUT)
    d = step(p, instances(root=S.SUCCEEDED, x=active), max_parallel=2)
    assert d.start == ("y",)
    assert d.wait == ("z",)
    d = step(p, instances(root=S.SUCCEEDED, x=active, y=active), max_parallel=2)
    assert d.start == ()
    assert d.wait == ("z",)


@pytest.mark.parametrize("active", [S.RUNNING, S.SUBMITTED])
def test_active_tasks_are_never_started_again(active):
    p = pipeline(FAN_OUT)
    d = step(p, instances(root=S.SUCCEEDED, x=active, y=active, z=active))
    assert d == Decision()
    assert step(pipeline(CHAIN), instances(a=active)) == Decision()


def test_a_task_waiting_for_a_slot_starts_when_it_gets_one():
    p = pipeline(FAN_OUT)
    assert step(p, instances(root=S.SUCCEEDED, x=S.RUNNING, y=S.WAITING, z=S.WAITING), max_parallel=2) == Decision(
        start=("y",), wait=("z",)
    )


def test_task_instances_missing_from_the_mapping_are_pending():
    p = pipeline(FAN_OUT)
    assert step(p, {"root": TaskInstance("root", S.SUCCEEDED)}) == step(
        p, instances(root=S.SUCCEEDED, x=S.PENDING, y=S.PENDING, z=S.PENDING)
    )


def test_task_instances_of_tasks_not_in_the_pipeline_are_ignored():
    p = pipeline(CHAIN)
    assert step(p, instances(a=S.SUCCEEDED, old=S.RUNNING)) == Decision(start=("b",))


def test_a_stray_instance_does_not_hide_a_missing_one_even_when_the_counts_match():
    p = pipeline(CHAIN)
    assert step(p, instances(a=S.SUCCEEDED, b=S.SUCCEEDED, old=S.RUNNING)) == Decision(start=("c",))


@pytest.mark.parametrize(
    "text, tasks",
    [
        (CHAIN, {}),
        (CHAIN, instances(a=S.FAILED)),
        (FAN_OUT, instances(root=S.SUCCEEDED, x=S.RUNNING)),
        (DIAMOND, instances(a=S.SUCCEEDED, b=S.FAILED)),
    ],
    ids=["chain", "chain-failed", "fan-out", "diamond"],
)
def test_a_precomputed_order_gives_the_same_decision(text, tasks):
    p = pipeline(text)
    assert order(p) == tuple(t.name for t in p.tasks)  # these are written in a topological order
    pr = priorities(p)
    assert decide(p, tasks, now=0.0, priority=pr, order=order(p), max_parallel=2) == decide(
        p, tasks, now=0.0, priority=pr, max_parallel=2
    )


# --- skip: true ---------------------------------------------------------------------------------------------


def test_a_skip_true_task_is_skipped_and_its_dependents_start_in_the_same_decision():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a, skip: true}",
            "{name: b, command: b, dependencies: [a]}",
        )
    )
    assert step(p) == Decision(start=("b",), skip={"a": SKIP_REQUESTED})
    assert SKIP_REQUESTED == "skip: true"


def test_skip_true_cascades_down_a_chain_of_skipped_tasks():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a, skip: true}",
            "{name: b, command: b, skip: true, dependencies: [a]}",
            "{name: c, command: c, dependencies: [b]}",
            "{name: d, command: d, dependencies: [c]}",
        )
    )
    assert step(p) == Decision(start=("c",), skip={"a": "skip: true", "b": "skip: true"})


def test_a_skip_true_task_waits_for_its_dependencies_before_it_is_skipped():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a}",
            "{name: b, command: b, skip: true, dependencies: [a]}",
            "{name: c, command: c, dependencies: [b]}",
        )
    )
    assert step(p) == Decision(start=("a",))
    assert step(p, instances(a=S.RUNNING)) == Decision()
    assert step(p, instances(a=S.SUCCEEDED)) == Decision(start=("c",), skip={"b": "skip: true"})


def test_a_skip_true_task_whose_dependency_failed_is_skipped_as_upstream_and_its_dependents_do_not_run():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a}",
            "{name: b, command: b, skip: true, dependencies: [a]}",
            "{name: c, command: c, dependencies: [b]}",
        )
    )
    d = step(p, instances(a=S.FAILED))
    assert d.start == ()
    assert d.skip == {"b": "dependency 'a' failed", "c": "dependency 'b' was skipped"}


# --- failures, cancellations ------------------------------------------------------------------------------------


def test_a_failed_dependency_skips_the_whole_chain_below_it_in_one_decision():
    p = pipeline(CHAIN)
    d = step(p, instances(a=S.FAILED))
    assert d == Decision(skip={"b": "dependency 'a' failed", "c": "dependency 'b' was skipped"})


def test_a_failure_skips_only_the_tasks_that_depend_on_it():
    p = pipeline(DIAMOND)
    d = step(p, instances(a=S.SUCCEEDED, b=S.FAILED))
    assert d.start == ("c",)
    assert d.skip == {"d": "dependency 'b' failed"}


def test_a_failed_continue_on_failure_dependency_lets_its_dependents_start():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a, continue_on_failure: true}",
            "{name: b, command: b, dependencies: [a]}",
        )
    )
    assert step(p, instances(a=S.FAILED)) == Decision(start=("b",))


def test_a_cancelled_dependency_skips_its_dependents():
    p = pipeline(CHAIN)
    d = step(p, instances(a=S.CANCELLED))
    assert d.skip == {"b": "dependency 'a' was cancelled", "c": "dependency 'b' was skipped"}
    assert d.start == ()


def test_a_cancelled_continue_on_failure_dependency_still_skips_its_dependents():
    p = pipeline(
        tasks_yaml(
            "{name: a, command: a, continue_on_failure: true}",
            "{name: b, command: b, dependencies: [a]}",
        )
    )
    assert step(p, instances(a=S.CANCELLED)).skip == {"b": "dependency 'a' was cancelled"}


def test_a_task_skipped_because_of_a_failure_passes_the_failure_on():
    p = pipeline(CHAIN)
    tasks = {"a": TaskInstance("a", S.FAILED), "b": TaskInstance("b", S.SKIPPED, reason="dependency 'a' failed")}
    assert step(p, tasks).skip == {"c": "dependency 'b' was skipped"}


def test_a_failed_dependency_skips_a_dependent_even_while_another_dependency_runs():
    p = pipeline(DIAMOND)
    assert step(p, instances(a=S.SUCCEEDED, b=S.FAILED, c=S.RUNNING)).skip == {"d": "dependency 'b' failed"}


# --- retry delays -----------------------------------------------------------------------------------------------


def retrying(name: str, next_attempt_at: float) -> TaskInstance:
    return TaskInstance(name, S.WAITING, attempts=(failed_attempt(),), next_attempt_at=next_attempt_at)


def test_a_task_whose_retry_delay_has_not_passed_waits_until_then():
    p = pipeline(MINIMAL)
    d = step(p, {"prepare": retrying("prepare", 100.0)}, now=50.0)
    assert d == Decision(wait=("prepare",), wake_at=100.0)


@pytest.mark.parametrize("now", [100.0, 100.5, 1000.0])
def test_a_task_starts_again_once_its_retry_delay_has_passed(now):
    p = pipeline(MINIMAL)
    d = step(p, {"prepare": retrying("prepare", 100.0)}, now=now)
    assert d == Decision(start=("prepare",))


def test_wake_at_is_the_earliest_retry_not_due_yet():
    p = pipeline(tasks_yaml("{name: a, command: a}", "{name: b, command: b}", "{name: c, command: c}"))
    tasks = {"a": retrying("a", 300.0), "b": retrying("b", 120.0), "c": retrying("c", 40.0)}
    d = step(p, tasks, now=50.0)
    assert d.start == ("c",)
    assert d.wait == ("a", "b")
    assert d.wake_at == 120.0


def test_no_wake_at_without_a_pending_retry():
    assert step(pipeline(FAN_OUT), instances(root=S.SUCCEEDED), max_parallel=1).wake_at is None


def test_a_retry_that_is_not_due_takes_no_slot_from_other_tasks():
    p = pipeline(tasks_yaml("{name: a, command: a}", "{name: b, command: b}"))
    d = step(p, {"a": retrying("a", 100.0)}, now=0.0, max_parallel=1)
    assert d == Decision(start=("b",), wait=("a",), wake_at=100.0)


# --- priorities ---------------------------------------------------------------------------------------------------


def test_priorities_of_a_chain_are_the_remaining_path_lengths():
    p = pipeline(CHAIN)
    assert priorities(p) == {"a": 3 * DEFAULT_DURATION, "b": 2 * DEFAULT_DURATION, "c": DEFAULT_DURATION}
    assert priorities(p, {"a": 5.0, "b": 7.0, "c": 11.0}) == {"a": 23.0, "b": 18.0, "c": 11.0}


def test_priorities_of_a_diamond_follow_the_longest_path():
    p = pipeline(DIAMOND)
    assert priorities(p) == {"a": 3.0, "b": 2.0, "c": 2.0, "d": 1.0}
    assert priorities(p, {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}) == {"a": 7.0, "b": 6.0, "c": 3.0, "d": 1.0}
    assert priorities(p, {"b": 0.5, "c": 9.0}) == {"a": 11.0, "b": 1.5, "c": 10.0, "d": 1.0}


def test_a_task_never_seen_before_counts_the_default_duration():
    p = pipeline(CHAIN)
    assert priorities(p, {"b": 4.0}) == {
        "a": 4.0 + 2 * DEFAULT_DURATION,
        "b": 4.0 + DEFAULT_DURATION,
        "c": DEFAULT_DURATION,
    }


# `short` comes first in the file, but `long1 -> long2 -> long3` is the critical path.
CRITICAL = tasks_yaml(
    "{name: short, command: s}",
    "{name: long1, command: l1}",
    "{name: long2, command: l2, dependencies: [long1]}",
    "{name: long3, command: l3, dependencies: [long2]}",
)


def test_with_one_slot_the_task_on_the_longest_remaining_path_starts_first():
    d = step(pipeline(CRITICAL), max_parallel=1)
    assert d.start == ("long1",)
    assert d.wait == ("short",)


def test_the_ready_tasks_start_in_priority_order():
    d = step(pipeline(CRITICAL))
    assert d.start == ("long1", "short")


def test_past_durations_change_the_order():
    d = step(pipeline(CRITICAL), durations={"short": 60.0, "long1": 1.0, "long2": 1.0, "long3": 1.0}, max_parallel=1)
    assert d.start == ("short",)
    assert d.wait == ("long1",)


def test_ties_keep_file_order_among_tasks_ready_from_the_start():
    p = pipeline(tasks_yaml("{name: b, command: b}", "{name: a, command: a}", "{name: c, command: c}"))
    assert step(p, max_parallel=1) == Decision(start=("b",), wait=("a", "c"))


def test_ties_keep_file_order_even_when_the_topological_order_differs():
    # File order: x, y, z. Topological order: x, z, y (z is ready from the start, y only after x).
    p = pipeline(
        tasks_yaml(
            "{name: x, command: x}",
            "{name: y, command: y, dependencies: [x]}",
            "{name: z, command: z}",
        )
    )
    pr = priorities(p)
    assert pr["y"] == pr["z"]
    assert step(p, instances(x=S.SUCCEEDED), max_parallel=1) == Decision(start=("y",), wait=("z",))


def test_a_task_missing_from_the_priorities_goes_last():
    p = pipeline(tasks_yaml("{name: a, command: a}", "{name: b, command: b}"))
    d = decide(p, {}, now=0.0, priority={"b": 1.0}, max_parallel=1)
    assert d == Decision(start=("b",), wait=("a",))


# --- capacity -------------------------------------------------------------------------------------------------

CAPACITY = Resources(cpu=4.0, mem=8 * GIB, accelerators=(("cuda.shares", 2.0),))


@pytest.mark.parametrize(
    "resources, needs",
    [
        ("{cpu: 8}", "cpu 8 · mem 1g"),
        ("{cpu: 1, mem: 16g}", "cpu 1 · mem 16g"),
        ("{cpu: 1, mem: 1g, cuda.shares: 3}", "cpu 1 · mem 1g · cuda.shares 3"),
        ("{cpu: 1, mem: 1g, cuda.device: 1}", "cpu 1 · mem 1g · cuda.device 1"),
    ],
    ids=["cpu", "mem", "more-cuda", "other-accelerator"],
)
def test_a_task_that_needs_more_than_the_capacity_can_never_run(resources, needs):
    p = pipeline(tasks_yaml(f"{{name: big, command: b, resources: {resources}}}", "{name: small, command: s}"))
    d = step(p, capacity=CAPACITY)
    assert d.start == ("small",)
    assert d.fail == {"big": f"needs {needs}, more than the executor has (cpu 4 · mem 8g · cuda.shares 2)"}
    assert "big" not in d.wait


def test_a_gpu_task_can_never_run_on_an_executor_without_gpus():
    p = pipeline(tasks_yaml("{name: gpu, command: g, resources: {cpu: 1, mem: 1g, cuda.shares: 0.5}}"))
    d = step(p, capacity=Resources(cpu=64.0, mem=256 * GIB))
    assert d.fail == {"gpu": "needs cpu 1 · mem 1g · cuda.shares 0.5, more than the executor has (cpu 64 · mem 256g)"}
    assert d.start == ()


def test_a_task_that_needs_exactly_the_capacity_fits():
    p = pipeline(tasks_yaml("{name: all, command: a, resources: {cpu: 4, mem: 8g, cuda.shares: 2}}"))
    assert step(p, capacity=CAPACITY) == Decision(start=("all",))


FOUR_TWO_CPU = tasks_yaml(
    "{name: a, command: a, resources: {cpu: 2, mem: 1g}}",
    "{name: b, command: b, resources: {cpu: 2, mem: 1g}}",
    "{name: c, command: c, resources: {cpu: 2, mem: 1g}}",
)


def test_tasks_that_fit_together_start_and_the_next_waits():
    d = step(pipeline(FOUR_TWO_CPU), capacity=CAPACITY)
    assert d.start == ("a", "b")
    assert d.wait == ("c",)
    assert d.fail == {}


def test_a_waiting_task_starts_when_capacity_frees():
    p = pipeline(FOUR_TWO_CPU)
    full = Decision(wait=("c",), why={"c": "waiting for capacity (cpu 4 of 4 in use)"})
    assert step(p, instances(a=S.RUNNING, b=S.RUNNING), capacity=CAPACITY) == full
    assert step(p, instances(a=S.SUBMITTED, b=S.RUNNING), capacity=CAPACITY) == full
    assert step(p, instances(a=S.SUCCEEDED, b=S.RUNNING), capacity=CAPACITY) == Decision(start=("c",))


def test_capacity_counts_memory_and_accelerators_of_running_tasks():
    p = pipeline(
        tasks_yaml(
            "{name: gpu1, command: a, resources: {cpu: 1, mem: 1g, cuda.shares: 1.5}}",
            "{name: gpu2, command: b, resources: {cpu: 1, mem: 1g, cuda.shares: 1}}",
            "{name: mem1, command: c, resources: {cpu: 1, mem: 6g}}",
            "{name: mem2, command: d, resources: {cpu: 1, mem: 6g}}",
        )
    )
    d = step(p, capacity=CAPACITY)
    assert d.start == ("gpu1", "mem1")
    assert d.wait == ("gpu2", "mem2")
    assert d.why == {
        "gpu2": "waiting for capacity (cuda.shares 1.5 of 2 in use)",
        "mem2": "waiting for capacity (mem 7g of 8g in use)",
    }
    d = step(p, instances(gpu1=S.RUNNING, mem1=S.SUCCEEDED), capacity=CAPACITY)
    assert d == Decision(
        start=("mem2",), wait=("gpu2",), why={"gpu2": "waiting for capacity (cuda.shares 1.5 of 2 in use)"}
    )


def test_capacity_and_max_parallel_together():
    p = pipeline(FOUR_TWO_CPU)
    assert step(p, capacity=CAPACITY, max_parallel=1) == Decision(start=("a",), wait=("b", "c"))


def test_ties_keep_file_order_within_capacity():
    p = pipeline(
        tasks_yaml(
            "{name: c, command: c, resources: {cpu: 3, mem: 1g}}",
            "{name: a, command: a, resources: {cpu: 3, mem: 1g}}",
            "{name: b, command: b, resources: {cpu: 3, mem: 1g}}",
        )
    )
    d = step(p, capacity=CAPACITY)
    assert (d.start, d.wait) == (("c",), ("a", "b"))


def test_no_capacity_means_no_limit():
    p = pipeline(tasks_yaml("{name: huge, command: h, resources: {cpu: 512, mem: 4t, cuda.shares: 64}}"))
    assert step(p) == Decision(start=("huge",))


# --- retry_at -------------------------------------------------------------------------------------------------


def task_with(retry: str | None):
    line = "{name: t, command: t" + (f", retry: {retry}" if retry else "") + "}"
    return pipeline(tasks_yaml(line)).task("t")


def test_no_retry_without_a_retry_setting():
    assert retry_at(task_with(None), (failed_attempt(),), now=10.0) is None


def test_no_retry_before_any_attempt():
    assert retry_at(task_with("{max_attempts: 3}"), (), now=10.0) is None


def test_no_retry_once_max_attempts_is_reached():
    task = task_with("{max_attempts: 3, delay: 5}")
    assert retry_at(task, (failed_attempt(1),), now=10.0) == 15.0
    assert retry_at(task, (failed_attempt(1), failed_attempt(2)), now=10.0) == 15.0
    assert retry_at(task, (failed_attempt(1), failed_attempt(2), failed_attempt(3)), now=10.0) is None


@pytest.mark.parametrize("outcome", [Outcome.SUCCEEDED, Outcome.CANCELLED])
def test_no_retry_after_an_attempt_that_succeeded_or_was_cancelled(outcome):
    task = task_with("{max_attempts: 5, delay: 5}")
    assert retry_at(task, (failed_attempt(1), failed_attempt(2, outcome)), now=10.0) is None


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.TIMED_OUT, Outcome.INTERRUPTED, Outcome.ERROR])
def test_failed_and_timed_out_attempts_are_retried(outcome):
    task = task_with("{max_attempts: 2, delay: 30s}")
    assert retry_at(task, (failed_attempt(1, outcome),), now=100.0) == 130.0


def test_without_backoff_the_delay_is_fixed():
    task = task_with("{max_attempts: 5, delay: 1m}")
    attempts = tuple(failed_attempt(n) for n in range(1, 5))
    assert [retry_at(task, attempts[:n], now=1000.0) for n in range(1, 5)] == [1060.0] * 4


def test_no_delay_means_the_retry_may_start_now():
    assert retry_at(task_with("{max_attempts: 2}"), (failed_attempt(),), now=42.0) == 42.0
    assert retry_at(task_with("{max_attempts: 2, backoff: 3}"), (failed_attempt(),), now=42.0) == 42.0


def test_with_backoff_the_delay_grows_by_the_factor_per_attempt_with_equal_jitter():
    task = task_with("{max_attempts: 5, delay: 10s, backoff: 3}")
    rng = random.Random(1234)
    for n, full in [(1, 10.0), (2, 30.0), (3, 90.0), (4, 270.0)]:
        attempts = tuple(failed_attempt(k) for k in range(1, n + 1))
        delays = [retry_at(task, attempts, now=0.0, rng=rng) for _ in range(2000)]
        assert all(full / 2 <= d <= full for d in delays), (n, min(delays), max(delays))
        # The jitter spreads over the whole half-range, not one value.
        assert min(delays) < full / 2 + full * 0.05
        assert max(delays) > full - full * 0.05
        assert len(set(delays)) > 1000


def test_backoff_jitter_is_reproducible_with_a_seeded_rng():
    task = task_with("{max_attempts: 3, delay: 10s, backoff: 2}")
    first = [retry_at(task, (failed_attempt(),), now=5.0, rng=random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1
    assert 10.0 <= first[0] <= 15.0
