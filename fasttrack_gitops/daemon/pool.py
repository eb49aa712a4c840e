"""The running half of the daemon: queued jobs started as slots allow, driven to their end, taken over after a
restart, interrupted on shutdown. `Daemon` (service.py) is a JobPool that also turns events into jobs.

Dispatch rules are pure (dispatch.py); this is where they meet the store,
the runners and the executor. A job that cannot start (a secret missing, its
repository gone from the configuration) ends failed before it takes a slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import ENDED, JobStatus, Outcome, TaskState
from fasttrack_gitops.core.taskenv import referenced_secrets
from fasttrack_gitops.daemon import dispatch
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.daemon.metrics import Metrics
from fasttrack_gitops.engine.launch import Workdirs, reused_tasks
from fasttrack_gitops.engine.plan import snapshot_at
from fasttrack_gitops.engine.runner import Change, JobRunner
from fasttrack_gitops.engine.state.ledger import Ledger
from fasttrack_gitops.engine.state.outbox import Outbox
from fasttrack_gitops.engine.state.store import Store

log = logging.getLogger("fasttrack_gitops.daemon")


class JobPool:
    def __init__(
        self, config: DaemonConfig, store: Store, ledger: Ledger, metrics: Metrics, executor, secrets: dict[str, str]
    ):
        self.config = config
        self.store = store
        self.ledger = ledger
        self.metrics = metrics
        self.executor = executor
        self.secrets = secrets
        self.runners: dict[str, JobRunner] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self.draining = False
        self._stopping = ""  # set by drain() once running jobs are interrupted: why
        self.outbox = Outbox(store)
        self.reporter_names: tuple[str, ...] = ()  # set when reporters are configured (app.py)
        self.wake_reporters: Callable[[], None] = lambda: None

    def report(self, job_id: str, *, final: bool = False) -> None:
        """Tell the reporters that the job changed; the outbox keeps it until each has sent it."""
        if self.reporter_names:
            self.outbox.mark(job_id, self.reporter_names, final=final)
            self.wake_reporters()

    def repository(self, name: str):
        """(RepositoryConfig, RepoSource) of a configured repository, or None (the Daemon knows them)."""
        raise NotImplementedError

    async def dispatch_forever(self) -> None:
        """Start queued jobs whenever a slot frees or a job is queued."""
        while not self.draining:
            self._wake.clear()
            for job_id in dispatch.startable(self.ledger.open_queue(), limit=self.config.max_running_jobs):
                if self.draining:
                    break
                self._start(job_id)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)
            except asyncio.TimeoutError:
                pass

    def _start(self, job_id: str, *, resume: bool = False) -> None:
        if not resume:  # a job that cannot start ends before it is marked started: it never holds a slot
            job = self.store.job(job_id)
            missing = [n for n in referenced_secrets(job.pipeline_model()) if n not in self.secrets]
            problem = (
                f"secret {missing[0]} is not given to the daemon: set FTG_SECRET_{missing[0]} in its environment"
                if missing
                else ""
            )
            if not problem and self.repository(job.repository) is None:
                problem = f"repository {job.repository} is no longer configured"
            if problem:
                self.ledger.end_unstarted(job_id, problem, TaskState.FAILED)
                self.report(job_id, final=True)
                self.metrics.jobs_finished[str(JobStatus.FAILED)] += 1
                self._wake.set()  # the next queued job may have its slot
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
            self.runners.pop(job_id, None)
            self._tasks.pop(job_id, None)
            try:  # a job that ended, during a drain too, is done; an interrupted one waits for the next start
                view = self.store.view(job_id)
                if view.status not in (JobStatus.RUNNING, JobStatus.PENDING, JobStatus.INTERRUPTED):
                    self.ledger.mark_done(job_id)
                    self.report(job_id, final=True)
                    self.metrics.jobs_finished[str(view.status)] += 1
            except FastTrackError as e:
                log.error("job %s: %s", job_id, e)
            self._wake.set()

    async def _drive(self, job_id: str, *, resume: bool) -> None:
        job = self.store.job(job_id)
        found = self.repository(job.repository)
        try:
            if found is None:  # taken over after a restart whose configuration dropped the repository
                raise FastTrackError(f"repository {job.repository} is no longer configured")
            workdir = Workdirs(self.store, job, await asyncio.to_thread(snapshot_at, found[1], job.commit, job.ref))
        except FastTrackError as e:  # e.g. the commit is gone: its tasks cannot start, the runner records why
            problem = e

            def workdir(task: str):
                raise problem

        if self._stopping:  # the drain began while the job was being set up: the next start takes it over
            return
        initial = {}
        if job.trigger.get("failed_only") and job.rerun_of:  # copies outputs: in a thread, the store for paths only
            initial = await asyncio.to_thread(reused_tasks, self.store, self.store.view(job.rerun_of), job)
        runner = JobRunner(
            job,
            self.store,
            self.executor,
            workdir=workdir,
            secrets=self.secrets,
            initial=initial,
            resume=resume,
            on_change=lambda change: self._observe(job_id, change),
        )
        self.runners[job_id] = runner
        await runner.run()

    def _observe(self, job_id: str, change: Change) -> None:
        self.report(job_id)
        instance = change.instance
        if instance.state in ENDED and instance.duration is not None:
            self.metrics.task_ended(self.config.executor, instance.duration)
        if instance.attempts and instance.attempts[-1].outcome == Outcome.ERROR:
            self.metrics.executor_errors[self.config.executor] += 1

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
        self._wake.set()
        running = list(self._tasks.values())
        if running:
            log.info("draining: waiting up to %gs for %d running job(s)", grace, len(running))
            await asyncio.wait(running, timeout=grace)
        # Set before interrupting: a job still being set up (no runner yet) sees it and does not start.
        self._stopping = f"the daemon stopped ({signal_name}) before the task ended"
        for runner in list(self.runners.values()):
            runner.interrupt(self._stopping)
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def jobs_by_status(self) -> dict[str, int]:
        counts = {"queued": 0, "running": 0}
        for entry in self.ledger.open_queue():
            counts["running" if entry.started_at is not None else "queued"] += 1
        return counts
