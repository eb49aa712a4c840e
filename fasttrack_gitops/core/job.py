"""The job model: a pipeline frozen at a commit, its task instances, and the job's status. Pure.

A PipelineJob is FastTrack's pipeline job: the immutable, executable instance
of a pipeline at one commit. It is stored once and never changed; a re-run is
a new job that names the one it repeats and carries the same frozen spec.
Each task instance is one unit of execution (one process locally, one compute
session on Backend.AI); the job's status is derived from theirs, FastTrack's
way: the job ends when every task instance has ended.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from fasttrack_gitops.core.pipeline import params as parameters
from fasttrack_gitops.core.pipeline.model import Pipeline, normalise, to_fasttrack


class TaskState(str, Enum):
    PENDING = "pending"  # waiting for its dependencies
    WAITING = "waiting"  # ready, waiting for a slot, capacity or a retry delay
    SUBMITTED = "submitted"  # handed to the executor, not started yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    REUSED = "reused"  # not run: the outputs of an earlier run with the same cache key stand in for it
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


ENDED = frozenset({TaskState.SUCCEEDED, TaskState.REUSED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED})
DONE = frozenset({TaskState.SUCCEEDED, TaskState.REUSED})  # its outputs are there: it counts as a success
ACTIVE = frozenset({TaskState.SUBMITTED, TaskState.RUNNING})


class JobStatus(str, Enum):
    QUEUED = "queued"  # the daemon holds it until a slot and its concurrency group let it start
    INVALID = "invalid"  # the pipeline file was not valid at the commit: no tasks, diagnostics instead
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # not ended, and no runner is alive to end it

    def __str__(self) -> str:
        return self.value


# Why a task was skipped: "skip" (skip: true) counts as success for its
# dependents; "upstream" (a dependency failed or was skipped for that reason)
# passes the failure on.
SKIP_REQUESTED = "skip: true"
UPSTREAM_PREFIX = "dependency"


class Outcome(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # non-zero exit
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the runner died while it ran
    ERROR = "error"  # could not be started (bad working directory, executor error)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where a deployment task's model service answers, once it is ready; never a token."""

    name: str  # the service's name on the cluster (or locally)
    url: str
    public: bool = True  # False: a caller needs a token; `access` says how to get one
    access: str = ""  # how to get a token for a non-public service (a command, an API call), never the token
    note: str = ""  # what the server could not honour, e.g. "23.09: deleted and created again (no rolling update)"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "public": self.public, "access": self.access, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceEndpoint:
        return cls(
            str(data.get("name", "")),
            str(data.get("url", "")),
            bool(data.get("public", True)),
            str(data.get("access", "")),
            str(data.get("note", "")),
        )


@dataclass(frozen=True)
class Attempt:
    number: int  # from 1
    started_at: float
    ended_at: float | None = None
    exit_code: int | None = None
    outcome: Outcome | None = None  # None while it runs
    message: str = ""
    service: ServiceEndpoint | None = None  # a deployment task's service, once ready

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True)
class TaskInstance:
    name: str
    state: TaskState = TaskState.PENDING
    attempts: tuple[Attempt, ...] = ()
    reason: str = ""  # why it was skipped, cancelled or failed
    next_attempt_at: float | None = None  # a retry waits until then
    reused_from: str | None = None  # REUSED: the job whose outputs stand in for this task's

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def exit_code(self) -> int | None:
        return self.attempts[-1].exit_code if self.attempts else None

    @property
    def service(self) -> ServiceEndpoint | None:
        """The model service the last attempt made ready (a deployment task); None for any other."""
        return self.attempts[-1].service if self.attempts else None

    @property
    def duration(self) -> float | None:
        """Wall time from the first attempt's start to the last one's end (None until it ends)."""
        if not self.attempts or self.attempts[-1].ended_at is None:
            return None
        return self.attempts[-1].ended_at - self.attempts[0].started_at


