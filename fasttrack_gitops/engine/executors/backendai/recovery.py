"""What the `backendai` executor does when it cannot know what the manager did: sessions that outlived their
runner (reattach), and a POST /session left unanswered.

A session of one name is made at most once per attempt: the manager reuses a
name only while its session lives, so asking for an ended one by name again
would run the task a second time. Each path here finds out first, and takes
"cannot say" for neither "alive" nor "gone" (the chaos campaign found a task
run twice each way: tests/chaos, tests/integration/chaos_test.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.graphql import GraphQLError
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec, session_name
from fasttrack_gitops.engine.backendai.sessions import (
    CreatedSession,
    SessionInfo,
    SessionStatus,
    create_batch_session,
    session_info,
    session_logs,
    sessions_named,
)
from fasttrack_gitops.engine.executors.backendai.deploy import Deployments
from fasttrack_gitops.engine.executors.backendai.verdict import verdict
from fasttrack_gitops.engine.executors.backendai.watch import Timing, WatchedSession
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec, Started, error_result

# A request that went out and got no answer: the manager may have done it (a refusal or an error status is an answer).
UNANSWERED = (errors.ConnectionFailedError, errors.RequestTimeoutError)
# How long a recovery path asks what became of a session before it gives up (a manager restarts in ~10 s).
ANSWER_PATIENCE = 60.0
# What the manager says of a session by name (Recovery._named).
ALIVE, ENDED, ABSENT, UNKNOWN = "alive", "ended", "absent", "unknown"


class Recovery:
    """The executor's recovery paths (a mixin: BackendAIExecutor provides what is declared here)."""

    client: Client
    timing: Timing
    deployments: Deployments

    run: Callable[..., Awaitable[AttemptResult]]  # a new attempt, or one following a session found (by its id)

    async def reattach(
        self, spec: AttemptSpec, handle: Mapping | None, *, cancel: asyncio.Event, started: Started
    ) -> AttemptResult | None:
        """Sessions outlive their runner. One that ended meanwhile is read by the id in its handle (GraphQL
        still knows a finished session; creating it again would run the task twice); a live one is followed by
        that id like a new one. With a name alone (the runner died before it learnt the id), the manager lists
        that name's sessions (_named): one found is read or followed by its id the same way, none is made now,
        and while the manager cannot say, nothing is made (interrupted after ANSWER_PATIENCE)."""
        endpoint_id = (handle or {}).get("endpoint_id")
        if spec.task.is_service and endpoint_id:  # a model service outlives its runner: follow it, do not replace it
            return await self.deployments.run(spec, cancel=cancel, started=started, endpoint_id=str(endpoint_id))
        session_id = (handle or {}).get("session_id")
        named = str((handle or {}).get("session") or "")
        if named and not session_id:  # the runner died before it learnt the id: what became of the session?
            state, session_id = await self._named_until_answered(named, cancel)
            if state == UNKNOWN or (state == ENDED and not session_id):
                now = time.time()
                why = (
                    "the session ended meanwhile (a finished session is found by id only)"
                    if state == ENDED
                    else f"the manager did not say for {ANSWER_PATIENCE:g}s whether the session exists or ran"
                )
                message = (
                    f"interrupted: the runner that created the session {named} stopped before it learnt its id, "
                    f"and {why}"
                )
                return AttemptResult(Outcome.INTERRUPTED, None, now, now, message)
        if session_id:
            name = (handle or {}).get("session") or session_name(spec.job_id, spec.task.name, spec.number)
            s = WatchedSession(str(name), self.client, self.timing, id=str(session_id))
            ended = await self._look_until_answered(s, cancel)
            if ended is None:
                now = time.time()
                message = (
                    f"interrupted: the runner that created the session {s.name} stopped, and the manager did not say "
                    f"for {ANSWER_PATIENCE:g}s whether it still runs"
                )
                return AttemptResult(Outcome.INTERRUPTED, None, now, now, message)
            if ended:
                outcome, exit_code, message = verdict(s)
                s.notes.append(f"the session {s.name} ended while no runner followed it")
                await s.write_log(spec)
                now = time.time()
                return AttemptResult(outcome, exit_code, now, now, masked(message, spec.masks))
            # Alive: followed by its id. Not asked for by name again: it may end in between, and its name, free
            # again, would make a second one (found by the chaos campaign on the real 23.09 manager, restarting).
            found = CreatedSession(s.id, s.name, s.status, s.status_raw, created=False, raw={})
            return await self.run(spec, cancel=cancel, started=started, found=found)
        return await self.run(spec, cancel=cancel, started=started)

    async def _look_until_answered(self, s: WatchedSession, cancel: asyncio.Event) -> bool | None:
        """Whether the session ended, asked poll_interval apart until the manager answers (a manager restarting
        says nothing for seconds), for up to ANSWER_PATIENCE seconds; None when it never did. "Cannot say" is
        never taken for "alive": the session may end meanwhile, its name is free again, and asking for it by name
        would create a second one, running the task twice (found by the chaos campaign on the real 23.09
        manager)."""
        deadline = asyncio.get_running_loop().time() + ANSWER_PATIENCE
        while True:
            try:
                ended = await s.look(lambda: None)
                answered = not s.check_errors
            except errors.BackendAIError:
                ended, answered = False, False
            if answered or cancel.is_set():
                return ended
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(self.timing.poll_interval)

    async def _named(self, name: str) -> tuple[str, str | None]:
        """What became of a session of this name, and its id when known: ALIVE (live), ENDED (it ran, or may
        have: made again it would run a second time), ABSENT (never made, or cancelled before it ran: made now,
        it runs once), or UNKNOWN (no answer, or an error that says nothing of it: a manager restarting).
        GraphQL lists a name's sessions, ended ones included, with their ids; a manager whose GraphQL cannot
        (not 23.09's schema) is asked GET /session, then for the log, which 23.09 keeps after the end."""
        try:
            found = await sessions_named(self.client, name)
        except GraphQLError:
            return await self._named_by_rest(name), None
        except errors.BackendAIError:
            return UNKNOWN, None
        live = next((f for f in found if not f.status.is_final), None)
        if live is not None:
            return ALIVE, live.id
        ended = next((f for f in found if f.status is not SessionStatus.CANCELLED), None)
        return (ENDED, ended.id) if ended is not None else (ABSENT, None)

    async def _named_by_rest(self, name: str) -> str:
        try:
            if isinstance(await session_info(self.client, name), SessionInfo):
                return ALIVE
            await session_logs(self.client, name)
        except errors.NotFoundError as exc:  # object-not-found: never made; too-many-sessions-matched: it was
            return ABSENT if exc.slug == "object-not-found" else ENDED
        except errors.BackendAIError:
            return UNKNOWN
        return ENDED

    async def _named_until_answered(self, name: str, cancel: asyncio.Event) -> tuple[str, str | None]:
        """_named, asked poll_interval apart until the manager says, for up to ANSWER_PATIENCE seconds."""
        deadline = asyncio.get_running_loop().time() + ANSWER_PATIENCE
        while True:
            state, session_id = await self._named(name)
            if state != UNKNOWN or cancel.is_set() or asyncio.get_running_loop().time() >= deadline:
                return state, session_id
            await asyncio.sleep(self.timing.poll_interval)

    async def _create(
        self, spec: AttemptSpec, requested: SessionSpec, started_at: float
    ) -> CreatedSession | AttemptResult:
        """POST /session. One left unanswered once it was sent (the connection broke, the answer timed out) may
        have made the session all the same: a manager stopped mid-request does (found by the chaos campaign on
        the real 23.09 manager: the attempt failed and its retry ran the task a second time). So the manager is
        asked, poll_interval apart, for up to ANSWER_PATIENCE seconds, what became of a session of that name
        (_named): a live one is found again by name and a missing one made; one that ended already was this
        attempt's, and ran: its result cannot be read, so the attempt is interrupted (retried only as the task's
        `retry` allows), never run again as is; while the manager cannot say, nothing is asked of it again."""
        try:
            return await create_batch_session(self.client, requested)
        except UNANSWERED as exc:
            problem = exc
        except errors.BackendAIError as exc:
            return error_result(spec, started_at, str(exc))
        deadline = asyncio.get_running_loop().time() + ANSWER_PATIENCE
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(self.timing.poll_interval)
            state, session_id = await self._named(requested.name)
            if state == UNKNOWN:  # never taken for "absent": a POST now could make a second session
                continue
            if session_id is not None:  # made by the request left unanswered: followed by its id (ended or not)
                status = SessionStatus.TERMINATED if state == ENDED else SessionStatus.PENDING
                return CreatedSession(session_id, requested.name, status, status.value, created=True, raw={})
            if state == ENDED:
                message = (
                    f"interrupted: the manager made the session {requested.name} without answering ({problem}), "
                    "and it ended before it could be followed (its result cannot be read)"
                )
                return AttemptResult(Outcome.INTERRUPTED, None, started_at, time.time(), message)
            try:  # ALIVE: found again by name; ABSENT: made now
                return await create_batch_session(self.client, requested)
            except UNANSWERED as exc:
                problem = exc
            except errors.BackendAIError as exc:
                return error_result(spec, started_at, str(exc))
        return error_result(spec, started_at, str(problem))
