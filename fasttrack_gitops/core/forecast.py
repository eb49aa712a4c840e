"""What a run of a pipeline will do, said before it starts: which tasks run, which are reused, why, and the cost. Pure.

`plan` (the command and the Action's `mode: plan`) asks the task cache about
every task whose key can be known now and hands the answers here as
`Cached` records; this module applies the runner's rules to them
(engine/cache/job_cache.py), so the forecast and the run agree:

- `skip: true` -> skip (its outputs are an empty folder, which its dependants'
  keys are made of, so they can still be reused);
- cache off for the task, or `--no-cache` -> run;
- an input that will run -> run: the dependant's key holds that input's
  outputs digest, unknown until it ends. When the dependant has an earlier
  entry it may still be reused (early cutoff: the input rewrites
  byte-identical outputs), and the reason says so;
- otherwise the cache's answer: a hit is reused, a miss runs and says why.

Estimates are past durations (the median of earlier successful attempts);
the job's estimate is its critical path: the longest chain of tasks that
run, reused and skipped tasks costing nothing. Resources are what the task
requests times its estimate (per node, times the cluster size).

`as_json` is a published interface (`plan --format json`): keys are only added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.core.pipeline.model import Pipeline, Task

Action = Literal["run", "reuse", "skip"]

CACHE_OFF = "cache off for this task"
NO_CACHE = "--no-cache: nothing is reused"
SKIPPED = "skip: true in the pipeline"


@dataclass(frozen=True)
class Cached:
    """The cache's answer for one task whose key was known: a hit names the job whose outputs stand in."""

    reuse_from: str | None  # the job of the entry found; None: a miss
    reason: str  # a hit: "reused from job ... (commit ...)"; a miss: why ("code of tasks/train changed (...)")


@dataclass(frozen=True)
class TaskPlan:
    name: str
    action: Action
    reason: str
    reuse_from: str | None = None  # the job whose outputs a reused task stands on
    estimate_s: float | None = None  # its past median duration; None when it never succeeded here
    cpu_hours: float | None = None  # requested cpu x nodes x estimate (spent when it runs, saved when reused)
    gpu_hours: float | None = None  # the same for accelerators (shares or devices, as the task requests them)
    critical: bool = False  # on the critical path
    since_base: tuple[str, ...] = ()  # `--base`: what of its key changed since the base revision


@dataclass(frozen=True)
class Totals:
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0


@dataclass(frozen=True)
class Forecast:
    pipeline: str
    commit: str | None
    tasks: tuple[TaskPlan, ...]
    estimate_s: float | None  # the critical path's length; None when no task that runs has an estimate
    critical_path: tuple[str, ...]  # tasks that run, in order
    run: Totals = field(default_factory=Totals)  # what the tasks that run will use
    saved: Totals = field(default_factory=Totals)  # what reusing spares (the reused tasks' past cost)
    base: str | None = None  # the revision `since_base` compares with
    warnings: tuple[str, ...] = ()  # what the keys could not take in ("cache path ... matches no file")

    def count(self, action: Action) -> int:
        return sum(t.action == action for t in self.tasks)

    @property
    def unestimated(self) -> tuple[str, ...]:
        """Tasks that run with no past duration: the estimate leaves them out."""
        return tuple(t.name for t in self.tasks if t.action == "run" and t.estimate_s is None)


def blocking_input(task: Task, actions: Mapping[str, Action]) -> str | None:
    """The first input that will run (its outputs, hence the task's key, unknown until it ends); None when every
    input is reused or skipped, so the key can be computed now."""
    return next((d for d in task.dependencies if actions.get(d) == "run"), None)


def decide(
    task: Task, actions: Mapping[str, Action], cached: Cached | None, *, no_cache: bool, earlier: bool
) -> tuple[Action, str, str | None]:
    """(action, reason, reuse_from) of one task, its inputs' actions decided; `earlier`: the cache holds an
    entry for a task of this name (so early cutoff can reuse it)."""
    if task.skip:
        return "skip", SKIPPED, None
    if not task.cache:
        return "run", CACHE_OFF, None
    if no_cache:
        return "run", NO_CACHE, None
    blocked = blocking_input(task, actions)
    if blocked is not None:
        reason = f"input '{blocked}' will run"
        if earlier:
            reason += "; reused if its outputs come out byte-identical"
        return "run", reason, None
    if cached is None:  # the caller looked nothing up for it: say so rather than guess
        return "run", "its cache key could not be computed", None
    if cached.reuse_from is not None:
        return "reuse", cached.reason, cached.reuse_from
    return "run", cached.reason, None


