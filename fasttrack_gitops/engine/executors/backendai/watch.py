"""Following one attempt's session to its end: what the event stream and GraphQL say of it, and its log.

The session is RUNNING when the stream says `kernel_started` (how the real
23.09 stack shows it), `session_started`, or a look sees it; it has ended
when the stream says so and GraphQL agrees [POST /admin/gql compute_session:
status, result, reason; a finished session is 404 on GET /session in 23.09].
While the stream is up there is no polling, except one look every
`check_interval` in case an event was lost; when it drops, the session is
polled every `poll_interval`. One still waiting after `pending_notice` is
noted in the log. Destroying it (a timeout, a cancel) is forced when the
manager refuses a normal destroy in its current state, and waits up to
`destroy_wait` for it to end. Its log is written to `spec.log_path` with
every secret replaced by *** and capped like the local executor's, after
our own notes [GET /session/{id}/logs].
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.events import SessionEvent, SessionEventStream, StreamDropped
from fasttrack_gitops.engine.backendai.sessions import (
    SessionGone,
    SessionOutcome,
    SessionResult,
    SessionStatus,
    destroy_session,
    session_logs,
    session_result,
)
from fasttrack_gitops.engine.executors.base import AttemptSpec
from fasttrack_gitops.engine.executors.logcap import LogCapture

log = logging.getLogger("fasttrack_gitops.engine.backendai")

RAN = frozenset({SessionStatus.RUNNING, SessionStatus.RUNNING_DEGRADED, SessionStatus.RESTARTING})
MAX_CHECK_ERRORS = 5  # consecutive failed looks at a session before the attempt gives up on it


@dataclass(frozen=True)
class Timing:
    """How often, and how long, an attempt looks at its session (seconds)."""

    poll_interval: float  # between looks once the event stream dropped (or right after an end event)
    check_interval: float  # between looks while the stream is up, in case an event was lost
    pending_notice: float  # a session still waiting this long after its creation is noted in the log
    destroy_wait: float  # how long a destroyed session is given to end


@dataclass
class WatchedSession:
    """What one attempt knows of its session, and the calls that follow it."""

    name: str
    client: Client
    timing: Timing
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

    def why(self) -> str:
        """The server's reason for the session's state, as ': reason' ('' when it only repeats the status)."""
        reason = self.outcome.reason if self.outcome else ""
        return f": {reason}" if reason and reason != self.status_raw else ""

    async def follow(
        self,
        spec: AttemptSpec,
        events: SessionEventStream | None,
        deadline: float | None,
        stops: tuple[asyncio.Future, ...],
        on_status: Callable[[], None],
    ):
        """Wait for the session to end: ("ended" | "timeout" | "stopped", the stream or None once it dropped)."""
        loop = asyncio.get_running_loop()
        timing = self.timing
        next_check = loop.time() + (timing.check_interval if events is not None else timing.poll_interval)
        while True:
            if events is not None and self.next_event is None:
                self.next_event = asyncio.ensure_future(events.__anext__())
            now = loop.time()
            wake = min(
                next_check,
                deadline if deadline is not None else math.inf,
                self.created_at + timing.pending_notice if not self.noticed else math.inf,
            )
            waiting = {f for f in (self.next_event, *stops) if f is not None}
            if waiting:
                done, _ = await asyncio.wait(waiting, timeout=max(0.0, wake - now), return_when=asyncio.FIRST_COMPLETED)
            else:
                done = set()
                await asyncio.sleep(max(0.0, wake - now))
            if any(stop in done for stop in stops):
                return "stopped", events
            if self.next_event is not None and self.next_event in done:
                future, self.next_event = self.next_event, None
                try:
                    self.saw(future.result(), on_status)
                except (StreamDropped, StopAsyncIteration) as exc:
                    log.info(
                        "session %s: %s; polling every %gs",
                        self.name,
                        str(exc) or "the stream ended",
                        timing.poll_interval,
                    )
                    events, next_check = None, loop.time()
                else:
                    if self.status.is_final:
                        self.event_final, next_check = True, loop.time()  # ended: the result and exit code, now
            now = loop.time()
            if now >= next_check:
                if await self.look(on_status):
                    return "ended", events
                # Ended by the stream but not yet in the database: look again soon.
                soon = self.event_final or events is None
                next_check = now + (timing.poll_interval if soon else timing.check_interval)
            if not self.noticed and now >= self.created_at + timing.pending_notice:
                self.noticed = True
                if self.status.is_waiting:
                    if await self.look(on_status):
                        return "ended", events
                    self.note(
                        spec,
                        f"session {self.name} is still {self.status_raw} after "
                        f"{timing.pending_notice:g}s{self.why()}; waiting for the cluster's scheduler",
                    )
            if deadline is not None and loop.time() >= deadline:
                return "timeout", events

    def saw(self, event: SessionEvent, on_status: Callable[[], None]) -> None:
        """Take what one event of the stream says."""
        if event.name == "kernel_started":
            self.ran = True
        if event.result is not None:
            self.event_result, self.event_exit, self.ran = event.result, event.exit_code, True
        status = event.status
        if status is not None and status is not SessionStatus.UNKNOWN:
            self.status, self.status_raw = status, status.value
            self.ran = self.ran or status in RAN
        on_status()

    async def look(self, on_status: Callable[[], None]) -> bool:
        """Ask GraphQL where the session is; True once it has ended. Raises after MAX_CHECK_ERRORS failures."""
        try:
            found = await session_result(self.client, self.id)
        except errors.BackendAIError as exc:
            self.check_errors += 1
            if self.check_errors >= MAX_CHECK_ERRORS:
                raise
            log.warning("session %s: cannot read its status (%s); trying again", self.name, exc)
            return False
        self.check_errors = 0
        if isinstance(found, SessionGone):
            return False
        self.outcome = found
        self.status_raw = found.status_raw or self.status_raw
        if found.status is not SessionStatus.UNKNOWN:
            self.status = found.status
        self.ran = self.ran or found.status in RAN or found.result is not SessionResult.UNDEFINED
        on_status()
        return found.status.is_final

    async def destroy(self, spec: AttemptSpec, events: SessionEventStream | None) -> str:
        """Destroy the session and wait (bounded) for it to end; what went wrong, as a message suffix."""
        for forced in (False, True):
            try:
                await destroy_session(self.client, self.id, forced=forced)
                break
            except errors.BackendAIError as exc:  # e.g. 23.09 refuses while PREPARING: then forced
                if forced:
                    log.warning("session %s: destroy failed: %s", self.name, exc)
                    return f"; the Backend.AI session {self.name} could not be destroyed: {exc}"
        self.noticed = True
        wait = self.timing.destroy_wait
        try:
            loop = asyncio.get_running_loop()
            ended, _ = await self.follow(spec, events, loop.time() + wait, (), lambda: None)
        except errors.BackendAIError as exc:
            return f"; the Backend.AI session {self.name} was destroyed, but its end was not confirmed: {exc}"
        if ended != "ended":
            return f"; the Backend.AI session {self.name} had not ended {wait:g}s after it was destroyed"
        return ""

    async def destroy_quietly(self) -> None:
        """Destroy it (forced) when its attempt is abandoned: a failure is only logged."""
        try:
            await destroy_session(self.client, self.id, forced=True)
        except errors.BackendAIError as exc:
            log.warning("session %s: destroy failed: %s", self.name, exc)

    def note(self, spec: AttemptSpec, line: str) -> None:
        """A line of ours for the log: written now (seen by `jobs logs --follow`) and kept for the final log."""
        log.warning("%s", line)
        self.notes.append(line)
        try:
            with open(spec.log_path, "a", encoding="utf-8") as handle:
                handle.write(masked(f"fasttrack-gitops: {line}\n", spec.masks))
        except OSError:
            pass

    async def write_log(self, spec: AttemptSpec) -> None:
        """The attempt's log: our notes, then the session's own log."""
        try:
            text = await session_logs(self.client, self.id)
        except errors.BackendAIError as exc:
            text = ""
            self.notes.append(f"cannot read the session's log: {exc}")
        try:
            capture = LogCapture(spec.log_path, masks=spec.masks)
        except OSError as exc:
            log.warning("cannot write the log %s: %s", spec.log_path, exc.strerror)
            return
        try:
            for line in self.notes:
                capture.write(f"fasttrack-gitops: {line}\n".encode())
            capture.write(text.encode("utf-8", "replace"))
        finally:
            capture.close()
