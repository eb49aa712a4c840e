"""Pipeline and Task: a checked pipeline file with every default filled in.

`normalise` is only called on data that passed the schema and the semantic
checks, so it converts without re-checking. `to_fasttrack` writes the
FastTrack export shape back, so a pipeline imported from the GUI can be
exported for it again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from fasttrack_gitops.core.pipeline import params as parameters
from fasttrack_gitops.core.pipeline.params import Param
from fasttrack_gitops.core.pipeline.units import format_size, parse_amount, parse_duration, parse_size

if TYPE_CHECKING:  # results.py (five dataclasses) is imported only for a task that declares results: _results
    from fasttrack_gitops.core.pipeline.results import MetricsSpec, Plot

DEFAULT_CPU = 1.0
DEFAULT_MEM = 1 << 30  # 1g
SERVICE_TYPES = ("deployment", "serving")
# The keys fasttrack-gitops adds to the FastTrack format; FastTrack itself does not know them.
GITOPS_PIPELINE_KEYS = ("on", "concurrency", "notify")
GITOPS_TASK_KEYS = ("code", "timeout", "cache", "metrics", "plots", "artifacts")
# The ${{ name }} placeholders a concurrency group may use; concurrency_groups.PLACEHOLDERS documents each
# and fills them in. Kept here so the semantic check needs nothing outside the pipeline package.
CONCURRENCY_PLACEHOLDERS = ("ref", "branch", "pr", "sha", "pipeline", "repository", "event")


class Concurrency(TypedDict):
    """A pipeline's normalised `concurrency`: jobs of one group run one at a time."""

    group: str  # may hold ${{ placeholders }}
    cancel_in_progress: bool


@dataclass(frozen=True)
class Resources:
    cpu: float = DEFAULT_CPU
    mem: int = DEFAULT_MEM  # bytes
    shmem: int | None = None  # bytes
    accelerators: tuple[tuple[str, float], ...] = ()  # (("cuda.shares", 1.5),)

    @property
    def gpu(self) -> float:
        """GPU amount in the task's own unit (shares or devices); 0 when none is requested."""
        return sum(amount for _, amount in self.accelerators)

    def describe(self) -> str:
        """'cpu 4 · mem 16g · cuda.shares 1', for graphs and tables."""
        parts = [f"cpu {_number(self.cpu)}", f"mem {format_size(self.mem)}"]
        parts += [f"{slot} {_number(amount)}" for slot, amount in self.accelerators]
        return " · ".join(parts)


@dataclass(frozen=True)
class Mount:
    vfolder: str
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.vfolder}:{self.alias}" if self.alias else self.vfolder


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 1
    delay: float = 0.0  # seconds
    backoff: float = 1.0  # delay factor per attempt; 1 means a fixed delay


@dataclass(frozen=True)
class Task:
    name: str
    command: str | None = None
    type: str = "custom"  # as written: custom, Custom Task, deployment, serving
    description: str = ""
    dependencies: tuple[str, ...] = ()
    skip: bool = False
    continue_on_failure: bool = False
    cluster_mode: str = "single-node"
    cluster_size: int = 1
    module_uri: str = ""
    project: str | None = None
    scaling_group: str | None = None
    image: str | None = None
    envs: tuple[tuple[str, str], ...] = ()
    resources: Resources = field(default_factory=Resources)
    mounts: tuple[Mount, ...] = ()
    retry: Retry = field(default_factory=Retry)
    service: Mapping[str, Any] | None = None
    code: str | None = None  # repository-relative directory, normalised
    timeout: float | None = None  # seconds
    cache: bool = False  # reuse outputs of an earlier run with the same cache key (core/cache.py)
    cache_paths: tuple[str, ...] = ()  # repository globs whose content is part of the key
    # What the task's outputs hold for people (pipeline/results.py); a job frozen before these existed has none.
    metrics: MetricsSpec | None = None
    plots: tuple[Plot, ...] = ()
    artifacts: tuple[str, ...] = ()  # files or folders (ending in /) under the outputs

    @property
    def is_service(self) -> bool:
        return self.type in SERVICE_TYPES