def forecast(
    pipeline: Pipeline,
    cached: Mapping[str, Cached],
    durations: Mapping[str, float],
    *,
    commit: str | None = None,
    no_cache: bool = False,
    earlier: Iterable[str] = (),
) -> Forecast:
    """The forecast of a job of `pipeline`: `cached` holds the cache's answer for the tasks whose key was known,
    `durations` past median seconds by task, `earlier` the tasks the cache has any entry for."""
    has_earlier = set(earlier)
    by_name = {t.name: t for t in pipeline.tasks}
    actions: dict[str, Action] = {}
    plans: dict[str, TaskPlan] = {}
    for name in dag.topological_order(pipeline.graph):
        task = by_name[name]
        action, reason, reuse_from = decide(
            task, actions, cached.get(name), no_cache=no_cache, earlier=name in has_earlier
        )
        actions[name] = action
        estimate = durations.get(name)
        cpu, gpu = _hours(task, estimate) if action != "skip" else (0.0, 0.0)
        plans[name] = TaskPlan(name, action, reason, reuse_from, estimate, cpu, gpu)
    path, length = critical_path(pipeline, plans)
    on_path = set(path)
    tasks = tuple(replace(plans[t.name], critical=t.name in on_path) for t in pipeline.tasks)
    running = [t for t in tasks if t.action == "run"]
    return Forecast(
        pipeline=pipeline.name,
        commit=commit,
        tasks=tasks,
        estimate_s=length if any(t.estimate_s is not None for t in running) else (0.0 if not running else None),
        critical_path=path,
        run=_total(running),
        saved=_total(t for t in tasks if t.action == "reuse"),
    )


def critical_path(pipeline: Pipeline, plans: Mapping[str, TaskPlan]) -> tuple[tuple[str, ...], float]:
    """(the tasks that run on the longest chain, its seconds). A task that runs without an estimate counts 0 s
    but still lengthens a chain by one task, so with no estimates at all the path is the longest chain."""
    graph = pipeline.graph
    finish: dict[str, tuple[float, int]] = {}
    via: dict[str, str | None] = {}
    for name in dag.topological_order(graph):
        plan = plans[name]
        own = (plan.estimate_s or 0.0, 1) if plan.action == "run" else (0.0, 0)
        before = max(graph[name], key=lambda d: finish[d], default=None)
        start = finish[before] if before is not None else (0.0, 0)
        finish[name] = (start[0] + own[0], start[1] + own[1])
        via[name] = before
    if not finish:
        return (), 0.0
    end: str | None = max(finish, key=lambda n: finish[n])
    length = finish[end][0] if end is not None else 0.0
    path: list[str] = []
    while end is not None:
        if plans[end].action == "run":
            path.append(end)
        end = via[end]
    return tuple(reversed(path)), length


def with_base(found: Forecast, base: str, changed: Mapping[str, tuple[str, ...]]) -> Forecast:
    """The forecast with each task's changes since the base revision (`changed`: task -> what changed)."""
    tasks = tuple(replace(t, since_base=tuple(changed.get(t.name, ()))) for t in found.tasks)
    return replace(found, tasks=tasks, base=base)


def as_json(found: Forecast) -> dict[str, Any]:
    """The forecast as plain JSON (`plan --format json`; a published shape: keys are only ever added)."""
    return {
        "pipeline": found.pipeline,
        "commit": found.commit,
        "base": found.base,
        "tasks": [
            {
                "name": t.name,
                "action": t.action,
                "reason": t.reason,
                "reuse_from": t.reuse_from,
                "estimate_s": t.estimate_s,
                "cpu_hours": t.cpu_hours,
                "gpu_hours": t.gpu_hours,
                "critical": t.critical,
                "since_base": list(t.since_base),
            }
            for t in found.tasks
        ],
        "counts": {action: found.count(action) for action in ("run", "reuse", "skip")},
        "estimate_s": found.estimate_s,
        "unestimated": list(found.unestimated),
        "critical_path": list(found.critical_path),
        "warnings": list(found.warnings),
        "resources": {
            "run": {"cpu_hours": found.run.cpu_hours, "gpu_hours": found.run.gpu_hours},
            "saved": {"cpu_hours": found.saved.cpu_hours, "gpu_hours": found.saved.gpu_hours},
        },
    }


def _hours(task: Task, estimate: float | None) -> tuple[float | None, float | None]:
    if estimate is None:
        return None, None
    nodes = max(1, task.cluster_size)
    return task.resources.cpu * nodes * estimate / 3600, task.resources.gpu * nodes * estimate / 3600


def _total(tasks: Iterable[TaskPlan]) -> Totals:
    cpu = gpu = 0.0
    for t in tasks:
        cpu += t.cpu_hours or 0.0
        gpu += t.gpu_hours or 0.0
    return Totals(cpu, gpu)
