"""The daemon's gc on a schedule: its `retention:` section, every `interval`, beside the other clocks (follow.py).

The first collection runs FIRST_DELAY after the start (a daemon that
restarts more often than its interval still collects), then one every
interval. Each runs engine/gc.py in a worker thread, with a store
connection of its own (a connection belongs to one thread), so the loop
never waits for the disk; then, with the Backend.AI executor, the collected
jobs' folders in the pipeline data folders go (engine/gc_vfolders.py). A
failed collection is logged and tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.render.retention import human_size
from fasttrack_gitops.core.retention import RetentionPolicy
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.engine.gc import Collection, collect

log = logging.getLogger("fasttrack_gitops.daemon")

FIRST_DELAY = 60.0  # seconds after the start: not while the daemon re-attaches to its jobs


async def collect_forever(config: DaemonConfig, stop: asyncio.Event, *, first_delay: float | None = None) -> None:
    """Collect every retention.interval until `stop` is set; nothing at all without a limit."""
    policy = config.retention
    if not policy.limited:
        return
    delay = FIRST_DELAY if first_delay is None else first_delay
    while not await _stopped(stop, delay):
        try:
            await collect_once(config, policy)
        except FastTrackError as e:
            log.warning("gc: %s (next try in %.0fs)", e, policy.interval)
        except Exception:  # a bug must not stop the daemon, nor its next collection
            log.exception("gc failed (next try in %.0fs)", policy.interval)
        delay = policy.interval


async def collect_once(config: DaemonConfig, policy: RetentionPolicy) -> Collection:
    """One collection of the daemon's state folder (and its Backend.AI folders); logged in one line."""
    done = await asyncio.to_thread(_collect, config, policy)
    if config.executor == "backendai" and config.backendai is not None and done.collected:
        await _backendai(config, done)
    if done.items or done.problems:
        log.info(
            "gc: removed %d job(s) and %d other item(s), freed %s in %.1fs%s",
            len(done.jobs),
            len(done.items) - len(done.jobs),
            human_size(done.freed),
            done.seconds,
            f"; could not remove: {'; '.join(done.problems)}" if done.problems else "",
        )
    return done


def _collect(config: DaemonConfig, policy: RetentionPolicy) -> Collection:
    from fasttrack_gitops.engine.state.store import Store

    with Store(config.state_dir) as store:
        return collect(store, policy)


async def _backendai(config: DaemonConfig, done: Collection) -> None:
    from fasttrack_gitops.engine.backendai.client import Client
    from fasttrack_gitops.engine.backendai.credentials import Credentials
    from fasttrack_gitops.engine.gc_vfolders import collect_folders

    assert config.backendai is not None
    credentials = Credentials.from_env(
        {
            "BACKEND_ENDPOINT": config.backendai.endpoint,
            "BACKEND_ACCESS_KEY": config.backendai.access_key,
            "BACKEND_SECRET_KEY": config.backendai.secret_key,
        }
    )
    client = Client(credentials)
    try:
        await collect_folders(client, done)
    finally:
        await client.aclose()


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`; whether `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        return False
    return True