@dataclass(frozen=True)
class Pipeline:
    name: str
    version: str
    tasks: tuple[Task, ...]
    description: str = ""
    ownership: Mapping[str, Any] = field(default_factory=dict)
    envs: tuple[tuple[str, str], ...] = ()
    params: tuple[Param, ...] = ()  # each with the value a job runs with (params.py)
    triggers: Mapping[str, Any] | None = None  # normalised `on`; None when the file has none
    concurrency: Concurrency | None = None
    notify: Mapping[str, Any] = field(default_factory=dict)

    def task(self, name: str) -> Task:
        return self.by_name[name]

    @property
    def by_name(self) -> Mapping[str, Task]:
        """Its tasks by name, in file order (never modify it)."""
        by_name: dict[str, Task] | None = self.__dict__.get("_by_name")
        if by_name is None:  # built on first use, beside the fields: a runner looks tasks up thousands of times
            by_name = self.__dict__["_by_name"] = {t.name: t for t in self.tasks}
        return by_name

    @property
    def position(self) -> Mapping[str, int]:
        """Each task's place in the file (the scheduler's tie-break), built once like by_name."""
        position: dict[str, int] | None = self.__dict__.get("_position")
        if position is None:
            position = self.__dict__["_position"] = {t.name: i for i, t in enumerate(self.tasks)}
        return position

    @property
    def graph(self) -> dict[str, tuple[str, ...]]:
        return {t.name: t.dependencies for t in self.tasks}


def normalise(data: Mapping[str, Any]) -> Pipeline:
    """A checked pipeline mapping -> Pipeline."""
    return Pipeline(
        name=data["name"],
        version=str(data["version"]),
        description=data.get("description") or "",
        ownership={k: v for k, v in (data.get("ownership") or {}).items() if not k.startswith("x-")},
        envs=_envs((data.get("environment") or {}).get("envs")),
        params=tuple(parameters.from_item(i) for i in data.get("params") or () if isinstance(i, Mapping)),
        tasks=tuple(_task(t, data.get("cache")) for t in data["tasks"]),
        triggers=_triggers(data["on"]) if "on" in data else None,
        concurrency=_concurrency(data.get("concurrency")),
        notify=_strip_x(data.get("notify") or {}),
    )


def _task(t: Mapping[str, Any], default_cache: Any = None) -> Task:
    env = t.get("environment") or {}
    cache, cache_paths = _cache(t["cache"] if "cache" in t else _default_cache(t, default_cache))
    retry = t.get("retry") or {}
    service = t.get("service")
    return Task(
        name=t["name"],
        command=t.get("command"),
        type=t.get("type", "custom"),
        description=t.get("description") or "",
        dependencies=tuple(t.get("dependencies") or ()),
        skip=t.get("skip", False),
        continue_on_failure=t.get("continue_on_failure", False),
        cluster_mode=t.get("cluster_mode", "single-node"),
        cluster_size=t.get("cluster_size", 1),
        module_uri=t.get("module_uri") or "",
        project=env.get("project"),
        scaling_group=env.get("scaling-group"),
        image=env.get("image"),
        envs=_envs(env.get("envs")),
        resources=_resources(t.get("resources") or {}, t.get("resource_opts") or {}),
        mounts=tuple(_mount(m) for m in t.get("mounts") or ()),
        retry=Retry(
            max_attempts=retry.get("max_attempts", 1),
            delay=parse_duration(retry.get("delay", 0)),
            backoff=float(retry.get("backoff", 1)),
        ),
        service=_strip_x(service) if service is not None else None,
        code=_code_path(t["code"]) if t.get("code") else None,
        timeout=parse_duration(t["timeout"]) if t.get("timeout") is not None else None,
        cache=cache,
        cache_paths=cache_paths,
        **_results(t),
    )


def _results(t: Mapping[str, Any]) -> dict[str, Any]:
    """The task's metrics, plots and artifacts, when it declares any (results.py is imported then: most tasks
    declare none, and its dataclasses were a measurable part of every `run`'s and `validate`'s start-up)."""
    if not (t.get("metrics") or t.get("plots") or t.get("artifacts")):
        return {}  # the fields' defaults: what results.py makes of absent keys (None, (), ())
    from fasttrack_gitops.core.pipeline import results

    return {
        "metrics": results.metrics_spec(t.get("metrics")),
        "plots": results.plots(t.get("plots")),
        "artifacts": results.artifacts(t.get("artifacts")),
    }


def _default_cache(t: Mapping[str, Any], default: Any) -> Any:
    """The pipeline's cache default, for a task that has none; a deployment or serving task has side effects
    (it changes a running service), so it is cached only when it says so itself."""
    return False if t.get("type") in SERVICE_TYPES else default


def _cache(value: Any) -> tuple[bool, tuple[str, ...]]:
    """`cache: true | false | {paths: [...]}` -> (on, paths); paths alone turn it on."""
    if isinstance(value, Mapping):
        return True, tuple(value.get("paths") or ())
    return bool(value), ()


