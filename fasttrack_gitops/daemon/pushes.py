"""A push read from git: in one worker thread with its repository opened once, and ahead of its turn.

The daemon (service.py) handles one event of a repository at a time, so that
positions and gates stay consistent; reading the pushed commit changes
nothing, so a burst's pushes read side by side and only their stores wait in
line. Everything a push needs from git is one call here: is the commit there,
the pipelines at it (checked), the files it changed, which pipelines it
selects, and their jobs planned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.events import Event, Push
from fasttrack_gitops.daemon.config import RepositoryConfig
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.plan import Pipelines, Planned, RepoSource, pipelines_at, plan, plan_invalid

# What a push read from git: the pipelines at its commit, those it selects, their jobs planned; None when the
# commit is not in the repository.
PushRead = tuple[Pipelines, list[triggers.Selection], list[Planned]] | None


def read_ahead(
    repo: RepositoryConfig, source: RepoSource, event: Event, extra: Mapping
) -> asyncio.Future[PushRead] | None:
    """A push's git reads, started before its turn under the repository's lock: the pushes of a burst read
    their commits side by side (reading changes nothing), then are stored one at a time in arrival order (the
    lock's waiters are served first come, first served), so each waits for the stores before it, not the reads."""
    if not isinstance(event, Push) or event.deleted:
        return None
    ahead = asyncio.ensure_future(asyncio.to_thread(read_push, source, event, repo.branches, extra))
    ahead.add_done_callback(lambda done: done.cancelled() or done.exception())  # raised where it is awaited
    return ahead


def read_push(source: RepoSource, push: Push, follow_branches: tuple[str, ...], extra: Mapping) -> PushRead:
    """Everything a push needs from git, in one worker thread with the repository opened once (not five
    hops and five opens; kept open by the thread for its next push): the pipelines at its commit, the files it changed, which pipelines it selects, and
    their jobs planned (an invalid file's too). None when the commit is not in the repository."""
    with gitrepo.held_open(keep=True):  # and open for the next push this worker thread reads
        if not gitrepo.has_commit(source.top, push.after):
            return None
        return _plan_held_push(source, push, follow_branches, extra)


def _plan_held_push(
    source: RepoSource, push: Push, follow_branches: tuple[str, ...], extra: Mapping
) -> tuple[Pipelines, list[triggers.Selection], list[Planned]]:
    pipes = pipelines_at(source, push.after)
    default = push.default_branch or gitrepo.default_branch(source.top)
    changed = gitrepo.push_changes(
        source.top, push, prefix=source.prefix, default_ref=f"refs/heads/{default}" if default else None
    )
    selections = triggers.select_push(pipes.candidates, push, changed=changed, follow_branches=follow_branches)
    trigger = {"event": "push", "ref": push.ref, "before": push.before, "after": push.after, "sender": push.sender}
    planned = plan(source, pipes, selections, ref=push.ref, trigger_extra=extra)
    return pipes, selections, planned + plan_invalid(source, pipes, ref=push.ref, trigger=trigger, trigger_extra=extra)
