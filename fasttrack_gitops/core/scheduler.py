"""What a job does next: which task instances start now, which are skipped, which wait. Pure.

The runner calls `decide` whenever something changed (an attempt ended, a
retry delay passed) and applies the decision; nothing here touches a process,
a clock or a database, so every rule is tested on plain data.

Rules, FastTrack's and GitHub Actions' way:
- a task runs once every dependency has ended and lets it run: succeeded,
  skipped with `skip: true`, or failed with `continue_on_failure`;
- `skip: true` tasks do not run, and count as succeeded for their dependents;
- a dependency that failed (or was skipped or cancelled because of a failure)
  skips its dependents, with that reason;
- among the tasks ready to start, the one on the longest remaining path goes
  first (past durations where known), within `max_parallel` and the
  executor's capacity.

Capacity is one `Resources` for an executor whose tasks share one pool (the
local machine), or a `Capacity` per scaling group (Backend.AI: a task draws
on the group it names, None being the cluster's default). A group's `free`
counts what the job's own active tasks hold as free too, because the
scheduler adds those back as used; its `limit` is the most the group could
ever give: a task asking for more fails at once, one that only has to wait
says for what ("waiting for capacity (cpu 2 of 2 in use)").
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fasttrack_gitops.core.job import (
    ACTIVE,
    ENDED,
    SKIP_REQUESTED,
    Attempt,
    Outcome,
    TaskInstance,
    TaskState,
    satisfies_dependents,
)
from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.core.pipeline.model import Pipeline, Resources, Task
from fasttrack_gitops.core.pipeline.units import format_size

_SETTLED = ENDED | ACTIVE  # nothing to decide about these
DEFAULT_DURATION = 1.0  # seconds assumed for a task never seen before; only the ratios matter
# A slot without a limit: math.inf for cpu and accelerators; mem is whole bytes, so this (8 EiB) stands for it.
UNLIMITED_MEM = (1 << 63) - 1


@dataclass(frozen=True)
class Capacity:
    """What one scaling group gives a job: `free` now (its own active tasks' share included) and `limit`, the most
    it could ever give. A slot without a limit is math.inf (cpu, accelerators) or UNLIMITED_MEM."""

    free: Resources
    limit: Resources


# One pool for every task (Resources: free and limit at once), one per scaling group (None: the default), or none.
CapacityLike = Resources | Mapping[str | None, Capacity] | None
ZERO = Resources(cpu=0.0, mem=0, accelerators=())  # frozen: one for every sum that starts from nothing


@dataclass(frozen=True)
class Decision:
    start: tuple[str, ...] = ()  # start an attempt of each, in this order
    skip: Mapping[str, str] = field(default_factory=dict)  # task -> reason
    wait: tuple[str, ...] = ()  # ready, but no slot, capacity or the retry delay is not over
    fail: Mapping[str, str] = field(default_factory=dict)  # can never run here: task -> reason
    wake_at: float | None = None  # the earliest retry that is not due yet
    why: Mapping[str, str] = field(default_factory=dict)  # waiting task -> reason, when it waits for capacity


def priorities(pipeline: Pipeline, durations: Mapping[str, float] | None = None) -> dict[str, float]:
    """Length of the longest path from each task to the end of the DAG, in expected seconds."""
    durations = durations or {}
    children = dag.dependents(pipeline.graph)
    longest: dict[str, float] = {}
    for name in reversed(dag.topological_order(pipeline.graph)):
        own = durations.get(name, DEFAULT_DURATION)
        longest[name] = own + max((longest[c] for c in children[name]), default=0.0)
    return longest


def order(pipeline: Pipeline) -> tuple[str, ...]:
    """The order `decide` visits tasks in (topological); compute it once per job and pass it in."""
    return tuple(dag.topological_order(pipeline.graph))


def decide(
    pipeline: Pipeline,
    tasks: Mapping[str, TaskInstance],
    *,
    now: float,
    priority: Mapping[str, float],
    order: Sequence[str] | None = None,
    max_parallel: int | None = None,
    capacity: CapacityLike = None,
) -> Decision:
    """The next step for a job whose task instances are in `tasks` (missing ones are pending)."""
    by_name = pipeline.by_name
    state = dict(tasks)  # the runner passes every task; a cheap copy then
    if state.keys() != by_name.keys():
        state = {name: tasks.get(name, TaskInstance(name)) for name in by_name}
    skip: dict[str, str] = {}
    ready: list[Task] = []
    waiting: list[str] = []
    wake_at: float | None = None

    # Topological order, so a skip cascades down the DAG within one decision.
    for name in order if order is not None else dag.topological_order(pipeline.graph):
        instance = state[name]
        if instance.state in _SETTLED:  # most of a large job, most of the time: one set lookup
            continue
        task = by_name[name]
        # A dependency that ended without letting it run skips it at once, even while others still run. One plain
        # loop: a chain of N tasks visits ~N^2/2 dependencies in all, so this is the scheduler's inner loop.
        blocked, unfinished = None, False
        for dependency_name in task.dependencies:
            d = state[dependency_name]
            if d.state not in ENDED:
                unfinished = True
            elif not satisfies_dependents(d, by_name[dependency_name].continue_on_failure):
                blocked = d
                break
        if blocked is not None:
            skip[name] = f"dependency '{blocked.name}' {_ended_how(blocked)}"
            state[name] = TaskInstance(name, TaskState.SKIPPED, reason=skip[name])
            continue
        if unfinished:
            continue
        if task.skip:
            skip[name] = SKIP_REQUESTED
            state[name] = TaskInstance(name, TaskState.SKIPPED, reason=SKIP_REQUESTED)
            continue
        if instance.next_attempt_at is not None and instance.next_attempt_at > now:
            waiting.append(name)
            wake_at = instance.next_attempt_at if wake_at is None else min(wake_at, instance.next_attempt_at)
            continue
        ready.append(task)

    position = pipeline.position
    ready.sort(key=lambda t: (-priority.get(t.name, 0.0), position[t.name]))  # ties: file order
    active = [by_name[n] for n, i in state.items() if i.state in ACTIVE]
    slots = None if max_parallel is None else max(0, max_parallel - len(active))
    used: dict[str | None, Resources] = {}
    for t in active:
        used[_pool(t, capacity)] = _add(used.get(_pool(t, capacity), ZERO), t.resources)
    start: list[str] = []
    fail: dict[str, str] = {}
    why: dict[str, str] = {}
    for i, task in enumerate(ready):
        if capacity is None and slots is not None and len(start) >= slots:
            waiting += (t.name for t in ready[i:])  # no slot left, and nothing can be too big: the rest wait
            break
        pool = _pool(task, capacity)
        room = _capacity_for(task, capacity)
        held = used.get(pool, ZERO)
        if room is not None and not _fits(task.resources, ZERO, room.limit):
            fail[task.name] = _too_big(task, capacity, room.limit)
        elif slots is not None and len(start) >= slots:
            waiting.append(task.name)
        elif room is None or _fits(task.resources, held, room.free):
            start.append(task.name)
            used[pool] = _add(held, task.resources)
        else:
            waiting.append(task.name)
            why[task.name] = f"waiting for capacity ({_short(task.resources, held, room.free)})"
    return Decision(tuple(start), skip, tuple(waiting), fail, wake_at, why)


def retry_at(task: Task, attempts: tuple[Attempt, ...], now: float, rng: random.Random | None = None) -> float | None:
    """When the next attempt of a task whose last attempt failed may start; None when it may not.

    Up to `retry.max_attempts` attempts, `retry.delay` apart; with `backoff`
    the delay grows by that factor per attempt, with "equal jitter" (half
    fixed, half random) so that many retries do not fire at once.
    """
    if not attempts or attempts[-1].outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED):
        return None
    if len(attempts) >= task.retry.max_attempts:
        return None
    delay = task.retry.delay * task.retry.backoff ** (len(attempts) - 1)
    if task.retry.backoff > 1 and delay > 0:
        delay = delay / 2 + (rng or random).uniform(0, delay / 2)
    return now + delay


def _ended_how(instance: TaskInstance) -> str:
    return {TaskState.FAILED: "failed", TaskState.CANCELLED: "was cancelled"}.get(instance.state, "was skipped")


def _pool(task: Task, capacity: CapacityLike) -> str | None:
    """Which pool a task draws on: its scaling group when capacity is per group, else the one pool (None)."""
    return task.scaling_group if capacity is not None and not isinstance(capacity, Resources) else None


def _capacity_for(task: Task, capacity: CapacityLike) -> Capacity | None:
    """The capacity a task draws on; None: no limit (no capacity known, or its scaling group was not reported)."""
    if capacity is None:
        return None
    if isinstance(capacity, Resources):
        return Capacity(capacity, capacity)
    return capacity.get(task.scaling_group)


def _too_big(task: Task, capacity: CapacityLike, limit: Resources) -> str:
    needs = f"needs {task.resources.describe()}"
    if isinstance(capacity, Resources):
        return f"{needs}, more than the executor has ({capacity.describe()})"
    group = f"scaling group '{task.scaling_group}'" if task.scaling_group else "the default scaling group"
    return f"{needs}, more than {group} could ever give ({_limited(limit)})"


def _slots(r: Resources) -> dict[str, float]:
    return {"cpu": r.cpu, "mem": float(r.mem), **dict(r.accelerators)}


def _amount(slot: str, value: float) -> str:
    if slot == "mem":
        return format_size(int(value))
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _unlimited(slot: str, value: float) -> bool:
    return value >= (UNLIMITED_MEM if slot == "mem" else math.inf)


def _limited(limit: Resources) -> str:
    """The slots of a limit that have one: 'cpu 2 · mem 8g'."""
    words = [f"{slot} {_amount(slot, v)}" for slot, v in _slots(limit).items() if not _unlimited(slot, v)]
    return " · ".join(words) or "no limit"


def _short(request: Resources, used: Resources, free: Resources) -> str:
    """The slots a request does not fit in: 'cpu 2 of 2 in use'."""
    have, held = _slots(free), _slots(used)
    words = [
        f"{slot} {_amount(slot, held.get(slot, 0.0))} of {_amount(slot, have.get(slot, 0.0))} in use"
        for slot, amount in _slots(request).items()
        if amount and held.get(slot, 0.0) + amount > have.get(slot, 0.0)
    ]
    return ", ".join(words)


def _add(a: Resources, b: Resources) -> Resources:
    accelerators = dict(a.accelerators)
    for slot, amount in b.accelerators:
        accelerators[slot] = accelerators.get(slot, 0.0) + amount
    return Resources(cpu=a.cpu + b.cpu, mem=a.mem + b.mem, accelerators=tuple(accelerators.items()))


def total(resources: Iterable[Resources]) -> Resources:
    """The sum of some resources (accelerators slot by slot)."""
    total = ZERO
    for r in resources:
        total = _add(total, r)
    return total


def _fits(request: Resources, used: Resources, capacity: Resources) -> bool:
    after = _add(used, request)
    have = dict(capacity.accelerators)
    return (
        after.cpu <= capacity.cpu
        and after.mem <= capacity.mem
        and all(amount <= have.get(slot, 0.0) for slot, amount in after.accelerators)
    )
