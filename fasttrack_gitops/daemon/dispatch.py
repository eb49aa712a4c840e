"""Which queued jobs start now, and which a new job supersedes. Pure.

Rules: at most `limit` jobs run at once (the config's max_running_jobs);
jobs of one concurrency group run one at a time, oldest first; a job whose
group says cancel_in_progress supersedes every older open job of its group
(queued ones never start, running ones are cancelled; both stay in history).
"""

from __future__ import annotations

from collections.abc import Sequence

from fasttrack_gitops.engine.state.ledger import Queued


def startable(entries: Sequence[Queued], *, limit: int) -> list[str]:
    """Ids of the queued jobs to start now, oldest first, given every open queue entry."""
    running = [e for e in entries if e.started_at is not None]
    busy = {e.group for e in running if e.group}
    slots = limit - len(running)
    picked: list[str] = []
    for entry in sorted((e for e in entries if e.started_at is None), key=lambda e: (e.queued_at, e.job_id)):
        if slots <= 0:
            break
        if entry.group and entry.group in busy:
            continue
        picked.append(entry.job_id)
        slots -= 1
        if entry.group:
            busy.add(entry.group)
    return picked


def superseded(entries: Sequence[Queued], newer: Queued) -> list[Queued]:
    """The open jobs a newly queued one replaces (none unless its group cancels in progress)."""
    if not newer.group or not newer.cancel_in_progress:
        return []
    return [
        e
        for e in entries
        if e.group == newer.group
        and e.job_id != newer.job_id
        and (e.queued_at, e.job_id) < (newer.queued_at, newer.job_id)
    ]
