"""The deliverer: sends what an outbox owes, one loop per reporter, with backoff; never blocks a job.

Each reporter has its own loop, so a slow or failing service delays only
its own reports. Within a loop rows are sent one at a time, so a job is
never sent to one reporter twice at once, and the newest report of the job
is built at send time (whatever changed meanwhile is in it). A failure is
retried with exponential backoff and jitter (or after the service's own
Retry-After); a reporter that gives up on a job says why once, and the job
goes on regardless.

How hard it tries is a `Policy`. The daemon's (the default) never gives up
on an outage and spaces a job's sends by the reporter's `min_interval`, its
outbox in the state database. The GitHub Action's step (ci/reporters.py)
gives a report a few tries with short waits, over an outbox in memory, and
turns a report given up into a `::warning` through `on_failure`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, Reporter, RetryLater
from fasttrack_gitops.engine.state.outbox import DeliveryQueue, Pending

log = logging.getLogger("fasttrack_gitops.engine.reporters")

IDLE_WAKE = 30.0  # a loop with nothing due looks again at least this often


@dataclass(frozen=True)
class Policy:
    """How hard the deliverer tries; the defaults are the daemon's."""

    tries: int | None = None  # failed sends of a job in a row before it is given up there; None: until one works
    surprises: int = 5  # the same for failures that are neither RetryLater nor GiveUp (a reporter's bug)
    base_delay: float = 2.0  # seconds before the first retry; doubles per failure
    max_delay: float = 600.0  # the longest backoff of our own
    max_wait: float | None = None  # the longest wait, the service's Retry-After included; None: as it asks
    spacing: bool = True  # a job's sends at most one per reporter's min_interval (the final one excepted)


Cause = Literal["refused", "unavailable", "bug"]  # GiveUp, RetryLater, anything else


@dataclass(frozen=True)
class Failure:
    """A send that did not go through, and what the deliverer made of it."""

    reporter: str
    report: JobReport
    reason: str  # the reporter's words; for a bug, its type and message
    cause: Cause
    retry_in: float | None  # seconds until the next try; None: the job is given up for this reporter


def log_failure(failure: Failure) -> None:
    """The daemon's account of a failed send, in its log (called where the exception is being handled)."""
    who = f"reporter {failure.reporter}, job {failure.report.job_id}"
    if failure.cause == "bug":
        log.exception("%s: unexpected failure", who)
    elif failure.retry_in is not None:
        log.warning("%s: %s; trying again in %.0fs", who, failure.reason, failure.retry_in)
    else:
        log.error("%s: %s; not sending this job there any more", who, failure.reason)


