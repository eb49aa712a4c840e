"""The daemon's job slots: queued jobs launched as slots allow, cancelled, resumed after a restart, drained on stop.

Dispatch rules are pure (dispatch.py) and setting a job up to run is
engine/launch.py's; this is where they meet the ledger. A job that cannot
start (a secret missing, its repository gone from the configuration) ends
failed before it takes a slot. The pool knows the configured repositories and
the reporters only through what the daemon (service.py) hands it: a
repository lookup and a report marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import ENDED, JobStatus, Outcome, TaskState
from fasttrack_gitops.core.taskenv import referenced_secrets
from fasttrack_gitops.daemon import dispatch
from fasttrack_gitops.daemon.config import DaemonConfig, RepositoryConfig
from fasttrack_gitops.daemon.forecasts import plan_queued
from fasttrack_gitops.daemon.metrics import Metrics
from fasttrack_gitops.engine.executors.base import Executor
from fasttrack_gitops.engine.launch import Launch
from fasttrack_gitops.engine.plan import RepoSource, snapshot_at
from fasttrack_gitops.engine.runner import Change
from fasttrack_gitops.engine.state.ledger import Ledger, Queued
from fasttrack_gitops.engine.state.store import Store

log = logging.getLogger("fasttrack_gitops.daemon")

QUIET_WAIT = 1.0  # seconds a queued job may wait for the events being handled to be answered

# A configured repository by name: (its configuration, where its commits are read), or None.
RepositoryLookup = Callable[[str], "tuple[RepositoryConfig, RepoSource] | None"]
# report(job_id, final=False): tell the reporters that the job changed.
ReportMarker = Callable[..., None]


class JobPool:
    """The slots where the daemon's jobs run; the daemon (service.py) owns one."""

    def __init__(
        self,
        config: DaemonConfig,
        store: Store,
        ledger: Ledger,
        metrics: Metrics,
        executor: Executor,
        secrets: dict[str, str],
        *,
        find_repository: RepositoryLookup,
        report: ReportMarker,
        on_change: Callable[[str, Change], None] = lambda job_id, change: None,
        quiet: asyncio.Event | None = None,
    ):
        self.config = config
        self.store = store
        self.ledger = ledger
        self.metrics = metrics
        self.executor = executor
        self.secrets = secrets
        self.find_repository = find_repository
        self.report = report
        self.on_change = on_change  # every task change, as it happens (the console's live events)
        self.quiet = quiet  # set while no event is being handled: jobs start after a burst is answered
        self.launches: dict[str, Launch] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._planning: set[asyncio.Task] = set()  # plans of queued jobs being worked out (forecasts.py)
        self._wake = asyncio.Event()
        self.draining = False
        self._stopping = ""  # set by drain() once running jobs are interrupted: why

    def wake(self) -> None:
        """A job was queued or a slot freed: look for a job to start now."""
        self._wake.set()

    async def dispatch_forever(self) -> None:
        """Start queued jobs whenever a slot frees or a job is queued."""
        while not self.draining:
            self._wake.clear()
            if self.quiet is not None:  # a burst of webhooks first (within QUIET_WAIT: a stream never starves jobs)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.quiet.wait(), timeout=QUIET_WAIT)
            for job_id in dispatch.startable(self.ledger.open_queue(), limit=self.config.max_running_jobs):
                if self.draining:
                    break
                self._start(job_id)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)
            except asyncio.TimeoutError:
                pass

    def plan(self, job_id: str) -> None:
        """Work out a newly queued job's plan in the background; its reports show it once known."""
        task = asyncio.get_running_loop().create_task(self._plan(job_id))
        self._planning.add(task)
        task.add_done_callback(self._planning.discard)

    async def _plan(self, job_id: str) -> None:
        try:
            if await plan_queued(job_id, self.store, self.executor, self.find_repository):
                self.report(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a plan is a courtesy: whatever stops it, the job runs as it would without one
            log.warning("job %s: no plan for its reports: %s", job_id, e)

    def _start(self, job_id: str, *, resume: bool = False) -> None:
        if not resume:  # a job that cannot start ends before it is marked started: it never holds a slot
            job = self.store.job(job_id)
            missing = [n for n in referenced_secrets(job.pipeline_model()) if n not in self.secrets]
            problem = (
                f"secret {missing[0]} is not given to the daemon: set FTG_SECRET_{missing[0]} in its environment"
                if missing
                else ""
            )
            if not problem and self.find_repository(job.repository) is None:
                problem = f"repository {job.repository} is no longer configured"
            if problem:
                self.ledger.end_unstarted(job_id, problem, TaskState.FAILED)
                self.report(job_id, final=True)
                self.metrics.jobs_finished[str(JobStatus.FAILED)] += 1
                self.wake()  # the next queued job may have its slot
                return
        self.ledger.mark_started(job_id)
        self._tasks[job_id] = asyncio.create_task(self._run(job_id, resume=resume))

    async def _run(self, job_id: str, *, resume: bool) -> None:
        try:
            await self._drive(job_id, resume=resume)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug or an unusable store must not take the daemon down with it
            log.exception("job %s: %s", job_id, e)
        finally:
            self.launches.pop(job_id, None)
            self._tasks.pop(job_id, None)
            try:  # a job that ended, during a drain too, is done; an interrupted one waits for the next start
                view = self.store.view(job_id)
                if view.status not in (JobStatus.RUNNING, JobStatus.PENDING, JobStatus.INTERRUPTED):
                    self.ledger.mark_done(job_id)
                    self.report(job_id, final=True)
                    self.metrics.jobs_finished[str(view.status)] += 1
            except FastTrackError as e:
                log.error("job %s: %s", job_id, e)
            self.wake()

    async def _drive(self, job_id: str, *, resume: bool) -> None:
        job = self.store.job(job_id)
        found = self.find_repository(job.repository)
        source, unreadable = None, None
        try:
            if found is None:  # taken over after a restart whose configuration dropped the repository
                raise FastTrackError(f"repository {job.repository} is no longer configured")
            source = await asyncio.to_thread(snapshot_at, found[1], job.commit, job.ref)
        except FastTrackError as e:  # e.g. the commit is gone: its tasks cannot start, the runner records why
            unreadable = e
        if self._stopping:  # the drain began while the job was being set up: the next start takes it over
            return
        launch = Launch(
            job,
            self.store,
            self.executor,
            source=source,
            unreadable=unreadable,
            secrets=self.secrets,
            failed_only=bool(job.trigger.get("failed_only")),
            resume=resume,
            on_change=lambda change: self._observe(job_id, change),
        )
        self.launches[job_id] = launch
        await launch.run()

    def _observe(self, job_id: str, change: Change) -> None:
        self.on_change(job_id, change)
        self.report(job_id)
        instance = change.instance
        if instance.state in ENDED and instance.duration is not None:
            self.metrics.task_ended(self.config.executor, instance.duration)
        if instance.attempts and instance.attempts[-1].outcome == Outcome.ERROR:
            self.metrics.executor_errors[self.config.executor] += 1

    # -- cancelling

    def cancel(self, entry: Queued, reason: str) -> None:
        """Cancel an open job: a queued one ends now with the reason, a running one is asked to stop."""
        if entry.started_at is None:
            self.ledger.end_unstarted(entry.job_id, reason)
            self.report(entry.job_id, final=True)
        else:
            self.store.request_cancel(entry.job_id)
            launch = self.launches.get(entry.job_id)
            if launch is not None:
                launch.cancel()

    def supersede(self, job_id: str) -> None:
        """Cancel the open jobs that a newly queued one replaces (its concurrency group cancels in progress)."""
        entries = self.ledger.open_queue()
        newer = next((e for e in entries if e.job_id == job_id), None)
        if newer is None:
            return
        for old in dispatch.superseded(entries, newer):
            self.cancel(old, f"superseded by job {job_id} (concurrency group {newer.group})")

    # -- restart and shutdown

    def recover(self) -> list[str]:
        """After a restart: re-attach to the jobs that were running (their runner died with the daemon)."""
        resumed = []
        for entry in self.ledger.open_queue():
            if entry.started_at is None:
                continue  # still queued: the dispatcher starts it
            view = self.store.view(entry.job_id)
            if view.runner_alive:
                continue  # another process drives it (should not happen; never start anything twice)
            if all(i.ended for i in view.tasks.values()):
                self.ledger.mark_done(entry.job_id)
                continue
            self._start(entry.job_id, resume=True)
            resumed.append(entry.job_id)
        return resumed

    async def drain(self, grace: float, *, signal_name: str = "SIGTERM") -> None:
        """SIGTERM: start nothing new, give running jobs `grace` seconds, then interrupt the rest.

        An interrupted job keeps its task instances open (its attempts end
        INTERRUPTED); the next start takes it over (recover).
        """
        self.draining = True
        self.wake()
        for planning in list(self._planning):
            planning.cancel()
        running = list(self._tasks.values())
        if running:
            log.info("draining: waiting up to %gs for %d running job(s)", grace, len(running))
            await asyncio.wait(running, timeout=grace)
        # Set before interrupting: a job still being set up (no runner yet) sees it and does not start.
        self._stopping = f"the daemon stopped ({signal_name}) before the task ended"
        for launch in list(self.launches.values()):
            launch.interrupt(self._stopping)
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def driving(self, job_id: str) -> bool:
        """Whether this process drives the job now (set up or running), whatever its runner lock says yet."""
        return job_id in self._tasks

    def jobs_by_status(self) -> dict[str, int]:
        queued, running = self.ledger.open_counts()
        return {"queued": queued, "running": running}
