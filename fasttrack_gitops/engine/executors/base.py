"""The executor protocol: what the runner hands over for one attempt, and what it gets back.

An executor runs one attempt of one task instance to its end: a local process
group (`local`) or a Backend.AI compute session (`backendai`, a package).
Each is a module with one class implementing `Executor`; simple ones reuse the shared
defaults below, the way pre-commit's languages reuse `basic_health_check`.
Adding an executor is one new module and one line in `EXECUTORS`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from fasttrack_gitops.core.job import Outcome, PipelineJob, ServiceEndpoint
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.model import Resources, Task
from fasttrack_gitops.core.scheduler import Capacity

if TYPE_CHECKING:
    from fasttrack_gitops.engine.cache import CacheIndex
    from fasttrack_gitops.engine.outputs import OutputsFolder

# What an executor calls once an attempt runs: started(handle) (see Executor.run). An executor whose attempt first
# waits in someone else's queue (a Backend.AI session) may call started(handle, queued=True) when it is enqueued: the
# runner keeps that handle without starting the attempt, and a runner that takes over reattaches with it.
Started = Callable[..., None]


@dataclass(frozen=True)
class AttemptSpec:
    job_id: str
    task: Task  # command (secrets resolved), name, resources, timeout...
    number: int  # attempt number, from 1
    workdir: Path  # the task's working directory, prepared by the runner
    # The pipeline data folder's folders on this machine (datafolder.py says where FastTrack mounts them):
    outputs: Path  # this task instance's outputs folder (the executor creates it when missing)
    inputs: tuple[Path, ...]  # the outputs folder of the k-th dependency, k from 1
    vfroot: Path  # the job's shared pipeline folder root
    env: Mapping[str, str]  # the task's own variables: pipeline envs, task envs, resolved secrets
    log_path: Path
    timeout: float | None  # seconds
    masks: tuple[str, ...] = ()  # secret values, replaced by *** in the log
    # What a remote executor needs to find the job's files again (the local one uses the paths above):
    pipeline: str = ""  # the pipeline's name
    repository: str = ""  # the job's repository (names the pipeline data folder with the pipeline)
    code_tree: str = ""  # the git tree id of the task's code (content-addressed: shipped once per id)
    # The job whose folder holds the k-th dependency's outputs: this job's, or for a dependency reused from the
    # cache, the job that made them (a remote executor mounts them from there; locally they are linked in).
    input_jobs: tuple[str, ...] = ()  # empty: all this job's
    manifest: bool = False  # a remote executor records the outputs' manifest (core/cache.py) when the attempt succeeds


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome  # SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, or ERROR (could not start)
    exit_code: int | None  # -N when the task's process was killed by signal N
    started_at: float
    ended_at: float
    message: str = ""  # "timed out after 10s", "killed by signal 9", "working directory missing: ..."
    service: ServiceEndpoint | None = None  # a deployment task's model service, ready (its URL is recorded)


class Executor(Protocol):
    name: str

    def capacity(self) -> Resources | None:
        """What can run at once; None when there is no limit."""
        ...

    async def run(self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started) -> AttemptResult:
        """Run one attempt to its end; call started(handle) once it runs; when `cancel` is set, stop it: CANCELLED.

        The handle (plain JSON, or None) is stored with the attempt: how this
        executor finds the attempt again after the runner died (reattach).
        """
        ...

    async def reattach(
        self, spec: AttemptSpec, handle: Mapping | None, *, cancel: asyncio.Event, started: Started
    ) -> AttemptResult | None:
        """Follow an attempt a runner that died had started (with `handle`) to its end, as run() would.

        None when it cannot be followed; the runner then records it as
        interrupted (and retries it when the task's retry policy allows).
        """
        ...

    async def close(self) -> None:
        """Release what the executor holds (sessions, connections, processes still running)."""
        ...

    def cache_index(self, job: PipelineJob, state_dir: Path) -> CacheIndex:
        """Where the task cache of the job's pipeline lives: beside the outputs this executor writes."""
        ...

    def task_outputs(self, job: PipelineJob, state_dir: Path) -> OutputsFolder:
        """Where this executor wrote the outputs of the job's task instances, to list and read them (outputs.py)."""
        ...


@runtime_checkable
class LearnsCapacity(Protocol):
    """An executor whose cluster says what it has free (the Backend.AI one); the runner asks before it decides."""

    async def refresh_capacity(self, job_id: str, tasks: Iterable[Task]) -> Mapping[str | None, Capacity] | None:
        """Per scaling group (None: the default), what the job may hold now, its own active tasks' share included,
        and the most it ever could; None when nothing limits what is asked."""
        ...


@runtime_checkable
class EndsJobs(Protocol):
    """An executor that keeps something beyond an attempt (a deployment task's model service) until its job ends."""

    async def job_ended(self, job_id: str) -> None:
        """The job ended, or was cancelled (not interrupted): release what it kept (ephemeral services, local
        service processes)."""
        ...


@runtime_checkable
class WarmsUp(Protocol):
    """An executor with something to start before its first attempt (the local one: its task launcher), which a
    job's launch starts at once, in the background, instead of on the first task's critical path."""

    def warm_up(self) -> None:
        """Start it now without waiting (on the running loop); its first attempt waits for it if need be."""
        ...


@runtime_checkable
class ShipsAhead(Protocol):
    """An executor that must ship a task's code somewhere before its session can start (the Backend.AI one): the
    runner hands it each task sure to run, in order, early, so no upload is left for the critical path."""

    async def ship_ahead(self, spec: AttemptSpec) -> None:
        """Ship what the attempt will need; quietly, a failure is the attempt's to meet again and report."""
        ...


# Shared defaults; an executor takes them as methods (`capacity = no_capacity`).


async def cannot_reattach(
    self: object, spec: AttemptSpec, handle: Mapping | None, *, cancel: asyncio.Event, started: Started
) -> AttemptResult | None:
    return None


def no_capacity(self: object) -> Resources | None:
    """No limit: the scheduler's max_parallel is the only bound."""
    return None


async def nothing_to_close(self: object) -> None:
    return None


def local_cache_index(self: object, job: PipelineJob, state_dir: Path) -> CacheIndex:
    """The cache under the state folder, beside the jobs' data folders where this executor writes outputs."""
    from fasttrack_gitops.engine.cache.local import LocalCacheIndex

    return LocalCacheIndex(state_dir, job.repository, job.pipeline)


def local_task_outputs(self: object, job: PipelineJob, state_dir: Path) -> OutputsFolder:
    """The job folders under the state folder, where this executor writes outputs."""
    from fasttrack_gitops.engine.outputs import LocalOutputsFolder

    return LocalOutputsFolder(state_dir)


def cache_index_of(executor: object, job: PipelineJob, state_dir: Path) -> CacheIndex:
    """The task cache the executor keeps the job's pipeline's entries in (the runner's and `plan`'s)."""
    make_index = getattr(executor, "cache_index", None)  # a test's bare executor may not name one
    return make_index(job, state_dir) if make_index is not None else local_cache_index(executor, job, state_dir)


def task_outputs_of(executor: object, job: PipelineJob, state_dir: Path) -> OutputsFolder:
    """Where the executor wrote the job's outputs (the runner reads declared metrics there)."""
    folder = getattr(executor, "task_outputs", None)  # a test's bare executor may not name one
    return folder(job, state_dir) if folder is not None else local_task_outputs(executor, job, state_dir)


def format_seconds(seconds: float) -> str:
    """10 -> '10s', 0.5 -> '0.5s', for messages."""
    return f"{seconds:g}s"


def timed_out(seconds: float) -> str:
    return f"timed out after {format_seconds(seconds)}"


def oserror_message(e: OSError) -> str:
    """An OSError in words, for messages: its reason, and the file it names."""
    return f"{e.strerror or e}: {e.filename}" if e.filename else (e.strerror or str(e))


def error_result(spec: AttemptSpec, started_at: float, message: str, **capture: int) -> AttemptResult:
    """An attempt that could not start: ERROR, its reason (masked) also written to the attempt's log."""
    from fasttrack_gitops.engine.executors.logcap import LogCapture

    message = masked(message, spec.masks)
    try:
        log = LogCapture(spec.log_path, masks=spec.masks, **capture)
        log.write(f"fasttrack-gitops: {message}\n".encode())
        log.close()
    except OSError:
        pass
    return AttemptResult(Outcome.ERROR, None, started_at, time.time(), message)


async def stop_live_attempts(live: dict[asyncio.Future, asyncio.Future], reason: str = "executor closed") -> None:
    """Ask every running attempt to stop (each maps its stop future to its finished one) and wait for them."""
    for stop in list(live):
        if not stop.done():
            stop.set_result(reason)
    if live:
        await asyncio.gather(*live.values(), return_exceptions=True)
