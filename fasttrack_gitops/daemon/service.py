"""The daemon's core: events in, jobs out, jobs run; one asyncio loop, one store connection.

Every source of events (webhooks, watchers, pollers, the clock, `trigger`)
calls `Daemon.handle(event)`. Handling reads the repository at the commit in
a worker thread (engine/plan.py), asks triggers.py which pipelines run, and
stores each job under its idempotency key in one transaction (ledger.py):
however often a commit is reported, it makes one job per pipeline and
trigger. Running them is the other half, the daemon's JobPool (pool.py):
the dispatcher, restarts (`recover()`) and SIGTERM (`drain()`). The
configured repositories, and fetching them, are repositories.py's.

Nothing that waits for the disk runs on the loop: git reads and planning
go to worker threads, and so do a task's code tree and its copy (runner.py).
The SQLite writes (store, ledger, outbox) stay on the loop, on its one
connection: bench/eventloop_bench.py times them at p50 0.02 ms (add_job
0.1 ms) and p99 0.2-0.5 ms; about one in 200 takes 1-10 ms (SQLite's WAL
checkpoint, or the machine's other load). A hop to a thread costs more than
the typical write, and would need a connection per thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.events import Comment, Event, Manual, PullRequest, Push, Rerequest, Tick
from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.core.taskenv import masks, secrets_from_environ
from fasttrack_gitops.daemon.coalesce import Bursts
from fasttrack_gitops.daemon.comments import handle_comment
from fasttrack_gitops.daemon.config import DaemonConfig, RepositoryConfig
from fasttrack_gitops.daemon.handled import Handled, refused_params, selection_note, with_trigger
from fasttrack_gitops.daemon.live import LiveEvents
from fasttrack_gitops.daemon.metrics import Metrics
from fasttrack_gitops.daemon.pool import JobPool
from fasttrack_gitops.daemon.pushes import PushRead, read_ahead, read_push
from fasttrack_gitops.daemon.reports import gate_id
from fasttrack_gitops.daemon.repositories import Repositories
from fasttrack_gitops.daemon.sources import FetchError
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.cache.job_cache import NO_CACHE_TRIGGER
from fasttrack_gitops.engine.plan import (
    Planned,
    RepoSource,
    default_head,
    pipelines_at,
    plan,
    plan_invalid,
    rerun_job,
)
from fasttrack_gitops.engine.state.errors import StoreError
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.outbox import Outbox
from fasttrack_gitops.engine.state.store import Store

log = logging.getLogger("fasttrack_gitops.daemon")

CHECK_PREFIX = "fasttrack/"  # our check runs are named fasttrack/<pipeline>


class Daemon:
    """Events in (this module), jobs run in its pool (pool.py)."""

    def __init__(self, config: DaemonConfig, *, executor=None, environ: Mapping[str, str] | None = None):
        self.config = config
        self.store = Store(config.state_dir)
        self.ledger = Ledger(self.store)
        self.metrics = Metrics()
        self.outbox = Outbox(self.store)
        self.secrets = secrets_from_environ(os.environ if environ is None else environ)
        self.reporter_names: tuple[str, ...] = ()  # set when reporters are configured (app.py)
        self.wake_reporters: Callable[[], None] = lambda: None
        self.repositories = Repositories(config, self.metrics)
        self.bursts = Bursts(self._still_stored, plan=lambda job_id: self.pool.plan(job_id))
        self.live = LiveEvents(job_status=lambda job_id: str(self.shown_status(self.store.view(job_id))))
        self.pool = JobPool(
            config,
            self.store,
            self.ledger,
            self.metrics,
            executor,
            self.secrets,
            find_repository=self.repositories.find,
            report=self.report,
            on_change=lambda job_id, change: self.live.task_changed(job_id, change.task, change.instance),
            quiet=self.bursts.quiet,
        )
        self._locks: dict[str, asyncio.Lock] = {}  # one event of a repository at a time

    def report(self, job_id: str, *, final: bool = False) -> None:
        """Tell the reporters that the job changed (the outbox keeps it until each has sent it), and the console."""
        self.live.job_changed(job_id)
        if self.reporter_names:
            self.outbox.mark(job_id, self.reporter_names, final=final)
            self.wake_reporters()

    # -- events in

    async def handle(self, event: Event, *, delivery: str = "", installation: int | None = None) -> Handled:
        """Turn one event into jobs; never raises for a problem of the repository or the event.

        `installation` (a GitHub App's, from the webhook) goes into the jobs' trigger records, so the
        reporters authenticate as it without looking it up. Identical deliveries share one handling (coalesce.py).
        """
        extra = {"installation": installation} if installation else {}
        return await self.bursts.handle(event, lambda: self._handle(event, delivery, extra))

    def _still_stored(self, push: Push, known: Handled) -> bool:
        """Whether the jobs a push made are all still in the store (retention removes old ones)."""
        found = self.repositories.find(push.repository)
        if found is None:
            return False
        try:
            return set(known.jobs) <= set(self.ledger.jobs_of(found[0].name, commit=push.after))
        except StoreError:  # the handling this falls back to says so
            return False

    async def _handle(self, event: Event, delivery: str, extra: Mapping) -> Handled:
        found = self.repositories.find(event.repository)
        if found is None:
            return Handled(note=f"repository {event.repository} is not configured here; nothing to do")
        repo, source = found
        lock = self._locks.setdefault(repo.name.lower(), asyncio.Lock())
        ahead = read_ahead(repo, source, event, extra)
        try:
            async with lock:  # one event of a repository at a time: positions and gates stay consistent
                handled = await self._dispatch_event(repo, source, event, delivery, extra, ahead)
        except StoreError as e:  # the state database refused (locked, full): nothing was decided
            log.error("%s: %s", repo.name, e)
            note = f"{repo.name}: the daemon's state cannot be written now; deliver again"
            handled = Handled(note=note, failed=True, unavailable=True)
        except FastTrackError as e:  # an unreadable repository or commit: logged, the daemon goes on
            handled = Handled(note=f"{repo.name}: {e}")
        except Exception as e:  # a bug must cost one event, never the daemon
            log.exception("%s: cannot handle %s", repo.name, type(event).__name__)
            handled = Handled(
                note=f"{repo.name}: internal error handling the event: {type(e).__name__}: {e}", failed=True
            )
        if handled.created:
            self.pool.wake()
        log.info("%s: %s%s", repo.name, handled.note, f" (jobs: {', '.join(handled.jobs)})" if handled.jobs else "")
        return handled

    async def _dispatch_event(
        self,
        repo: RepositoryConfig,
        source: RepoSource,
        event: Event,
        delivery: str,
        extra: Mapping,
        ahead: asyncio.Future[PushRead] | None = None,
    ) -> Handled:
        """Handle the event; `extra` are the delivery's facts every job it makes records in its trigger."""
        if isinstance(event, Push):
            return await self._push(repo, source, event, extra, ahead)
        if isinstance(event, PullRequest):
            return await self._pull_request(repo, source, event, extra)
        if isinstance(event, Comment):
            return await handle_comment(self, repo, source, event, delivery, extra)
        if isinstance(event, Rerequest):
            return await self._rerequest(repo, event, delivery, extra)
        if isinstance(event, Tick):
            return await self._tick(repo, source, event, extra)
        if isinstance(event, Manual):
            return await self._manual(repo, source, event, extra)
        return Handled(note=f"unsupported event {type(event).__name__}")

    async def _push(
        self,
        repo: RepositoryConfig,
        source: RepoSource,
        push: Push,
        extra: Mapping,
        ahead: asyncio.Future[PushRead] | None = None,
    ) -> Handled:
        if push.deleted:
            self.ledger.set_positions(repo.name, [(push.ref, None)])
            return Handled(note=f"{push.ref} was deleted; nothing to run")
        read = await (ahead or asyncio.to_thread(read_push, source, push, repo.branches, extra))
        if read is None and repo.local_path is None and await self.repositories.has(repo, source, push.after):
            read = await asyncio.to_thread(read_push, source, push, repo.branches, extra)  # fetched just now
        if read is None:
            return Handled(
                note=f"commit {push.after[:12]} of {push.ref} is not in the repository (force-pushed "
                "away, or not fetched); nothing to run"
            )
        self.metrics.commits_read[repo.name] += 1
        pipes, selections, planned = read
        handled = self.store_planned(planned)
        self.ledger.set_positions(repo.name, [(push.ref, push.after)])
        handled.note = selection_note(f"push to {push.ref} at {push.after[:12]}", selections, pipes)
        return handled

    async def _pull_request(
        self,
        repo: RepositoryConfig,
        source: RepoSource,
        pr: PullRequest,
        extra: Mapping,
        approved_by: str | None = None,
    ) -> Handled:
        if pr.from_fork and approved_by is None:
            if pr.action == "closed":
                return Handled(note=f"pull request #{pr.number} from a fork was closed; nothing to run")
            gate = self.ledger.gate(repo.name, pr.number, pr.head_sha)
            if gate is None or gate.approved_by is None:
                if self.ledger.hold(repo.name, pr.number, pr.head_sha, asdict(pr)):
                    self.report(gate_id(repo.name, pr.number, pr.head_sha))
                return Handled(
                    note=f"pull request #{pr.number} comes from the fork {pr.head_repository}: it runs "
                    "(with secrets) once a member comments /fasttrack ok-to-test"
                )
        if not await self.repositories.has(repo, source, pr.head_sha):
            return Handled(note=f"pull request #{pr.number}: head {pr.head_sha[:12]} cannot be fetched; nothing to run")
        pipes = await asyncio.to_thread(pipelines_at, source, pr.head_sha)
        known_base = bool(pr.base_sha) and await asyncio.to_thread(gitrepo.has_commit, source.top, pr.base_sha)
        base = pr.base_sha if known_base else f"refs/heads/{pr.base_ref}"  # GitLab sends no base sha
        changed = await asyncio.to_thread(gitrepo.pr_changes, source.top, base, pr.head_sha, prefix=source.prefix)
        selections = triggers.select_pull_request(pipes.candidates, pr, changed=changed)
        merge_base = await asyncio.to_thread(gitrepo.merge_base, source.top, base, pr.head_sha)
        if merge_base:  # where model results find their baseline (engine/plan.py base_commit)
            selections = [with_trigger(s, merge_base=merge_base) for s in selections]
        ref = f"refs/pull/{pr.number}/head"
        trigger = {
            "event": "pull_request",
            "number": pr.number,
            "action": pr.action,
            "head_sha": pr.head_sha,
            "fork": pr.from_fork,
        }
        if approved_by:
            selections = [with_trigger(s, approved_by=approved_by) for s in selections]
        handled = self.store_planned(
            await asyncio.to_thread(plan, source, pipes, selections, ref=ref, trigger_extra=extra)
            + plan_invalid(source, pipes, ref=ref, trigger=trigger, trigger_extra=extra)
        )
        handled.note = selection_note(
            f"pull request #{pr.number} ({pr.action}) at {pr.head_sha[:12]}", selections, pipes
        )
        return handled

    async def approve(
        self, repo: RepositoryConfig, source: RepoSource, number: int, by: str, extra: Mapping, head: str = ""
    ) -> Handled:
        """Run a fork's held pull request, approved by `by` (/fasttrack ok-to-test, or the console's button).

        `head` (a commit id or its prefix): the head the approver reviewed; when the fork has pushed since,
        nothing is approved (an approval must not cover a commit pushed while it was being written)."""
        newest = next(
            (g for g in self.ledger.gates(waiting_only=False) if (g.repository, g.number) == (repo.name, number)), None
        )
        if head and newest is not None and not newest.head_sha.startswith(head.lower()):
            return Handled(
                note=f"/fasttrack ok-to-test {head}: pull request #{number} is at {newest.head_sha[:12]} now; "
                "review that head, then approve it",
                refused=True,
            )
        gate = self.ledger.approve(repo.name, number, by)
        if gate is None:
            return Handled(note=f"/fasttrack ok-to-test: pull request #{number} is not waiting")
        self.report(gate_id(repo.name, gate.number, gate.head_sha), final=True)
        return await self._pull_request(repo, source, PullRequest(**gate.event), extra, approved_by=by)

    # -- the console's buttons (web/actions.py): what a comment command does, asked by a person on the page

    async def approve_fork(self, repository: str, number: int, by: str, head: str = "") -> Handled:
        found = self.repositories.find(repository)
        if found is None:
            return Handled(note=f"repository {repository} is not configured here; nothing to do")
        repo, source = found
        async with self._locks.setdefault(repo.name.lower(), asyncio.Lock()):
            handled = await self.approve(repo, source, number, by, {}, head)
        if handled.created:
            self.pool.wake()
        return handled

    def cancel_job(self, job_id: str, by: str) -> Handled:
        return self.cancel_jobs([job_id], f"cancelled by {by} (console)")

    def rerun_job(self, job_id: str, *, failed_only: bool, by: str, request: str) -> Handled:
        """A new job repeating this one (its failed tasks only, or all); `request` keys it (a repeated POST)."""
        details = {"by": by, "failed_only": failed_only, "command": "console"}
        handled = self.rerun([self.store.job(job_id)], f"console:{request}", details, {})
        if handled.created:
            self.pool.wake()
        return handled

    async def _rerequest(self, repo: RepositoryConfig, event: Rerequest, delivery: str, extra: Mapping) -> Handled:
        if event.check_name is not None and not event.check_name.startswith(CHECK_PREFIX):
            return Handled(note=f"check {event.check_name} is not ours")
        if event.external_id:
            try:
                jobs = [self.store.job(event.external_id)]
            except FastTrackError:
                return Handled(note=f"check {event.check_name}: job {event.external_id} is not known here")
        else:
            jobs = [
                v.job
                for v in self.latest_views(repo.name, event.head_sha)
                if event.check_name is None or CHECK_PREFIX + v.job.pipeline == event.check_name
            ]
        details = {"by": event.sender, "failed_only": event.failed_only}
        return self.rerun(jobs, f"rerequest:{delivery or time.time()}", details, extra)

    async def _tick(self, repo: RepositoryConfig, source: RepoSource, tick: Tick, extra: Mapping) -> Handled:
        ref, commit = await asyncio.to_thread(default_head, source)
        if commit is None:
            return Handled(note=f"schedule {tick.cron}: the default branch of {repo.name} has no commit")
        pipes = await asyncio.to_thread(pipelines_at, source, commit)
        selections = triggers.select_tick(pipes.candidates, tick)
        handled = self.store_planned(
            await asyncio.to_thread(plan, source, pipes, selections, ref=ref, trigger_extra=extra)
        )
        handled.note = f"schedule {tick.cron} of {tick.pipeline_path}"
        return handled

    async def _manual(self, repo: RepositoryConfig, source: RepoSource, manual: Manual, extra: Mapping) -> Handled:
        if repo.local_path is None:
            try:
                await self.repositories.refresh(repo)
            except FetchError as e:
                return Handled(note=str(e))
        commit, ref = await asyncio.to_thread(_resolve, source, manual.ref)
        pipes = await asyncio.to_thread(pipelines_at, source, commit)
        selections = triggers.select_manual(pipes.candidates, manual)
        if not selections:
            names = ", ".join(sorted(c.name for c in pipes.candidates)) or "none"
            return Handled(
                note=f"no valid pipeline {manual.pipeline} at {manual.ref} ({commit[:12]}); "
                f"valid pipelines there: {names}"
            )
        if refused := refused_params(pipes, selections):
            return refused
        if manual.no_cache:
            extra = {**extra, NO_CACHE_TRIGGER: True}
        handled = self.store_planned(
            await asyncio.to_thread(plan, source, pipes, selections, ref=ref, trigger_extra=extra)
        )
        handled.note = f"manual run of {manual.pipeline} at {manual.ref} by {manual.sender or 'someone'}"
        return handled

    # -- jobs stored

    def latest_views(self, repository: str, commit: str) -> list:
        """The newest job of each valid pipeline at the commit (re-runs included)."""
        latest: dict[str, object] = {}
        for job_id in self.ledger.jobs_of(repository, commit=commit):  # newest first
            view = self.store.view(job_id)
            if not view.job.invalid:
                latest.setdefault(view.job.pipeline_path, view)
        return list(latest.values())

    def store_planned(self, planned: list[Planned]) -> Handled:
        handled = Handled()
        for p in planned:
            job_id, created = self.ledger.add_job(p.key, p.job, group=p.group, cancel_in_progress=p.cancel_in_progress)
            handled.jobs.append(job_id)
            if created:
                handled.created.append(job_id)
                self.metrics.jobs_created[str(p.job.trigger.get("event", "?"))] += 1
                self.report(job_id, final=p.job.invalid)  # a queued check, or an invalid job's diagnostics
                if not p.job.invalid:
                    self.bursts.plan_later(job_id)  # what will run and be reused, shown in the check once worked out
                if p.group and p.cancel_in_progress:
                    self.pool.supersede(job_id)
        return handled

    def cancel_jobs(self, job_ids: list[str], reason: str) -> Handled:
        entries = {e.job_id: e for e in self.ledger.open_queue()}
        for job_id in job_ids:
            if job_id in entries:
                self.pool.cancel(entries[job_id], reason)
        return Handled(jobs=job_ids, note=f"{len(job_ids)} job(s) {reason}")

    def rerun(self, jobs: list, request: str, details: Mapping, extra: Mapping) -> Handled:
        """New jobs repeating these, keyed by the request; `details` say who asked, `extra` as in plan()."""
        planned = []
        for old in jobs:
            trigger = {"event": "rerun", "id": f"{request}:{old.id}", "of": old.id, **details}
            new = rerun_job(old, trigger={**trigger, **extra})
            planned.append(
                Planned(JobKey(old.repository, old.commit or "", old.pipeline_path, triggers.trigger_key(trigger)), new)
            )
        handled = self.store_planned(planned)
        handled.note = f"re-run of {len(jobs)} job(s)" if jobs else "nothing to re-run"
        return handled

    def shown_status(self, view) -> JobStatus:
        """The status people see: a job this daemon is still setting up (its code trees copied, its runner not
        started) is running, not `interrupted`, which the store derives from the runner lock nobody holds yet."""
        if view.status == JobStatus.INTERRUPTED and self.pool.driving(view.job.id):
            return JobStatus.RUNNING
        return view.status

    def masks(self) -> tuple[str, ...]:
        """Secret values to hide from logs and API answers."""
        return tuple(v for v in (*self.config.secret_values(), *masks(self.secrets, self.secrets)) if v)

    def close(self) -> None:
        self.store.close()


def _resolve(source: RepoSource, rev: str) -> tuple[str, str]:
    """A branch, tag or commit id in the repository -> (commit, full ref or the revision as given)."""
    return gitrepo.resolve_revision(source.top, rev)