class Deliverer:
    def __init__(
        self,
        outbox: DeliveryQueue,
        reporters: Sequence[Reporter],
        build: Callable[[str], JobReport | None],
        *,
        policy: Policy = Policy(),
        on_result: Callable[[str, str], None] = lambda reporter, result: None,
        on_failure: Callable[[Failure], None] = log_failure,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.outbox = outbox
        self.reporters = {r.name: r for r in reporters}
        self.build = build  # job id -> its report now (None: the job is gone)
        self.policy = policy
        self.on_result = on_result  # (reporter, "sent" | "retry" | "gave_up" | "skipped")
        self.on_failure = on_failure
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = {name: asyncio.Event() for name in self.reporters}
        self._sending = {name: asyncio.Lock() for name in self.reporters}  # one send at a time per reporter

    @property
    def names(self) -> list[str]:
        return list(self.reporters)

    def wake(self) -> None:
        """Something was marked: every loop looks at the outbox now."""
        for event in self._wake.values():
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until stop is set."""
        await asyncio.gather(*(self._loop(name, stop) for name in self.reporters))

    async def drain(self) -> None:
        """Deliver until nothing is owed: every row sent or given up, waiting out the retries (the Action's
        step, whose policy gives up after a few tries; with one that never does, this lasts the outage)."""
        never = asyncio.Event()
        await asyncio.gather(*(self._loop(name, never, until_idle=True) for name in self.reporters))

    async def flush(self) -> int:
        """Send everything due now, for every reporter, without waiting for a retry; how many sends."""
        return sum([await self.deliver_due(name) for name in self.reporters])

    async def _loop(self, name: str, stop: asyncio.Event, *, until_idle: bool = False) -> None:
        wake = self._wake[name]
        while not stop.is_set():
            wake.clear()
            try:
                await self.deliver_due(name)
            except Exception:  # the store refused, a bug: log, keep the loop (and the daemon) alive
                if until_idle:  # a drain would try again forever: its caller hears of it instead
                    raise
                log.exception("reporter %s: delivering failed", name)
            upcoming = self.outbox.next_due(name)
            if upcoming is None and until_idle:
                return
            delay = IDLE_WAKE if upcoming is None else min(IDLE_WAKE, max(0.05, upcoming - self.clock()))
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def deliver_due(self, name: str) -> int:
        """Send each of this reporter's rows that is due; how many were sent."""
        sent = 0
        async with self._sending[name]:
            for row in self.outbox.due(name, self.clock()):
                sent += await self._one(self.reporters[name], row)
        return sent

    async def _one(self, reporter: Reporter, row: Pending) -> int:
        report = self.build(row.job_id)
        if report is None or not reporter.wants(report):
            self.outbox.settle(row)
            self.on_result(reporter.name, "skipped")
            return 0
        try:
            state = await reporter.send(report, row.state)
        except RetryLater as e:
            self._failed(reporter, report, row, "unavailable", e)
            return 0
        except GiveUp as e:
            self._failed(reporter, report, row, "refused", e)
            return 0
        except Exception as e:  # a bug in a reporter: retried a few times, then given up, never raised on
            self._failed(reporter, report, row, "bug", e)
            return 0
        spacing = reporter.min_interval if self.policy.spacing else 0.0
        self.outbox.sent(row, state, min_interval=spacing, now=self.clock())
        self.on_result(reporter.name, "sent")
        return 1

    def _failed(self, reporter: Reporter, report: JobReport, row: Pending, cause: Cause, error: Exception) -> None:
        """Try again after a while, or give the job up for this reporter (a refusal at once, an outage or a
        bug after the policy's tries); called while `error` is being handled, so a bug's traceback is logged."""
        reason = f"{type(error).__name__}: {error}" if cause == "bug" else str(error)
        limit = {"refused": 1, "unavailable": self.policy.tries, "bug": self.policy.surprises}[cause]
        progress = _progress(error)
        retry_in: float | None = None
        if limit is not None and row.failures + 1 >= limit:
            self.outbox.give_up(row, reason, state=progress)
        else:
            retry_in = self._wait(row.failures, asked=error.after if isinstance(error, RetryLater) else None)
            self.outbox.failed(row, reason, retry_at=self.clock() + retry_in, state=progress)
        self.on_result(reporter.name, "gave_up" if retry_in is None else "retry")
        self.on_failure(Failure(reporter.name, report, reason, cause, retry_in))

    def _wait(self, failures: int, *, asked: float | None) -> float:
        """Seconds until the next try: what the service asked, else exponential backoff, capped, with jitter in
        [50%, 100%] so that retries of many jobs do not come in step; never over the policy's max_wait."""
        if asked is not None:
            wait = max(0.0, asked)
        else:
            backoff = min(self.policy.max_delay, self.policy.base_delay * 2 ** min(failures, 20))
            wait = backoff * self.rng.uniform(0.5, 1.0)
        return wait if self.policy.max_wait is None else min(wait, self.policy.max_wait)


def _progress(error: Exception) -> dict | None:
    """What a send that failed half-way had done (a check run made, some annotations sent), so that the next
    attempt goes on from there instead of making a second check run."""
    state = getattr(error, "state", None)
    return dict(state) if isinstance(state, dict) else None