def _resources(res: Mapping[str, Any], opts: Mapping[str, Any]) -> Resources:
    return Resources(
        cpu=parse_amount(res.get("cpu", DEFAULT_CPU), positive=True),
        mem=parse_size(res.get("mem", DEFAULT_MEM)),
        shmem=parse_size(opts["shmem"]) if opts.get("shmem") is not None else None,
        accelerators=tuple(
            (slot, parse_amount(amount))
            for slot, amount in res.items()
            if slot not in ("cpu", "mem") and not slot.startswith("x-")
        ),
    )


def _mount(text: str) -> Mount:
    vfolder, _, alias = text.partition(":")
    return Mount(vfolder, alias or None)


def _code_path(code: str) -> str:
    return posixpath.normpath(code)


def _envs(envs: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((k, _env_value(v)) for k, v in (envs or {}).items())


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strip_x(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Drop x- keys, at every depth: they are the author's, not ours."""
    return {k: _strip_x(v) if isinstance(v, dict) else v for k, v in mapping.items() if not k.startswith("x-")}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _triggers(on: Any) -> dict[str, Any]:
    """`on` in every spelling GitHub Actions allows -> {event: {filter: [patterns]}}."""
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {event: {} for event in on}
    out: dict[str, Any] = {}
    for event, spec in _strip_x(on).items():
        if event == "schedule":
            out[event] = [{"cron": item["cron"]} for item in spec]
        elif event == "manual":
            if spec is not False:
                out[event] = {}
        else:
            out[event] = {key: _as_list(value) for key, value in (spec or {}).items()}
    return out


def _concurrency(value: Any) -> Concurrency | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"group": value, "cancel_in_progress": False}
    return {"group": value["group"], "cancel_in_progress": value.get("cancel_in_progress", False)}


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def to_fasttrack(p: Pipeline, *, include_gitops: bool = False) -> dict[str, Any]:
    """The pipeline in FastTrack's export shape (for import into the FastTrack GUI).

    With include_gitops the GitOps additions (code, timeout, cache, metrics,
    plots, artifacts, on, concurrency, notify) are written too, so the result is a complete
    repository pipeline file again.
    """
    out: dict[str, Any] = {"version": p.version, "name": p.name, "description": p.description}
    if p.ownership:
        out["ownership"] = dict(p.ownership)
    out["environment"] = {"envs": dict(p.envs)}
    out["params"] = [parameters.to_item(param, with_value=include_gitops) for param in p.params]
    out["tasks"] = [_task_to_fasttrack(t, include_gitops) for t in p.tasks]
    if include_gitops:
        if p.triggers is not None:
            out["on"] = p.triggers
        if p.concurrency is not None:
            out["concurrency"] = dict(p.concurrency)
        if p.notify:
            out["notify"] = p.notify
    return out


def _task_to_fasttrack(t: Task, include_gitops: bool) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for key, value in (("project", t.project), ("scaling-group", t.scaling_group), ("image", t.image)):
        if value is not None:
            env[key] = value
    env["envs"] = dict(t.envs)
    out: dict[str, Any] = {
        "name": t.name,
        "description": t.description,
        "type": t.type,
        "dependencies": list(t.dependencies),
        "skip": t.skip,
        "continue_on_failure": t.continue_on_failure,
        "cluster_mode": t.cluster_mode,
        "cluster_size": t.cluster_size,
        "module_uri": t.module_uri,
        "environment": env,
        "resources": {
            "cpu": int(t.resources.cpu) if t.resources.cpu.is_integer() else t.resources.cpu,
            "mem": format_size(t.resources.mem),
            **{slot: _number(amount) for slot, amount in t.resources.accelerators},
        },
    }
    if t.command is not None:
        out["command"] = t.command
    if t.resources.shmem is not None:
        out["resource_opts"] = {"shmem": format_size(t.resources.shmem)}
    if t.mounts:
        out["mounts"] = [str(m) for m in t.mounts]
    if t.retry != Retry():
        out["retry"] = {"max_attempts": t.retry.max_attempts, "delay": t.retry.delay}
        if t.retry.backoff != 1:
            out["retry"]["backoff"] = t.retry.backoff
    if t.service is not None:
        out["service"] = dict(t.service)
    if include_gitops:
        if t.code is not None:
            out["code"] = t.code
        if t.timeout is not None:
            out["timeout"] = t.timeout
        if t.cache_paths:
            out["cache"] = {"paths": list(t.cache_paths)}
        elif t.cache:
            out["cache"] = True
        if t.metrics is not None or t.plots or t.artifacts:  # else results_to_spec adds nothing
            from fasttrack_gitops.core.pipeline import results

            out.update(results.results_to_spec(t.metrics, t.plots, t.artifacts))
    return out
