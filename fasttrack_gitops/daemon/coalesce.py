"""Identical work done once: deliveries of the same event share one handling, in flight and for a while after.

GitHub redelivers a push with the same X-GitHub-Delivery id, and two hooks
(a repository's and an App's) deliver it with two ids; a burst of either
must not read the commit once per delivery. `Coalescer.run(key, work)` starts
`work()` for the first caller of a key and hands every caller that comes
while it runs the same result; the work runs as its own task, so a caller
that goes away (a closed connection) does not cancel it for the others.
What the work returned is kept (bounded, newest kept) unless it failed, so a
late duplicate is answered from memory; `remembered` hands it out for the
caller to check against the store first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

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