@dataclass(frozen=True)
class PipelineJob:
    """The frozen record: what runs, from which commit, why. Never modified once stored."""

    id: str
    pipeline: str  # the pipeline's name
    pipeline_path: str  # repository-relative path of the pipeline file
    repository: str  # where it came from (a path or owner/repo)
    source: str  # "commit" | "worktree" | "unversioned"
    commit: str | None
    ref: str | None
    tree: str  # tree id of the pipeline repository root (tasks without code: run there)
    code_trees: Mapping[str, str]  # task name -> tree id of its code: folder (the root tree when it has none)
    spec: Mapping[str, Any]  # the normalised pipeline, FastTrack export shape with the GitOps fields
    spec_id: str  # content hash of spec
    trigger: Mapping[str, Any] = field(default_factory=dict)  # {"event": "cli", ...}
    created_at: float = 0.0
    rerun_of: str | None = None
    dirty: bool = False  # a worktree snapshot that differs from its commit
    diagnostics: tuple[Mapping[str, Any], ...] = ()  # an invalid job's findings (Diagnostic.as_dict()); its spec is {}

    @property
    def invalid(self) -> bool:
        return not self.spec

    def pipeline_model(self) -> Pipeline:
        """The spec as a Pipeline, made once per record: normalising a 200-task spec takes ~10 ms, and a run asks
        for it from the runner, the cache, the results and the reports (seven times, in a profile of one `run`).
        The record and the model are both immutable, so the one copy is shared."""
        model = self.__dict__.get("_model")
        if model is None:
            model = normalise(dict(self.spec))
            self.__dict__["_model"] = model  # beside the fields: a frozen dataclass takes no attribute assignment
        return model


def spec_of(pipeline: Pipeline) -> dict[str, Any]:
    """The frozen spec: the normalised pipeline in the export shape (plain JSON)."""
    spec: dict[str, Any] = json.loads(json.dumps(to_fasttrack(pipeline, include_gitops=True)))
    return spec


def with_params(pipeline: Pipeline, overrides: Mapping[str, Any] | None) -> Pipeline:
    """The pipeline with the overrides as its parameters' values (the job's spec records them)."""
    if not overrides:
        return pipeline
    return replace(pipeline, params=parameters.apply(pipeline.params, overrides, pipeline=pipeline.name))


