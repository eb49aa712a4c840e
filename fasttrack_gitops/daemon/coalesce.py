"""Identical work done once, and a burst of events answered before the work it brings.

GitHub redelivers a push with the same X-GitHub-Delivery id, and two hooks
(a repository's and an App's) deliver it with two ids; a burst of either
must not read the commit once per delivery. `Coalescer.run(key, work)` starts
`work()` for the first caller of a key and hands every caller that comes
while it runs the same result; the work runs as its own task, so a caller
that goes away (a closed connection) does not cancel it for the others.
What the work returned is kept (bounded, newest kept) unless it failed, so a
late duplicate is answered from memory; `remembered` hands it out for the
caller to check against the store first. `Bursts` applies it to the daemon's
events, and holds back the jobs' own work (plans, starts) while events are handled.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from fasttrack_gitops.core.events import Event, PullRequest, Push
from fasttrack_gitops.daemon.handled import Handled

T = TypeVar("T")

REMEMBERED = 4096  # results kept: the events of a busy hour; each is a few job ids and a line


class Coalescer(Generic[T]):
    """One run of `work` per key at a time, its result shared; successful results remembered (`keep`)."""

    def __init__(self, keep: Callable[[T], bool], size: int = REMEMBERED):
        self._keep = keep  # whether a result may answer later callers (a failed handling may not)
        self._size = size
        self._running: dict[Hashable, asyncio.Task[T]] = {}
        self._done: OrderedDict[Hashable, T] = OrderedDict()

    def in_flight(self, key: Hashable) -> asyncio.Task[T] | None:
        return self._running.get(key)

    def remembered(self, key: Hashable) -> T | None:
        found = self._done.get(key)
        if found is not None:
            self._done.move_to_end(key)
        return found

    def forget(self, key: Hashable) -> None:
        """Drop a remembered result that no longer holds (its jobs were removed)."""
        self._done.pop(key, None)

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(the result of work() for this key, whether this caller shared a run another caller started)."""
        task = self._running.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task), shared

    def _finished(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if task.cancelled() or task.exception() is not None:
            return
        result = task.result()
        if self._keep(result):
            self._done[key] = result
            self._done.move_to_end(key)
            while len(self._done) > self._size:
                self._done.popitem(last=False)


PLANS_WAIT = 1.0  # seconds a new job's plan may wait for a burst of events to be answered


class Bursts:
    """The events being handled: deliveries of one push or pull request share one handling (and a push's jobs
    are remembered); the work their jobs bring (plans worked out, jobs started) waits until they are answered.

    `quiet` is set while no event is being handled; the pool starts queued jobs only then (or after its own
    bound), and `plan_later` holds new jobs' plans until then, or until the oldest has waited PLANS_WAIT
    seconds: a steady stream of webhooks delays that work, never starves it.
    """

    def __init__(self, still_stored: Callable[[Push, Handled], bool], plan: Callable[[str], None]):
        self._still_stored = still_stored  # whether a remembered push's jobs are all still in the store
        self._plan = plan  # work out a queued job's plan (in the background)
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._handling = 0
        self._plans_waiting: list[str] = []
        self._plans_since = 0.0  # when the oldest waiting plan was queued
        self._events: Coalescer[Handled] = Coalescer(keep=lambda h: not h.failed and bool(h.jobs))
        # The same delivery id again (GitHub's redelivery, a retrying proxy) waits for its first handling; a
        # failed one is not kept: its redelivery is handled anew (webhooks_http.py).
        self.deliveries: Coalescer[Handled] = Coalescer(keep=lambda h: not h.failed)

    async def handle(self, event: Event, work: Callable[[], Awaitable[Handled]]) -> Handled:
        """work() for this event, or the result of an identical event's handling (in flight or remembered)."""
        self._handling += 1
        self.quiet.clear()
        try:
            return await self._coalesced(event, work)
        finally:
            self._handling -= 1
            if not self._handling:
                self.quiet.set()
                self._plan_waiting()

    async def _coalesced(self, event: Event, work: Callable[[], Awaitable[Handled]]) -> Handled:
        if not isinstance(event, (Push, PullRequest)):  # comments, re-runs: one per delivery id, never merged
            return await work()
        key = (event.repository.lower(), event)  # another repository's push of the same commit is other work
        if isinstance(event, Push) and (known := self._events.remembered(key)) is not None:
            if self._still_stored(event, known):
                return known.shared()
            self._events.forget(key)
        handled, shared = await self._events.run(key, work)
        return handled.shared() if shared else handled

    def plan_later(self, job_id: str) -> None:
        """Work out a new job's plan once no event is being handled (at once outside a handling)."""
        if not self._plans_waiting:
            self._plans_since = time.monotonic()
        self._plans_waiting.append(job_id)
        if not self._handling or time.monotonic() - self._plans_since > PLANS_WAIT:
            self._plan_waiting()

    def _plan_waiting(self) -> None:
        waiting, self._plans_waiting = self._plans_waiting, []
        for job_id in waiting:
            self._plan(job_id)
