"""Drives one pipeline job to its end: the scheduler decides, the executor runs, the store records.

One asyncio loop; launch.py sets a job up and hands it to a runner, for every shell (`run`,
`jobs rerun`, the daemon, the Action). The runner keeps an in-memory mirror of the task instances it owns
and writes every change through to the store, so any other process (`jobs
show`, `jobs logs --follow`) sees the job as it runs. Preparing a working
directory (a code tree written and copied) and emptying a retried task's
outputs run in worker threads: the loop goes on serving the other tasks (and
the daemon's webhooks) meanwhile; the folders of tasks sure to run are made
ahead of their start (prepare.py). The store's writes stay on the loop (its
connection belongs to the loop's thread).

An executor that learns what its cluster has free (`refresh_capacity`, the
Backend.AI one) is asked before the first decision, after attempts end, and
every CAPACITY_REFRESH seconds while a task waits for capacity (others'
sessions end too); the scheduler then starts only what fits.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fasttrack_gitops.core import scheduler
from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import ACTIVE, ENDED, Attempt, JobView, Outcome, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.engine.executors.base import (
    AttemptResult,
    Executor,
    LearnsCapacity,
    task_outputs_of,
)
from fasttrack_gitops.engine.prepare import Preparation
from fasttrack_gitops.engine.state.store import Store

if TYPE_CHECKING:
    from fasttrack_gitops.engine.cache import CacheIndex
    from fasttrack_gitops.engine.cache.job_cache import JobCache
    from fasttrack_gitops.engine.cache.keys import JobKeys

CANCEL_POLL = 0.25  # seconds between looks at the store for a `jobs cancel` from another process
CAPACITY_REFRESH = 5.0  # seconds between looks at the cluster's free capacity while a task waits for it
QUEUED = "attempt.queued"  # job event: an executor enqueued an attempt (its handle), which has not run yet


@dataclass(frozen=True)
class Change:
    """What the runner tells whoever shows progress."""

    task: str
    instance: TaskInstance
    message: str = ""


class JobRunner:
    def __init__(
        self,
        job: PipelineJob,
        store: Store,
        executor: Executor,
        *,
        workdir: Callable[[str], Path],
        secrets: Mapping[str, str] | None = None,
        max_parallel: int | None = None,
        initial: Mapping[str, TaskInstance] | None = None,
        cache: tuple[JobKeys, CacheIndex] | None = None,
        new: bool = False,
        resume: bool = False,
        on_change: Callable[[Change], None] = lambda change: None,
        rng: random.Random | None = None,
        capacity_refresh: float = CAPACITY_REFRESH,
    ):
        self.job = job
        self.store = store
        self.executor = executor
        self.workdir = workdir  # called in a worker thread: it must not use the store's connection
        self.secrets = dict(secrets or {})
        self.max_parallel = max_parallel
        self.on_change = on_change
        self.rng = rng or random.Random()
        self.capacity_refresh = capacity_refresh  # seconds between looks at free capacity while a task waits for it
        self.pipeline = job.pipeline_model()
        self.tasks: dict[str, TaskInstance] = {t.name: TaskInstance(t.name) for t in self.pipeline.tasks}
        self.initial = dict(initial or {})
        self.new = new  # store the job once claimed (else it is stored already)
        self.resume = resume  # take over a stored job a runner that died left unfinished
        self._interrupted = ""  # why interrupt() stopped the job: its attempts end INTERRUPTED, its tasks stay open
        self._running: dict[str, asyncio.Task] = {}
        self._cancel = asyncio.Event()
        self._held: list[Change] | None = None  # changes told once the batch they are in commits (_batch)
        self.cache: JobCache | None = None
        if cache is not None:  # imported here: most jobs cache no task (start-up time, commands/run_imports_test.py)
            from fasttrack_gitops.engine.cache.job_cache import JobCache

            self.cache = JobCache(job, store, *cache, lambda: self.tasks)
        self.prepare = Preparation(job, self.pipeline, store, workdir, self.secrets, self.cache)

    def cancel(self) -> None:
        """Stop the job: running attempts are killed, the rest cancelled (from a signal handler too)."""
        self._cancel.set()

    def interrupt(self, reason: str) -> None:
        """Stop driving the job without ending it (the daemon shuts down): running attempts are stopped and
        recorded as INTERRUPTED, every task keeps its state, and a later runner with resume=True goes on."""
        self._interrupted = reason
        self._cancel.set()

    async def run(self) -> JobView:
        with self.store.claim(self.job.id, new=self.new):
            if self.new:
                self.store.create_job(self.job)
            for name, instance in self.initial.items():  # e.g. tasks reused by `jobs rerun --failed-only`
                self._set(name, instance.state, reason=instance.reason, reused_from=instance.reused_from)
            if self.resume:
                self._take_over()
            await self._drive()
        return self.store.view(self.job.id)

    def _take_over(self) -> None:
        """Continue from the stored task instances: follow attempts still open, settle ended ones.

        An open attempt (started, never ended) is handed to the executor's
        reattach(); one that ended without the task following (the last
        runner was interrupted, or died in between) is settled now: retried
        when the task's retry policy allows, else the task fails with its
        reason, and a success stays a success; a task handed to the executor
        but never started starts again.
        """
        self.tasks = dict(self.store.view(self.job.id).tasks)
        for name, instance in self.tasks.items():
            if instance.ended or instance.state not in ACTIVE:
                continue
            last = instance.attempts[-1] if instance.attempts else None
            if last is None:
                self._set(name, TaskState.WAITING, reason="starting again: the last runner stopped before it ran")
            elif last.ended_at is None:
                handle = self.store.attempt_handle(self.job.id, name, last.number)
                self._running[name] = asyncio.create_task(self._reattach(name, last, handle))
            elif last.outcome == Outcome.SUCCEEDED:  # the last runner died between the attempt and the task
                self._set(name, TaskState.SUCCEEDED, attempt=last)
            elif last.outcome == Outcome.CANCELLED:
                self._set(name, TaskState.CANCELLED, attempt=last, reason="the job was cancelled")
            else:
                self._settle(
                    name,
                    last,
                    last.message
                    or (f"exit code {last.exit_code}" if last.exit_code is not None else str(last.outcome)),
                )

    async def _drive(self) -> None:
        priority = scheduler.priorities(self.pipeline, self.store.past_durations(self.pipeline.name))
        order = scheduler.order(self.pipeline)
        capacity: scheduler.CapacityLike = self.executor.capacity()
        refresh = self.executor.refresh_capacity if isinstance(self.executor, LearnsCapacity) else None
        refresh_at: float | None = 0.0  # when to ask it next; None: when an attempt ends
        running = self._running
        cancelled = asyncio.ensure_future(self._cancel.wait())
        next_poll = 0.0
        self.prepare.ahead((n for n in order if self.tasks[n].state not in ENDED), self.executor)
        try:
            while True:
                now = time.time()
                if refresh is not None and refresh_at is not None and now >= refresh_at:
                    refresh_at = None
                    if self._unstarted():
                        capacity = await refresh(self.job.id, self.pipeline.tasks)
                        now = time.time()
                if now >= next_poll:
                    next_poll = now + CANCEL_POLL
                    if self.store.cancel_requested(self.job.id):
                        self.cancel()
                if self._cancel.is_set():
                    break
                decision = scheduler.decide(
                    self.pipeline,
                    self.tasks,
                    now=now,
                    priority=priority,
                    order=order,
                    max_parallel=self.max_parallel,
                    capacity=capacity,
                )
                with self._batch():  # one commit for the decision (a wide fan's first one sets ~200 states)
                    self._apply(decision)
                if decision.why and refresh_at is None:
                    refresh_at = now + self.capacity_refresh
                for name in decision.start:
                    running[name] = asyncio.create_task(self._start(name))
                if all(i.state in ENDED for i in self.tasks.values()):
                    return
                if decision.skip or decision.fail:
                    continue  # a skip may free dependents at once
                # Sleep until an attempt ends, a cancel, a retry falls due, or the next cancel poll.
                timeout = CANCEL_POLL
                if decision.wake_at is not None:
                    timeout = min(timeout, max(0.0, decision.wake_at - time.time()))
                await asyncio.wait([*running.values(), cancelled], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for name in [n for n, t in running.items() if t.done()]:
                    running.pop(name).result()  # re-raise a bug in _attempt rather than hide it
                    refresh_at = 0.0  # what it held is free again
        finally:
            cancelled.cancel()
            await self.prepare.stop()
            if running:
                self._cancel.set()
                await asyncio.gather(*running.values(), return_exceptions=True)
            for name, instance in self.tasks.items():
                if instance.state not in ENDED and not self._interrupted:
                    self._set(name, TaskState.CANCELLED, reason="the job was cancelled")

    def _apply(self, decision: scheduler.Decision) -> None:
        """The states a decision gives: skipped, failed, waiting (and why), submitted."""
        for name, reason in decision.skip.items():
            self._set(name, TaskState.SKIPPED, reason=reason)
        for name, reason in decision.fail.items():
            self._set(name, TaskState.FAILED, reason=reason)
        for name in decision.wait:
            why, instance = decision.why.get(name), self.tasks[name]
            if instance.state != TaskState.WAITING or (why is not None and why != instance.reason):
                reason = why if why is not None else instance.reason if instance.state == TaskState.WAITING else ""
                self._set(name, TaskState.WAITING, reason=reason, next_attempt_at=instance.next_attempt_at)
        for name in decision.start:
            self._set(name, TaskState.SUBMITTED)

    def _unstarted(self) -> bool:
        """Whether a task is still to be started (else what the cluster has free does not matter any more)."""
        return any(i.state in (TaskState.PENDING, TaskState.WAITING) for i in self.tasks.values())

    async def _start(self, name: str) -> None:
        """A task's first attempt, unless the cache has its outputs already: then it is REUSED and runs nothing."""
        if self.cache is not None and not self.tasks[name].attempts:
            entry = await self.cache.reuse(name)
            if entry is not None:
                from fasttrack_gitops.engine.cache.job_cache import describe

                self._set(name, TaskState.REUSED, reason=describe(entry), reused_from=entry.job)
                return
        await self._attempt(name)

    async def _attempt(self, name: str) -> None:
        number = len(self.tasks[name].attempts) + 1
        outputs = self.prepare.outputs(name)
        if number > 1 and outputs.exists():  # a retry starts from an empty outputs folder
            await asyncio.to_thread(shutil.rmtree, outputs)
        outputs.mkdir(parents=True, exist_ok=True)
        started_at = time.time()
        try:
            spec = await self.prepare.spec(name, number, warn=True)
        except (FastTrackError, OSError) as e:  # e.g. the commit's objects are gone: this task cannot start
            reason = f"cannot prepare the working directory: {getattr(e, 'strerror', None) or e}"
            self._finish(name, number, AttemptResult(Outcome.ERROR, None, started_at, time.time(), reason))
            return

        def started(handle: Mapping | None = None, *, queued: bool = False) -> None:
            if queued:  # enqueued, not running: only the handle is kept, for a runner that takes over (below)
                data = {"number": number, "handle": dict(handle or {})}
                self.store.add_event(self.job.id, QUEUED, task=name, data=data)
                return
            with self._batch():  # one commit for the attempt and the state
                self.store.start_attempt(self.job.id, name, number, started_at=started_at, handle=handle)
                self._set(name, TaskState.RUNNING, attempt=Attempt(number, started_at))

        # A runner that died after the executor enqueued this attempt (a Backend.AI session) but before it ran left
        # its handle: follow that session rather than make a second one, which would run the task twice.
        queued = self._queued_handle(name, number) if self.resume else None
        result = None
        if queued is not None:
            result = await self.executor.reattach(spec, queued, cancel=self._cancel, started=started)
        if result is None:
            result = await self.executor.run(spec, cancel=self._cancel, started=started)
        await self._outputs_done(name, result)
        self._finish(name, number, result)

    def _queued_handle(self, name: str, number: int) -> Mapping | None:
        """The handle an executor gave when it enqueued attempt `number` of a task (started(..., queued=True));
        None when there is none, or when an interrupt stopped that attempt before it ran (its handle is void)."""
        found = None
        for event in self.store.events(self.job.id):
            if event.kind == QUEUED and event.task == name and event.data.get("number") == number:
                found = event.data.get("handle")
        return found

    async def _outputs_done(self, name: str, result: AttemptResult) -> None:
        """Before a successful task is marked succeeded (and its dependants decided): its outputs into the cache,
        its metrics into the record (engine/results.py)."""
        if result.outcome != Outcome.SUCCEEDED or self._interrupted:
            return
        if self.cache is not None:
            await self.cache.finished(name)
        if self.pipeline.task(name).metrics is not None:
            folder = task_outputs_of(self.executor, self.job, self.store.state_dir)
            from fasttrack_gitops.engine import results  # here: most runs have no metrics (start-up time)

            await results.collect(self.job, name, self.store, folder)

    async def _reattach(self, name: str, attempt: Attempt, handle: Mapping | None) -> None:
        """Follow an attempt that a runner which died had started; interrupted when the executor cannot."""
        try:
            spec = await self.prepare.spec(name, attempt.number)
        except (FastTrackError, OSError):
            spec = None
        result = None
        if spec is not None:
            result = await self.executor.reattach(spec, handle, cancel=self._cancel, started=lambda *_, **__: None)
            if result is not None:
                await self._outputs_done(name, result)
        if result is None:
            result = AttemptResult(
                Outcome.INTERRUPTED,
                None,
                attempt.started_at,
                time.time(),
                "interrupted: the runner that started it stopped while it ran",
            )
        self._finish(name, attempt.number, result)

    def _finish(self, name: str, number: int, result: AttemptResult) -> None:
        with self._batch():  # the attempt's end and the task's next state: one commit, never one without the other
            self._record_end(name, number, result)

    def _record_end(self, name: str, number: int, result: AttemptResult) -> None:
        started = any(a.number == number for a in self.tasks[name].attempts)
        if self._interrupted and result.outcome == Outcome.CANCELLED:  # stopped by interrupt(), not a cancel
            if not started:  # handed to the executor, stopped before it ran: no attempt; the next runner starts it
                self.store.add_event(self.job.id, QUEUED, task=name, data={"number": number, "handle": None})
                self._set(name, TaskState.WAITING, reason=f"not started: {self._interrupted}")
                return
            result = replace(result, outcome=Outcome.INTERRUPTED, message=f"interrupted: {self._interrupted}")
        attempt = Attempt(
            number, result.started_at, result.ended_at, result.exit_code, result.outcome, result.message, result.service
        )
        if not started:
            self.store.start_attempt(self.job.id, name, number, started_at=result.started_at)  # never started
        self.store.end_attempt(
            self.job.id,
            name,
            number,
            ended_at=result.ended_at,
            exit_code=result.exit_code,
            outcome=result.outcome,
            message=result.message,
            service=result.service,
        )
        if result.outcome == Outcome.SUCCEEDED:
            self._set(name, TaskState.SUCCEEDED, attempt=attempt)
        elif result.outcome == Outcome.CANCELLED:
            self._set(name, TaskState.CANCELLED, attempt=attempt, reason="the job was cancelled")
        elif self._interrupted:  # the task stays open; the next runner settles it (_take_over)
            self.tasks[name] = replace(self.tasks[name], attempts=self._with(self.tasks[name].attempts, attempt))
        else:
            self._settle(name, attempt, result.message or f"exit code {result.exit_code}")

    def _settle(self, name: str, attempt: Attempt, why: str) -> None:
        """After an attempt that did not succeed: retry when the task's policy allows, else fail it."""
        attempts = self._with(self.tasks[name].attempts, attempt)
        retry_at = scheduler.retry_at(self.pipeline.task(name), attempts, time.time(), self.rng)
        if retry_at is not None:
            self._set(
                name,
                TaskState.WAITING,
                attempt=attempt,
                next_attempt_at=retry_at,
                reason=f"attempt {attempt.number} {attempt.outcome}: {why}; retrying",
            )
        else:
            self._set(name, TaskState.FAILED, attempt=attempt, reason=why)

    def _set(
        self,
        name: str,
        state: TaskState,
        *,
        reason: str = "",
        attempt: Attempt | None = None,
        next_attempt_at: float | None = None,
        reused_from: str | None = None,
    ) -> None:
        current = self.tasks[name]
        attempts = self._with(current.attempts, attempt) if attempt is not None else current.attempts
        self.tasks[name] = TaskInstance(name, state, attempts, reason, next_attempt_at, reused_from)
        self.store.set_task_state(
            self.job.id, name, state, reason=reason, next_attempt_at=next_attempt_at, reused_from=reused_from
        )
        change = Change(name, self.tasks[name], reason)
        if self._held is not None:
            self._held.append(change)
        else:
            self.on_change(change)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """The store's writes inside as one transaction; whoever shows progress hears of them once it committed
        (and not at all when it rolled back)."""
        self._held = []
        try:
            with self.store.batch():
                yield
            held = self._held
        finally:
            self._held = None
        for change in held:
            self.on_change(change)

    @staticmethod
    def _with(attempts: tuple[Attempt, ...], attempt: Attempt) -> tuple[Attempt, ...]:
        return tuple(a for a in attempts if a.number != attempt.number) + (attempt,)
