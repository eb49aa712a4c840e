"""The `backendai` executor: each task attempt is one Backend.AI batch compute session.

What one attempt does (calls to the manager in brackets):

1. Once per pipeline and executor: the pipeline data folder, a vfolder named
   `datafolder.folder_name(repository, pipeline)`
   (`ftg-<repository>-<pipeline>-<hash>`), created when first needed
   [POST /folders; an existing folder is reused].
2. Once per code tree and executor: the task's code, `spec.workdir`, goes to
   `code/<tree id>/` in that folder unless its marker `.ftg-complete` is there
   already [one listing; when missing, the upload, then the marker last].
   The layout of the folder is datafolder.py's, the session's startup script
   backendai_layout.py's; the session mounts the folder at /pipeline/ftg-folder.
3. The session, named `session_name(job id, task, attempt)`: the event stream
   is opened first (it has no replay) [GET /events/session], then the session
   is enqueued [POST /session] with the task's image, resources (cpu, mem, the
   accelerators; shmem as a resource option), cluster mode and size, scaling
   group, project (group), its own `vfolder:alias` mounts, the pipeline folder,
   and environ = the task's variables (secrets resolved) + PIPELINE_* at
   FastTrack's paths + FTG_TASK_COMMAND (the command). A restarted runner
   that asks for a live session of the same name and image gets it back.
4. `started(handle)` (the session's name and id) is called when the session is RUNNING (`kernel_started`, which
   is how the real 23.09 stack shows it, `session_started`, or a poll that
   sees it), never at creation: time in the queue is not run time. A session
   that ended with a result without our seeing it run is reported started
   just before it is reported ended.
5. When the stream says the session ended [POST /admin/gql compute_session:
   status, result, reason; a finished session is 404 on GET /session in
   23.09], its log is written to `spec.log_path` with every secret replaced
   by *** and capped like the local executor's [GET /session/{id}/logs].
   The exit code is the session_success/failure event's: GraphQL's is the
   container's (-1 on the real 23.09 stack) and only fills in when >= 0.
   So the success path costs 4 calls per task instance after the one-time work.
   While the stream is up there is no polling, except one look every
   `check_interval` (30 s) in case an event was lost; when it drops, the
   result is polled every `poll_interval` (5 s).
6. `spec.timeout` counts from the session's creation, so a session stuck in
   PENDING times out too (the message says it never left the queue, with the
   scheduler's reason); one still waiting after `pending_notice` (60 s) is
   noted in the log. A timeout or a cancel destroys the session (forced when the
   manager refuses a normal destroy in its current state) and waits up to
   `destroy_wait` for it to end.

Outcomes: result SUCCESS -> SUCCEEDED; FAILURE -> FAILED with the exit code
(125: the layout could not be made, the log says why); a session that ends
in ERROR or CANCELLED, or is terminated without a result -> FAILED with the
server's reason; a refusal at creation (unknown image, missing slot, quota)
or a task without image or command -> ERROR with the manager's message.

Outputs stay in the pipeline folder (`jobs/<job id>/tasks/<task>/outputs`);
nothing is downloaded. `spec.outputs` is created empty, so local readers of
the job's data folder find the folders they expect.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.core.pipeline.units import format_size
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import errors, vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.events import (
    DEFAULT_IDLE_TIMEOUT,
    SessionEvent,
    SessionEventStream,
    StreamDropped,
    session_events,
)
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec, session_name
from fasttrack_gitops.engine.backendai.sessions import (
    SessionGone,
    SessionOutcome,
    SessionResult,
    SessionStatus,
    create_batch_session,
    destroy_session,
    session_logs,
    session_result,
)
from fasttrack_gitops.engine.executors import backendai_layout as layout
from fasttrack_gitops.engine.executors.base import (
    AttemptResult,
    AttemptSpec,
    Started,
    error_result,
    no_capacity,
    stop_live_attempts,
    timed_out,
)
from fasttrack_gitops.engine.executors.logcap import LogCapture

log = logging.getLogger("fasttrack_gitops.engine.backendai")

_RAN = frozenset({SessionStatus.RUNNING, SessionStatus.RUNNING_DEGRADED, SessionStatus.RESTARTING})
MAX_CHECK_ERRORS = 5  # consecutive failed looks at a session before the attempt gives up on it


@dataclass
class _Session:
    """What one attempt knows of its session."""

    name: str
    id: str = ""
    status: SessionStatus = SessionStatus.PENDING
    status_raw: str = "PENDING"  # as the server wrote it (a newer server's status we do not know, too)
    created_at: float = 0.0  # loop time
    ran: bool = False  # seen RUNNING, or it has a result
    reported: bool = False  # started() was called
    event_final: bool = False  # the stream said it ended
    noticed: bool = False  # the still-PENDING check was made
    event_result: SessionResult | None = None
    event_exit: int | None = None
    outcome: SessionOutcome | None = None  # the last GraphQL answer
    check_errors: int = 0
    next_event: asyncio.Future | None = None  # the stream read in flight, kept across waits
    notes: list[str] = field(default_factory=list)  # our lines at the top of the log


class BackendAIExecutor:
    name = "backendai"
    capacity = no_capacity  # the cluster's scheduler queues what does not fit

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
    ):
        """`client` (e.g. a test's) is used as given and left open; otherwise one is made and close() closes it."""
        self._owns_client = client is None
        self.client = client if client is not None else Client(credentials or Credentials.from_env())
        self.poll_interval, self.check_interval = poll_interval, check_interval
        self.pending_notice, self.destroy_wait, self.idle_timeout = pending_notice, destroy_wait, idle_timeout
        self.folder_host, self.folder_group = folder_host, folder_group
        self._folders: dict[str, asyncio.Future] = {}  # folder name -> its creation
        self._trees: dict[tuple[str, str], asyncio.Future] = {}  # (folder, tree) -> its upload
        self._live: dict[asyncio.Future, asyncio.Future] = {}  # stop -> finished, per running attempt

    async def close(self) -> None:
        """Stop attempts still running (their sessions are destroyed: CANCELLED), then close the client."""
        await stop_live_attempts(self._live)
        if self._owns_client:
            await self.client.aclose()

    async def reattach(
        self, spec: AttemptSpec, handle: Mapping | None, *, cancel: asyncio.Event, started: Started
    ) -> AttemptResult | None:
        """Sessions outlive their runner. One that ended meanwhile is read by the id in its handle (GraphQL
        still knows a finished session; creating it again would run the task twice); a live one is asked
        for by its name and image again, which gets it back (step 3), and is followed like a new one."""
        session_id = (handle or {}).get("session_id")
        if session_id:
            name = (handle or {}).get("session") or session_name(spec.job_id, spec.task.name, spec.number)
            s = _Session(str(name), id=str(session_id))
            try:
                ended = await self._look(s, lambda: None)
            except errors.BackendAIError:
                ended = False
            if ended:
                outcome, exit_code, message = _verdict(s)
                s.notes.append(f"the session {s.name} ended while no runner followed it")
                await self._write_log(spec, s)
                now = time.time()
                return AttemptResult(outcome, exit_code, now, now, masked(message, spec.masks))
        return await self.run(spec, cancel=cancel, started=started)

    async def run(self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started) -> AttemptResult:
        started_at = time.time()
        if cancel.is_set():
            return AttemptResult(Outcome.CANCELLED, None, started_at, started_at, "cancelled before it started")
        problem = _check(spec)
        if problem:
            return error_result(spec, started_at, problem)
        loop = asyncio.get_running_loop()
        stop, finished = loop.create_future(), loop.create_future()
        self._live[stop] = finished
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            return await self._attempt(spec, started, started_at, (cancelled, stop))
        finally:
            cancelled.cancel()
            del self._live[stop]
            finished.set_result(None)

    # -- one attempt ------------------------------------------------------------------------------

    async def _attempt(
        self, spec: AttemptSpec, started: Started, started_at: float, stops: tuple[asyncio.Future, ...]
    ) -> AttemptResult:
        try:
            prepare = asyncio.ensure_future(self._prepare(spec))
            done, _ = await asyncio.wait({prepare, *stops}, return_when=asyncio.FIRST_COMPLETED)
            if prepare not in done:
                prepare.cancel()
                return AttemptResult(Outcome.CANCELLED, None, started_at, time.time(), _stop_reason(stops))
            session_spec = prepare.result()
        except (errors.BackendAIError, ValueError, OSError) as exc:
            return error_result(spec, started_at, f"cannot prepare the Backend.AI session: {exc}")
        s = _Session(session_spec.name)
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
            try:
                created = await create_batch_session(self.client, session_spec)
            except errors.BackendAIError as exc:
                return error_result(spec, started_at, str(exc))
            s.id, s.status, s.status_raw = created.id, created.status, created.status_raw or "PENDING"
            s.created_at = asyncio.get_running_loop().time()
            s.ran = created.status in _RAN  # a session found again may be running already
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
                await asyncio.shield(_quietly_destroy(self.client, s))
                raise
        finally:
            if s.next_event is not None and not s.next_event.done():
                s.next_event.cancel()
            if events is not None:
                await events.aclose()

    async def _supervise(
        self,
        spec: AttemptSpec,
        s: _Session,
        events,
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
            ended, events = await self._follow(spec, s, events, deadline, stops, on_status)
            if ended == "timeout" and await self._look(s, on_status):  # ended right at the deadline after all
                ended = "ended"
        except errors.BackendAIError as exc:  # lost track of it: stop it rather than leave it running
            ended, lost = "lost", str(exc)
        if ended == "ended":
            outcome, exit_code, message = _verdict(s)
        else:
            if ended == "timeout":
                outcome, message = Outcome.TIMED_OUT, timed_out(spec.timeout or 0)
                if not s.ran:
                    message += f" while the session was still {s.status_raw} (it never started{_why(s)})"
            elif ended == "lost":
                outcome, message = Outcome.FAILED, f"lost track of the Backend.AI session {s.name}: {lost}"
            else:
                outcome, message = Outcome.CANCELLED, _stop_reason(stops)
            exit_code = None
            message += await self._destroy(spec, s, events)
        await self._write_log(spec, s)
        return AttemptResult(outcome, exit_code, started_at, time.time(), masked(message, spec.masks))

    async def _follow(
        self,
        spec: AttemptSpec,
        s: _Session,
        events,
        deadline: float | None,
        stops: tuple[asyncio.Future, ...],
        on_status: Callable[[], None],
    ):
        """Wait for the session to end: ("ended" | "timeout" | "stopped", the stream or None once it dropped)."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + (self.check_interval if events is not None else self.poll_interval)
        while True:
            if events is not None and s.next_event is None:
                s.next_event = asyncio.ensure_future(events.__anext__())
            now = loop.time()
            wake = min(
                next_check,
                deadline if deadline is not None else math.inf,
                s.created_at + self.pending_notice if not s.noticed else math.inf,
            )
            waiting = {f for f in (s.next_event, *stops) if f is not None}
            if waiting:
                done, _ = await asyncio.wait(waiting, timeout=max(0.0, wake - now), return_when=asyncio.FIRST_COMPLETED)
            else:
                done = set()
                await asyncio.sleep(max(0.0, wake - now))
            if any(stop in done for stop in stops):
                return "stopped", events
            if s.next_event is not None and s.next_event in done:
                future, s.next_event = s.next_event, None
                try:
                    self._saw(s, future.result(), on_status)
                except (StreamDropped, StopAsyncIteration) as exc:
                    log.info(
                        "session %s: %s; polling every %gs", s.name, str(exc) or "the stream ended", self.poll_interval
                    )
                    events, next_check = None, loop.time()
                else:
                    if s.status.is_final:
                        s.event_final, next_check = True, loop.time()  # ended: the result and exit code, now
            now = loop.time()
            if now >= next_check:
                if await self._look(s, on_status):
                    return "ended", events
                # Ended by the stream but not yet in the database: look again soon.
                soon = s.event_final or events is None
                next_check = now + (self.poll_interval if soon else self.check_interval)
            if not s.noticed and now >= s.created_at + self.pending_notice:
                s.noticed = True
                if s.status.is_waiting:
                    if await self._look(s, on_status):
                        return "ended", events
                    self._note(
                        spec,
                        s,
                        f"session {s.name} is still {s.status_raw} after "
                        f"{self.pending_notice:g}s{_why(s)}; waiting for the cluster's scheduler",
                    )
            if deadline is not None and loop.time() >= deadline:
                return "timeout", events

    def _saw(self, s: _Session, event: SessionEvent, on_status: Callable[[], None]) -> None:
        if event.name == "kernel_started":
            s.ran = True
        if event.result is not None:
            s.event_result, s.event_exit, s.ran = event.result, event.exit_code, True
        status = event.status
        if status is not None and status is not SessionStatus.UNKNOWN:
            s.status, s.status_raw = status, status.value
            s.ran = s.ran or status in _RAN
        on_status()

    async def _look(self, s: _Session, on_status: Callable[[], None]) -> bool:
        """Ask GraphQL where the session is; True once it has ended. Raises after MAX_CHECK_ERRORS failures."""
        try:
            found = await session_result(self.client, s.id)
        except errors.BackendAIError as exc:
            s.check_errors += 1
            if s.check_errors >= MAX_CHECK_ERRORS:
                raise
            log.warning("session %s: cannot read its status (%s); trying again", s.name, exc)
            return False
        s.check_errors = 0
        if isinstance(found, SessionGone):
            return False
        s.outcome = found
        s.status_raw = found.status_raw or s.status_raw
        if found.status is not SessionStatus.UNKNOWN:
            s.status = found.status
        s.ran = s.ran or found.status in _RAN or found.result is not SessionResult.UNDEFINED
        on_status()
        return found.status.is_final

    async def _destroy(self, spec: AttemptSpec, s: _Session, events) -> str:
        """Destroy the session and wait (bounded) for it to end; what went wrong, as a message suffix."""
        for forced in (False, True):
            try:
                await destroy_session(self.client, s.id, forced=forced)
                break
            except errors.BackendAIError as exc:  # e.g. 23.09 refuses while PREPARING: then forced
                if forced:
                    log.warning("session %s: destroy failed: %s", s.name, exc)
                    return f"; the Backend.AI session {s.name} could not be destroyed: {exc}"
        s.noticed = True
        try:
            loop = asyncio.get_running_loop()
            ended, _ = await self._follow(spec, s, events, loop.time() + self.destroy_wait, (), lambda: None)
        except errors.BackendAIError as exc:
            return f"; the Backend.AI session {s.name} was destroyed, but its end was not confirmed: {exc}"
        if ended != "ended":
            return f"; the Backend.AI session {s.name} had not ended {self.destroy_wait:g}s after it was destroyed"
        return ""

    def _note(self, spec: AttemptSpec, s: _Session, line: str) -> None:
        log.warning("%s", line)
        s.notes.append(line)
        try:
            with open(spec.log_path, "a", encoding="utf-8") as handle:  # seen by `jobs logs --follow`
                handle.write(masked(f"fasttrack-gitops: {line}\n", spec.masks))
        except OSError:
            pass

    async def _write_log(self, spec: AttemptSpec, s: _Session) -> None:
        try:
            text = await session_logs(self.client, s.id)
        except errors.BackendAIError as exc:
            text = ""
            s.notes.append(f"cannot read the session's log: {exc}")
        try:
            capture = LogCapture(spec.log_path, masks=spec.masks)
        except OSError as exc:
            log.warning("cannot write the log %s: %s", spec.log_path, exc.strerror)
            return
        try:
            for line in s.notes:
                capture.write(f"fasttrack-gitops: {line}\n".encode())
            capture.write(text.encode("utf-8", "replace"))
        finally:
            capture.close()

    # -- the pipeline folder, the code, the session's spec -------------------------------------------

    async def _prepare(self, spec: AttemptSpec) -> SessionSpec:
        folder = datafolder.folder_name(spec.repository, spec.pipeline)
        await _once(
            self._folders,
            folder,
            lambda: vfolders.create_vfolder(self.client, folder, host=self.folder_host, group=self.folder_group),
        )
        tree = spec.code_tree or await asyncio.to_thread(tree_digest, spec.workdir)
        await _once(self._trees, (folder, tree), lambda: self._ship_code(folder, tree, spec.workdir))
        return session_spec(spec, folder, tree)

    async def _ship_code(self, folder: str, tree: str, workdir: Path) -> None:
        """Upload the tree to code/<tree>/ unless its marker says it is there; the marker goes last."""
        where = datafolder.code_in_folder(tree)
        marker = f"{where}/{layout.CODE_MARKER}"
        if await vfolders.exists(self.client, folder, marker):
            log.debug("code tree %s is in vfolder %s already", tree, folder)
            return
        executables = await asyncio.to_thread(executable_files, workdir)
        sent = await vfolders.upload_tree(self.client, folder, where, workdir)
        await vfolders.upload(self.client, folder, marker, layout.code_marker(executables))
        log.info(
            "code tree %s: %d files (%d bytes) uploaded to vfolder %s", tree, len(sent.files), sent.total_bytes, folder
        )


def session_spec(spec: AttemptSpec, folder: str, tree: str) -> SessionSpec:
    """The batch session for one attempt (pure): the task's settings, the folders, the layout script."""
    task = spec.task
    mounts = [m.vfolder for m in task.mounts if m.vfolder != folder]
    mount_map = {m.vfolder: m.alias for m in task.mounts if m.alias and m.vfolder != folder}
    environ = {
        **spec.env,
        **datafolder.mounted_variables(len(spec.inputs)),
        layout.COMMAND_VARIABLE: task.command or "",
    }
    script = layout.startup_script(
        job_id=spec.job_id, task=task.name, dependencies=task.dependencies, attempt=spec.number, tree=tree
    )
    return SessionSpec(
        name=session_name(spec.job_id, task.name, spec.number),
        image=task.image or "",
        startup_command=script,
        group=task.project,
        scaling_group=task.scaling_group,
        resources=resources(task),
        resource_opts={"shmem": format_size(task.resources.shmem)} if task.resources.shmem else {},
        cluster_mode=task.cluster_mode,
        cluster_size=task.cluster_size,
        environ=environ,
        mounts=(*mounts, folder),
        mount_map={**mount_map, folder: datafolder.FOLDER_MOUNT},
    )


def resources(task: Task) -> dict[str, int | float | str]:
    """cpu, mem and the accelerators (cuda.shares, cuda.device, ...) as the manager takes them."""
    found: dict[str, int | float | str] = {"cpu": _number(task.resources.cpu), "mem": format_size(task.resources.mem)}
    found.update({slot: _number(amount) for slot, amount in task.resources.accelerators if amount})
    return found


def tree_digest(root: Path) -> str:
    """A content id for a working directory without a git tree id: paths, modes and bytes."""
    digest = hashlib.sha256()
    for here, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(here, name)
            if os.path.isfile(path) and not os.path.islink(path):
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                digest.update(b"x" if os.access(path, os.X_OK) else b"-")
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
    return "content-" + digest.hexdigest()[:32]


def executable_files(root: Path) -> list[str]:
    """The regular files under root with an executable bit (the upload loses modes), relative POSIX paths."""
    found = []
    for here, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(here, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and mode & 0o111:
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


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
        spec.outputs.mkdir(parents=True, exist_ok=True)  # the outputs themselves stay in the pipeline folder
    except ValueError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot create the outputs folder: {exc.strerror or exc}"
    return ""


def _verdict(s: _Session) -> tuple[Outcome, int | None, str]:
    """The attempt's outcome, exit code and message from how the session ended."""
    found = s.outcome
    result = found.result if found and found.result is not SessionResult.UNDEFINED else s.event_result
    # The event's exitCode is the command's (23.09/24.03; null from 25.x). GraphQL's kernel exit_code is the
    # container's: -1 on the real 23.09 stack, so it only fills in, and never with a negative value.
    exit_code = s.event_exit
    if exit_code is None and found and found.exit_code is not None and found.exit_code >= 0:
        exit_code = found.exit_code
    where = f"the Backend.AI session {s.name}"
    if result is SessionResult.SUCCESS:
        return Outcome.SUCCEEDED, 0, ""
    if result is SessionResult.FAILURE:
        if exit_code is None:
            return Outcome.FAILED, None, f"{where} failed{_why(s)}"
        if exit_code == layout.SETUP_FAILED:
            return Outcome.FAILED, exit_code, "the session could not lay out /pipeline or the task's code (see the log)"
        return Outcome.FAILED, exit_code, ""
    if s.status is SessionStatus.ERROR:
        return Outcome.FAILED, exit_code, f"{where} ended in ERROR{_why(s)}"
    if s.status is SessionStatus.CANCELLED:
        return Outcome.FAILED, exit_code, f"{where} was cancelled by the cluster{_why(s)}"
    return Outcome.FAILED, exit_code, f"{where} was terminated without a result{_why(s)}"


def _why(s: _Session) -> str:
    reason = s.outcome.reason if s.outcome else ""
    return f": {reason}" if reason and reason != s.status_raw else ""


async def _once(cache: dict, key, make: Callable[[], Awaitable[Any]]):
    """One shared run of make() per key; a failed or cancelled one is tried again by the next caller."""
    task = cache.get(key)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = cache[key] = asyncio.ensure_future(make())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" noise
    return await asyncio.shield(task)


async def _quietly_destroy(client: Client, s: _Session) -> None:
    try:
        await destroy_session(client, s.id, forced=True)
    except errors.BackendAIError as exc:
        log.warning("session %s: destroy failed: %s", s.name, exc)


def _stop_reason(stops: tuple[asyncio.Future, ...]) -> str:
    stop = stops[-1]
    return stop.result() if stop.done() and not stop.cancelled() else "cancelled"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
