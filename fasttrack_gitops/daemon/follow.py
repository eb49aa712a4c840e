"""How the daemon notices commits without webhooks: watched local repositories, polled remote ones, the clock.

Each followed ref's last seen commit is kept in the ledger (positions), so
a scan after a restart sees what moved while the daemon was down, and a
commit that a webhook already reported is not reported again. The first
scan of a repository only records where its refs are: the daemon runs
what is pushed after it starts following, not the whole history.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.events import Tick
from fasttrack_gitops.core.pipeline.cron import latest_tick, next_tick, parse_cron
from fasttrack_gitops.daemon import retention
from fasttrack_gitops.daemon.config import RepositoryConfig
from fasttrack_gitops.daemon.service import Daemon
from fasttrack_gitops.daemon.sources import Backoff
from fasttrack_gitops.daemon.watching import branch_moves, watch_repository
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.plan import default_head, pipelines_at

log = logging.getLogger("fasttrack_gitops.daemon")

BASELINE = ""  # a positions row with this ref marks a repository whose refs have been recorded once
SCHEDULE_CHECK = 30.0  # seconds between looks for new or changed schedules


def followed_refs(repo: RepositoryConfig) -> tuple[str, ...]:
    """The refs a watch or a poll reports: the configured branches, and every tag (for on.push.tags)."""
    return (*(f"refs/heads/{b}" for b in repo.branches), "refs/tags/*")


async def scan(daemon: Daemon, repo: RepositoryConfig, *, sender: str) -> int:
    """Report every followed ref that moved since the last scan as a push; how many were reported."""
    source = daemon.repositories.sources[repo.name.lower()]
    now = await asyncio.to_thread(gitrepo.heads, source.top, followed_refs(repo))
    seen = daemon.ledger.positions(repo.name)
    if BASELINE not in seen:  # first sight: remember, do not run the past
        daemon.ledger.set_positions(repo.name, [(BASELINE, "-"), *now.items()])
        return 0
    seen = {ref: sha for ref, sha in seen.items() if ref != BASELINE and gitrepo.ref_matches(ref, followed_refs(repo))}
    default = await asyncio.to_thread(gitrepo.default_branch, source.top)
    moves = await asyncio.to_thread(
        branch_moves,
        seen,
        now,
        repo.name,
        sender=sender,
        default_branch=default,
        is_ancestor=lambda a, b: gitrepo.is_ancestor(source.top, a, b),
    )
    for push in moves:
        await daemon.handle(push)
    return len(moves)


async def poll(daemon: Daemon, repo: RepositoryConfig, stop: asyncio.Event) -> None:
    """Fetch (remote) and scan every poll_interval; back off while the repository cannot be reached."""
    interval = repo.poll_interval or 60.0
    backoff = Backoff(base=interval, maximum=max(600.0, interval))
    while not stop.is_set():
        try:
            await daemon.repositories.refresh(repo)
            await scan(daemon, repo, sender="poll")
        except Exception as e:  # unreachable, not a repository, a bug: log, try later; other repositories go on
            backoff.failed()
            delay = backoff.delay()
            if isinstance(e, FastTrackError):
                log.warning("%s: %s (next try in %.0fs)", repo.name, e, delay)
            else:
                log.exception("%s: polling failed (next try in %.0fs)", repo.name, delay)
        else:
            backoff.succeeded()
            delay = interval
        await _sleep(stop, delay)


async def watch(daemon: Daemon, repo: RepositoryConfig, stop: asyncio.Event) -> None:
    """Scan a local repository whenever its refs change (and once at the start, for what moved meanwhile)."""

    async def changed() -> None:
        try:
            await scan(daemon, repo, sender="watch")
        except FastTrackError as e:
            log.warning("%s: %s", repo.name, e)
        except Exception:  # a bug must not stop the watcher
            log.exception("%s: scanning after a change failed", repo.name)

    await changed()
    assert repo.local_path is not None  # the configuration refuses `watch` for a remote url (FT408)
    await watch_repository(repo.local_path, changed, stop=stop)


async def schedules(daemon: Daemon, stop: asyncio.Event, *, clock=time.time) -> None:
    """Run each pipeline's on.schedule ticks (of its default branch); after downtime a missed tick runs once.
    Beside them, on its own clock, gc as the retention section says (retention.py)."""
    collecting = asyncio.create_task(retention.collect_forever(daemon.config, stop))
    try:
        while not stop.is_set():
            wake = clock() + SCHEDULE_CHECK
            for repo in daemon.config.repositories:
                try:
                    wake = min(wake, await _due_ticks(daemon, repo, clock()))
                except FastTrackError as e:
                    log.warning("%s: schedules: %s", repo.name, e)
                except Exception:  # a bug in one repository's schedules must not stop the others'
                    log.exception("%s: schedules failed", repo.name)
            await _sleep(stop, max(0.5, wake - clock()))
    finally:
        collecting.cancel()


async def _due_ticks(daemon: Daemon, repo: RepositoryConfig, now: float) -> float:
    """Handle the ticks due in one repository; when the next one falls."""
    source = daemon.repositories.sources[repo.name.lower()]
    _, commit = await asyncio.to_thread(default_head, source)
    if commit is None:
        return float("inf")
    pipes = await asyncio.to_thread(pipelines_at, source, commit)
    wake = float("inf")
    for candidate in pipes.candidates:
        for item in (candidate.triggers or {}).get("schedule", []):
            cron = parse_cron(item["cron"])
            last = daemon.ledger.last_tick(repo.name, candidate.path, item["cron"])
            if last is None:  # a schedule seen for the first time counts from now
                daemon.ledger.set_tick(repo.name, candidate.path, item["cron"], now)
                last = now
            due = latest_tick(cron, last, now)
            if due is not None:
                await daemon.handle(Tick(repo.name, candidate.path, item["cron"], due))
                daemon.ledger.set_tick(repo.name, candidate.path, item["cron"], due)
                last = due
            try:
                wake = min(wake, next_tick(cron, max(last, now)))
            except ValueError:  # a schedule that never fires (30 February)
                pass
    return wake


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
