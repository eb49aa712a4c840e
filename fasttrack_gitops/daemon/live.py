"""Live job and task changes, published in the daemon's process to whoever follows them (the console's SSE).

The pool reports every task state change (runner Change) and the daemon
every job change; each becomes one numbered event kept in a short history,
so a client that reconnects with the last id it saw (Last-Event-ID) gets
what it missed, or a `reset` when that is older than the history (it then
reloads what it shows). Each follower has a bounded queue: one that does
not keep up is dropped (its queue is full) instead of holding memory or
slowing the publisher, and may reconnect and resume. Publishing never
waits and never raises.

A job's status is derived from its tasks (store.view), which costs more
than a task's change; bursts of changes to one job are coalesced into one
`job` event per JOB_COALESCE seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("fasttrack_gitops.daemon")

HISTORY = 4000  # events kept for clients that resume (~1 MB)
QUEUE = 1000  # events one client may be behind before it is dropped: a 200-task fan-out starting is ~400 at once
MAX_FOLLOWERS = 256  # more at once are refused (503): each holds a connection and up to QUEUE events (~300 kB)
JOB_COALESCE = 0.1  # seconds: one job event for a burst of changes


@dataclass(frozen=True)
class LiveEvent:
    id: int
    kind: str  # task | job | reset
    job: str
    data: str  # JSON

    def sse(self) -> bytes:
        """The event in the text/event-stream format (data is one line of JSON)."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n".encode()


@dataclass(eq=False)
class Follower:
    job: str | None  # only this job's events; None: all
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE))
    dropped: bool = False

    def wants(self, event: LiveEvent) -> bool:
        return self.job is None or event.job == self.job


class TooManyFollowers(Exception):
    pass


class LiveEvents:
    def __init__(self, job_status: Callable[[str], str] | None = None):
        """`job_status(job_id)`: the job's status now, for `job` events (None: they carry none)."""
        self.job_status = job_status
        self.history: deque[LiveEvent] = deque(maxlen=HISTORY)
        self.followers: set[Follower] = set()
        self._next = 1
        self._dirty: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def last_id(self) -> int:
        return self._next - 1

    def follow(self, job: str | None, last_id: int | None = None) -> Follower:
        """A new follower; with `last_id`, first the events after it (or a reset when they are gone)."""
        if len(self.followers) >= MAX_FOLLOWERS or self.closed:
            raise TooManyFollowers
        follower = Follower(job)
        if last_id is not None:
            oldest = self.history[0].id if self.history else self._next
            if last_id > self.last_id or last_id < oldest - 1:  # another process's id, or too old
                follower.queue.put_nowait(LiveEvent(self.last_id, "reset", job or "", "{}"))
            else:
                for event in self.history:
                    if event.id > last_id and follower.wants(event):
                        follower.queue.put_nowait(event)  # HISTORY > QUEUE is possible: see below
                        if follower.queue.full():
                            follower.queue = asyncio.Queue(QUEUE)
                            follower.queue.put_nowait(LiveEvent(self.last_id, "reset", job or "", "{}"))
                            break
        self.followers.add(follower)
        return follower

    def unfollow(self, follower: Follower) -> None:
        self.followers.discard(follower)

    def close(self) -> None:
        """The daemon stops: every stream ends now (an open one would hold the server's shutdown forever)."""
        self.closed = True
        for follower in list(self.followers):
            follower.dropped = True
            try:
                follower.queue.put_nowait(None)  # wakes a stream waiting for its next event
            except asyncio.QueueFull:
                pass  # it is not waiting: it sees `dropped` after its current write
        self.followers.clear()
        if self._flush is not None:
            self._flush.cancel()

    def task_changed(self, job_id: str, task: str, instance) -> None:
        """A task instance changed (the pool's runner Change)."""
        attempts = instance.attempts
        self._publish(
            "task",
            job_id,
            {
                "job": job_id,
                "task": task,
                "state": str(instance.state),
                "attempts": len(attempts),
                "exit_code": instance.exit_code,
                "reason": instance.reason,
                "reused_from": instance.reused_from,
                "duration": instance.duration,
                "started_at": attempts[0].started_at if attempts else None,
            },
        )
        self.job_changed(job_id)

    def job_changed(self, job_id: str) -> None:
        """A job changed (created, started, a task moved, ended): one `job` event soon, for the whole burst."""
        self._dirty.add(job_id)
        if self._flush is None:
            try:
                self._flush = asyncio.get_running_loop().call_later(JOB_COALESCE, self._flush_jobs)
            except RuntimeError:  # no loop (a command, not the daemon): nobody follows
                self._dirty.clear()

    def _flush_jobs(self) -> None:
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        for job_id in sorted(dirty):
            status = ""
            if self.job_status is not None:
                try:
                    status = self.job_status(job_id)
                except Exception as e:  # a job event is a courtesy; the store's trouble is logged elsewhere
                    log.debug("live: no status for job %s: %s", job_id, e)
            self._publish("job", job_id, {"job": job_id, "status": status})

    def _publish(self, kind: str, job_id: str, data: dict) -> None:
        event = LiveEvent(self._next, kind, job_id, json.dumps(data))
        self._next += 1
        self.history.append(event)
        for follower in list(self.followers):
            if not follower.wants(event):
                continue
            try:
                follower.queue.put_nowait(event)
            except asyncio.QueueFull:  # it does not keep up: dropped, it may resume with Last-Event-ID
                follower.dropped = True
                self.followers.discard(follower)