def spec_id(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def new_job_id(now: float | None = None) -> str:
    """Sortable and short enough to type a prefix of: 20261128-101530-3fa9c1."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def freeze(
    pipeline: Pipeline,
    *,
    pipeline_path: str,
    repository: str,
    source: str,
    commit: str | None,
    ref: str | None,
    tree: str,
    code_trees: Mapping[str, str],
    trigger: Mapping[str, Any] | None = None,
    dirty: bool = False,
    now: float | None = None,
) -> PipelineJob:
    """A new job for a checked pipeline at a snapshot, with the parameter values its trigger gives (`params`:
    name -> text or JSON scalar; ParamError, before any job exists, for an unknown name or a wrong value)."""
    now = time.time() if now is None else now
    spec = spec_of(with_params(pipeline, (trigger or {}).get("params")))
    return PipelineJob(
        id=new_job_id(now),
        pipeline=pipeline.name,
        pipeline_path=pipeline_path,
        repository=repository,
        source=source,
        commit=commit,
        ref=ref,
        tree=tree,
        code_trees={t.name: code_trees.get(t.name, tree) for t in pipeline.tasks},
        spec=spec,
        spec_id=spec_id(spec),
        trigger=dict(trigger or {"event": "cli"}),
        created_at=now,
        dirty=dirty,
    )


def freeze_invalid(
    name: str,
    diagnostics: Iterable[Mapping[str, Any]],
    *,
    pipeline_path: str,
    repository: str,
    commit: str,
    ref: str | None,
    tree: str,
    trigger: Mapping[str, Any],
    now: float | None = None,
) -> PipelineJob:
    """A job for a pipeline file that was not valid at the commit: it runs nothing and carries the diagnostics.

    The daemon records one so that the commit's check can show why (a broken
    file cannot say whether its triggers would have selected it).
    """
    now = time.time() if now is None else now
    return PipelineJob(
        id=new_job_id(now),
        pipeline=name,
        pipeline_path=pipeline_path,
        repository=repository,
        source="commit",
        commit=commit,
        ref=ref,
        tree=tree,
        code_trees={},
        spec={},
        spec_id="",
        trigger=dict(trigger),
        created_at=now,
        diagnostics=tuple(dict(d) for d in diagnostics),
    )


def rerun(job: PipelineJob, *, trigger: Mapping[str, Any] | None = None, now: float | None = None) -> PipelineJob:
    """A new job with the same frozen spec and snapshot, naming the one it repeats."""
    now = time.time() if now is None else now
    return PipelineJob(
        id=new_job_id(now),
        pipeline=job.pipeline,
        pipeline_path=job.pipeline_path,
        repository=job.repository,
        source=job.source,
        commit=job.commit,
        ref=job.ref,
        tree=job.tree,
        code_trees=dict(job.code_trees),
        spec=job.spec,
        spec_id=job.spec_id,
        trigger=dict(trigger or {"event": "rerun", "of": job.id}),
        created_at=now,
        rerun_of=job.id,
        dirty=job.dirty,
    )


def satisfies_dependents(instance: TaskInstance, continue_on_failure: bool) -> bool:
    """Whether a dependency lets its dependents run."""
    if instance.state in DONE:
        return True
    if instance.state == TaskState.SKIPPED:
        return instance.reason == SKIP_REQUESTED
    if instance.state == TaskState.FAILED:
        return continue_on_failure
    return False


def job_status(
    pipeline: Pipeline, tasks: Mapping[str, TaskInstance], *, runner_alive: bool, queued: bool = False
) -> JobStatus:
    """A job's status, derived from its task instances (and whether a runner drives it or the daemon queues it)."""
    instances = [tasks.get(t.name, TaskInstance(t.name)) for t in pipeline.tasks]
    if all(i.ended for i in instances):
        return conclusion_status(pipeline, tasks)
    if not runner_alive:
        return JobStatus.QUEUED if queued else JobStatus.INTERRUPTED
    if all(i.state == TaskState.PENDING and not i.attempts for i in instances):
        return JobStatus.PENDING
    return JobStatus.RUNNING


def conclusion_status(pipeline: Pipeline, tasks: Mapping[str, TaskInstance]) -> JobStatus:
    """The status of a job whose task instances have all ended."""
    states = {t.name: tasks[t.name].state for t in pipeline.tasks if t.name in tasks}
    if any(s == TaskState.CANCELLED for s in states.values()):
        return JobStatus.CANCELLED
    if any(states.get(t.name) == TaskState.FAILED and not t.continue_on_failure for t in pipeline.tasks):
        return JobStatus.FAILED
    return JobStatus.SUCCEEDED


def tolerated_failures(pipeline: Pipeline, tasks: Mapping[str, TaskInstance]) -> list[str]:
    """Tasks that failed without failing the job (continue_on_failure): a 'neutral' conclusion."""
    return [
        t.name
        for t in pipeline.tasks
        if t.continue_on_failure and t.name in tasks and tasks[t.name].state == TaskState.FAILED
    ]


def ended(instances: Iterable[TaskInstance]) -> bool:
    return all(i.ended for i in instances)


@dataclass(frozen=True)
class JobView:
    """A job as readers see it: the frozen job, its task instances now, and the status they give."""

    job: PipelineJob
    tasks: dict[str, TaskInstance]  # in the pipeline's task order, attempts ordered by number
    status: JobStatus  # job_status(job.pipeline_model(), tasks, runner_alive=runner_alive)
    runner_alive: bool  # a process holds the job's claim
    cancel_requested: bool
