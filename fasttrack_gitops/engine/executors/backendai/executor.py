"""The `backendai` executor: each task attempt is one Backend.AI batch compute session.

What one attempt does (calls to the manager in brackets):

1. Once per pipeline and executor: the pipeline data folder, a vfolder made
   when first needed; once per code tree and executor: the task's code,
   shipped to it (uploads.py). The layout of the folder is datafolder.py's,
   the session's startup script layout.py's; the session mounts the folder
   at /pipeline/ftg-folder.
2. The session, named `session_name(job id, task, attempt)`: the event stream
   is opened first (it has no replay) [GET /events/session], then the session
   is enqueued [POST /session] as session_spec.py says. A restarted runner
   that asks for a live session of the same name and image gets it back.
3. `started(handle)` (the session's name and id) is called when the session is
   RUNNING, never at creation: time in the queue is not run time. At creation
   `started(handle, queued=True)` only hands the runner the handle to keep, so
   a runner that takes over follows the session even if it ended meanwhile. A session
   that ended with a result without our seeing it run is reported started
   just before it is reported ended.
4. When the session ended (watch.py follows it), its log is written to
   `spec.log_path` and its result becomes the attempt's (verdict.py). So the
   success path costs 4 calls per task instance after the one-time work (and
   the runner's look at the free capacity after it, below).
5. `spec.timeout` counts from the session's creation, so a session stuck in
   PENDING times out too (the message says it never left the queue, with the
   scheduler's reason). A timeout or a cancel destroys the session.

What the cluster can take is learnt before asking (refresh_capacity, which
the runner awaits before it decides): check-presets gives what is free per
scaling group (engine/backendai/resources.py); the slots our own scheduled
sessions hold are added back, since the scheduler counts every active task
as used. A session asked for beyond that would wait PENDING for one of the
manager's scheduler passes (10 s apart in 23.09), which slows the whole job;
so the runner asks only for what fits. A manager that cannot say (older,
404, unreachable) is warned about once; then nothing limits what is asked.

A refusal at creation (unknown image, missing slot, quota) or a task without
image or command is an ERROR with the manager's message; losing track of the
session (GraphQL failing again and again) fails the attempt and destroys it.

Outputs stay in the pipeline folder (`jobs/<job id>/tasks/<task>/outputs`);
nothing is downloaded (outputs.py reads them there when asked). `spec.outputs`
is created empty, so local readers of the job's data folder find the folders
they expect. The task cache lives in
the same folder (cache.py): a dependency reused from an earlier job is read
from that job's folder (`spec.input_jobs`), and the session writes the
manifest of its outputs when `spec.manifest` asks for it (layout.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from pathlib import Path

from fasttrack_gitops.core.job import Outcome, PipelineJob
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.model import Resources, Task
from fasttrack_gitops.core.scheduler import Capacity, total
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.events import (
    DEFAULT_IDLE_TIMEOUT,
    SessionEventStream,
    StreamDropped,
    session_events,
)
from fasttrack_gitops.engine.backendai.resources import check_presets, held, least
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec
from fasttrack_gitops.engine.backendai.sessions import CreatedSession
from fasttrack_gitops.engine.executors.backendai.cache import BackendAICacheIndex
from fasttrack_gitops.engine.executors.backendai.deploy import Deployments
from fasttrack_gitops.engine.executors.backendai.outputs import BackendAIOutputsFolder
from fasttrack_gitops.engine.executors.backendai.recovery import Recovery
from fasttrack_gitops.engine.executors.backendai.task_spec import session_spec
from fasttrack_gitops.engine.executors.backendai.uploads import FolderUploads
from fasttrack_gitops.engine.executors.backendai.verdict import verdict
from fasttrack_gitops.engine.executors.backendai.watch import RAN, Timing, WatchedSession
from fasttrack_gitops.engine.executors.base import (
    AttemptResult,
    AttemptSpec,
    Started,
    error_result,
    no_capacity,
    stop_live_attempts,
    timed_out,
)

log = logging.getLogger("fasttrack_gitops.engine.backendai")


class BackendAIExecutor(Recovery):
    name = "backendai"
    capacity = no_capacity  # none known before refresh_capacity() asks the manager

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        client: Client | None = None,
        poll_interval: float = 5.0,
        check_interval: float = 30.0,
        pending_notice: float = 60.0,
        destroy_wait: float = 15.0,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        folder_host: str | None = None,
        folder_group: str | None = None,
        keep_services: bool = False,  # ephemeral model services outlive their job (run --keep-services)
    ):
        """`client` (e.g. a test's) is used as given and left open; otherwise one is made and close() closes it."""
        self._owns_client = client is None
        self.client = client if client is not None else Client(credentials or Credentials.from_env())
        self.timing = Timing(poll_interval, check_interval, pending_notice, destroy_wait)
        self.idle_timeout = idle_timeout
        self.uploads = FolderUploads(self.client, host=folder_host, group=folder_group)
        self.deployments = Deployments(
            self.client, folder_host=folder_host, folder_group=folder_group, keep=keep_services
        )
        self._live: dict[asyncio.Future, asyncio.Future] = {}  # stop -> finished, per running attempt
        self._sessions: dict[str, tuple[str, Task, WatchedSession]] = {}  # by name: (job, task, session) of ours
        self._capacity_unknown = False  # check-presets failed once: nothing limits what is asked

    async def refresh_capacity(self, job_id: str, tasks: Iterable[Task]) -> dict[str | None, Capacity] | None:
        """What each scaling group the job's tasks name gives it now, the slots its own sessions hold included;
        None (after one warning) when the manager cannot say. A group the manager does not report is left out
        (no limit: the manager refuses a session there itself)."""
        if self._capacity_unknown:
            return None
        tasks = list(tasks)
        try:
            found = [await check_presets(self.client, group=p) for p in sorted({t.project or "default" for t in tasks})]
        except (errors.BackendAIError, ValueError) as exc:
            self._capacity_unknown = True
            log.warning("cannot learn what the cluster has free (%s); asking for sessions without a limit", exc)
            return None
        seen: dict[str | None, list[Resources]] = {}
        unsure: dict[str | None, list[Resources]] = {}
        all_seen: dict[str | None, list[Resources]] = {}
        for job, task, s in self._sessions.values():
            group = task.scaling_group
            if s.status.holds_resources:
                all_seen.setdefault(group, []).append(task.resources)
                if job == job_id:
                    seen.setdefault(group, []).append(task.resources)
            elif job == job_id and s.status.is_waiting:
                unsure.setdefault(group, []).append(task.resources)
        capacity = {}
        for group in {t.scaling_group for t in tasks}:
            if all(group in c.remaining for c in found):
                free = least(*(c.remaining[group] for c in found))
                using = found[0].using.get(group, {})
                ours = held(seen.get(group, []), unsure.get(group, []), all_seen.get(group, []), using)
                capacity[group] = Capacity(total([free, *ours]), least(*(c.limits for c in found)))
        return capacity

    async def ship_ahead(self, spec: AttemptSpec) -> None:
        """The pipeline folder and the task's code tree in it, before the task is ready to start (runner: prepare.py);
        the attempt awaits the same upload if it is still going, and tries again if it failed."""
        if spec.task.is_service:  # its code goes to its model folder when it starts (deploy.py), not here
            return
        try:
            await self.uploads.ready(spec)
        except (errors.BackendAIError, OSError) as e:
            log.debug("shipping task %s's code ahead failed (its attempt tries again): %s", spec.task.name, e)

    async def close(self) -> None:
        """Stop attempts still running (their sessions are destroyed: CANCELLED), then close the client."""
        await stop_live_attempts(self._live)
        if self._owns_client:
            await self.client.aclose()

    async def job_ended(self, job_id: str) -> None:
        """The job ended (or was cancelled): its ephemeral model services are deleted."""
        await self.deployments.job_ended(job_id)

    def cache_index(self, job: PipelineJob, state_dir: Path) -> BackendAICacheIndex:
        """The task cache in the job's pipeline data folder, beside the outputs (cache.py); shared by everyone
        who runs this pipeline on the cluster, so `state_dir` plays no part."""
        return BackendAICacheIndex(self.client, datafolder.folder_name(job.repository, job.pipeline))

    def task_outputs(self, job: PipelineJob, state_dir: Path) -> BackendAIOutputsFolder:
        """The outputs in the job's pipeline data folder, where the sessions wrote them (outputs.py); `state_dir`
        plays no part (its job folders hold empty outputs folders only)."""
        return BackendAIOutputsFolder(self.client, datafolder.folder_name(job.repository, job.pipeline))

    async def run(
        self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started, found: CreatedSession | None = None
    ) -> AttemptResult:
        """An attempt: its session made and followed to its end; `found`: one that exists already (a runner that
        died made it: recovery.py), followed by its id and never asked for again."""
        started_at = time.time()
        if cancel.is_set():
            return AttemptResult(Outcome.CANCELLED, None, started_at, started_at, "cancelled before it started")
        if spec.task.is_service:  # a model service, not a batch session (deploy.py)
            return await self.deployments.run(spec, cancel=cancel, started=started)
        problem = _check(spec)
        if problem:
            return error_result(spec, started_at, problem)
        loop = asyncio.get_running_loop()
        stop, finished = loop.create_future(), loop.create_future()
        self._live[stop] = finished
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            return await self._attempt(spec, started, started_at, (cancelled, stop), found)
        finally:
            cancelled.cancel()
            del self._live[stop]
            finished.set_result(None)

    # -- one attempt ------------------------------------------------------------------------------

    async def _prepare(self, spec: AttemptSpec) -> SessionSpec:
        folder, tree = await self.uploads.ready(spec)
        return session_spec(spec, folder, tree)

    async def _attempt(
        self,
        spec: AttemptSpec,
        started: Started,
        started_at: float,
        stops: tuple[asyncio.Future, ...],
        found: CreatedSession | None = None,
    ) -> AttemptResult:
        try:
            prepare = asyncio.ensure_future(self._prepare(spec))
            done, _ = await asyncio.wait({prepare, *stops}, return_when=asyncio.FIRST_COMPLETED)
            if prepare not in done:
                prepare.cancel()
                return AttemptResult(Outcome.CANCELLED, None, started_at, time.time(), _stop_reason(stops))
            requested = prepare.result()
        except (errors.BackendAIError, ValueError, OSError) as exc:
            return error_result(spec, started_at, f"cannot prepare the Backend.AI session: {exc}")
        s = WatchedSession(requested.name, self.client, self.timing)
        # Both scopes: 23.09 marks RUNNING with kernel_started only (no session_started on the realstack).
        events: SessionEventStream | None  # None once the stream dropped: then the session is polled
        events = session_events(self.client, session_name=s.name, idle_timeout=self.idle_timeout)
        try:
            try:
                await events.connect()
            except StreamDropped as exc:
                log.info("session %s: %s; polling instead", s.name, exc)
                events = None
            except errors.BackendAIError as exc:
                return error_result(spec, started_at, str(exc))
            created: CreatedSession | AttemptResult
            if found is not None:
                created = found
            else:
                started({"session": s.name}, queued=True)  # the name, before it exists: a runner dying in between
                created = await self._create(spec, requested, started_at)
            if isinstance(created, AttemptResult):
                return created
            s.id, s.status, s.status_raw = created.id, created.status, created.status_raw or "PENDING"
            s.created_at = asyncio.get_running_loop().time()
            s.ran = created.status in RAN  # a session found again may be running already
            self._sessions[s.name] = (spec.job_id, spec.task, s)
            # Kept now, not once it runs: a runner that dies before then finds this session again even when it
            # ended meanwhile (a new one of the same name would run the task a second time).
            started({"session": s.name, "session_id": s.id}, queued=True)
            if events is not None:
                events.session_id = created.id
            log.debug(
                "session %s (%s) %s: %s",
                s.name,
                s.id,
                "created" if created.created else "found again",
                created.status_raw,
            )
            try:
                return await self._supervise(spec, s, events, started, started_at, stops)
            except asyncio.CancelledError:  # our caller gave up on us: leave no session behind
                await asyncio.shield(s.destroy_quietly())
                raise
        finally:
            self._sessions.pop(s.name, None)
            if s.next_event is not None and not s.next_event.done():
                s.next_event.cancel()
            if events is not None:
                await events.aclose()

    async def _supervise(
        self,
        spec: AttemptSpec,
        s: WatchedSession,
        events: SessionEventStream | None,
        started: Started,
        started_at: float,
        stops: tuple[asyncio.Future, ...],
    ) -> AttemptResult:
        def on_status() -> None:
            if s.ran and not s.reported:
                s.reported = True
                started({"session": s.name, "session_id": s.id})

        on_status()
        deadline = None if spec.timeout is None else s.created_at + spec.timeout
        lost = ""
        try:
            ended, events = await s.follow(spec, events, deadline, stops, on_status)
            if ended == "timeout" and await s.look(on_status):  # ended right at the deadline after all
                ended = "ended"
        except errors.BackendAIError as exc:  # lost track of it: stop it rather than leave it running
            ended, lost = "lost", str(exc)
        if ended == "ended":
            outcome, exit_code, message = verdict(s)
        else:
            if ended == "timeout":
                outcome, message = Outcome.TIMED_OUT, timed_out(spec.timeout or 0)
                if not s.ran:
                    message += f" while the session was still {s.status_raw} (it never started{s.why()})"
            elif ended == "lost":
                outcome, message = Outcome.FAILED, f"lost track of the Backend.AI session {s.name}: {lost}"
            else:
                outcome, message = Outcome.CANCELLED, _stop_reason(stops)
            exit_code = None
            message += await s.destroy(spec, events)
        await s.write_log(spec)
        return AttemptResult(outcome, exit_code, started_at, time.time(), masked(message, spec.masks))


def _check(spec: AttemptSpec) -> str:
    task = spec.task
    if not task.command:
        return f"task '{task.name}' has no command"
    if not task.image:
        return (
            f"task '{task.name}' has no image: a Backend.AI session needs environment.image "
            "(e.g. cr.backend.ai/stable/python:3.9-ubuntu20.04, or an alias the cluster knows)"
        )
    if not spec.workdir.is_dir():
        return f"working directory missing: {spec.workdir}"
    try:
        for value, what in (
            (spec.job_id, "job id"),
            (task.name, "task"),
            *((d, "dependency") for d in task.dependencies),
        ):
            datafolder.component(value, what)
        _check_input_jobs(spec)
        spec.outputs.mkdir(parents=True, exist_ok=True)  # the outputs themselves stay in the pipeline folder
    except ValueError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot create the outputs folder: {exc.strerror or exc}"
    return ""


# A job id as one safe folder name: new_job_id()'s shape (20261128-101530-3fa9c1), loosely; never an option.
JOB_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _check_input_jobs(spec: AttemptSpec) -> None:
    """ValueError unless `spec.input_jobs` names one job per dependency, each a job id (one folder name)."""
    jobs, dependencies = spec.input_jobs, spec.task.dependencies
    if not jobs:
        return
    if len(jobs) != len(dependencies):
        raise ValueError(
            f"task '{spec.task.name}' has {len(dependencies)} dependencies but {len(jobs)} input jobs were given: "
            "each dependency needs the job whose folder holds its outputs"
        )
    for job, dependency in zip(jobs, dependencies, strict=True):
        if job != spec.job_id and not JOB_ID_SHAPE.fullmatch(job):
            raise ValueError(f"the outputs of '{dependency}' are said to be in job {job!r}, which is not a job id")


def _stop_reason(stops: tuple[asyncio.Future, ...]) -> str:
    stop = stops[-1]
    return stop.result() if stop.done() and not stop.cancelled() else "cancelled"
