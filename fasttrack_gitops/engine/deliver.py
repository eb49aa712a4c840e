"""The deliverer: sends what the outbox owes, one loop per reporter, with backoff; never blocks a job.

Each reporter has its own loop, so a slow or failing service delays only
its own reports. Within a loop rows are sent one at a time, so a job is
never sent to one reporter twice at once, and the newest report of the job
is built at send time (whatever changed meanwhile is in it). A failure is
retried with exponential backoff and jitter (or after the service's own
Retry-After); a reporter that gives up on a job says why once, in the log
and in /metrics, and the job goes on regardless.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, Reporter, RetryLater
from fasttrack_gitops.engine.state.outbox import Outbox, Pending

log = logging.getLogger("fasttrack_gitops.engine.reporters")

BASE_DELAY = 2.0  # seconds before the first retry; doubles per failure
MAX_DELAY = 600.0
MAX_SURPRISES = 5  # failures that are neither RetryLater nor GiveUp (bugs) before a job is given up
IDLE_WAKE = 30.0  # a loop with nothing due looks again at least this often


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        reporters: Sequence[Reporter],
        build: Callable[[str], JobReport | None],
        *,
        on_result: Callable[[str, str], None] = lambda reporter, result: None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.outbox = outbox
        self.reporters = {r.name: r for r in reporters}
        self.build = build  # job id -> its report now (None: the job is gone)
        self.on_result = on_result  # (reporter, "sent" | "retry" | "gave_up" | "skipped")
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = {name: asyncio.Event() for name in self.reporters}

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

    async def flush(self) -> int:
        """Send everything due now, for every reporter (the GitHub Action's last step; tests); how many sends."""
        return sum([await self.deliver_due(name) for name in self.reporters])

    async def _loop(self, name: str, stop: asyncio.Event) -> None:
        wake = self._wake[name]
        while not stop.is_set():
            wake.clear()
            try:
                await self.deliver_due(name)
            except Exception:  # the store refused, a bug: log, keep the loop (and the daemon) alive
                log.exception("reporter %s: delivering failed", name)
            upcoming = self.outbox.next_due(name)
            delay = IDLE_WAKE if upcoming is None else min(IDLE_WAKE, max(0.05, upcoming - self.clock()))
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def deliver_due(self, name: str) -> int:
        """Send each of this reporter's rows that is due; how many were sent."""
        sent = 0
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
            delay = e.after if e.after is not None else self._backoff(row.failures)
            self.outbox.failed(row, str(e), retry_at=self.clock() + max(0.0, delay), state=_progress(e))
            log.warning("reporter %s, job %s: %s; trying again in %.0fs", reporter.name, row.job_id, e, delay)
            self.on_result(reporter.name, "retry")
            return 0
        except GiveUp as e:
            self.outbox.give_up(row, str(e), state=_progress(e))
            log.error("reporter %s, job %s: %s; not sending this job there any more", reporter.name, row.job_id, e)
            self.on_result(reporter.name, "gave_up")
            return 0
        except Exception as e:  # a bug in a reporter: retried a few times, then given up, never raised on
            if row.failures + 1 >= MAX_SURPRISES:
                self.outbox.give_up(row, f"{type(e).__name__}: {e}")
                self.on_result(reporter.name, "gave_up")
            else:
                self.outbox.failed(row, f"{type(e).__name__}: {e}", retry_at=self.clock() + self._backoff(row.failures))
                self.on_result(reporter.name, "retry")
            log.exception("reporter %s, job %s: unexpected failure", reporter.name, row.job_id)
            return 0
        self.outbox.sent(row, state, min_interval=reporter.min_interval, now=self.clock())
        self.on_result(reporter.name, "sent")
        return 1

    def _backoff(self, failures: int) -> float:
        """Exponential, capped, with jitter in [50%, 100%] so that retries of many jobs do not come in step."""
        return min(MAX_DELAY, BASE_DELAY * 2 ** min(failures, 20)) * self.rng.uniform(0.5, 1.0)


def _progress(error: Exception) -> dict | None:
    """What a send that failed half-way had done (a check run made, some annotations sent), so that the next
    attempt goes on from there instead of making a second check run."""
    state = getattr(error, "state", None)
    return dict(state) if isinstance(state, dict) else None
