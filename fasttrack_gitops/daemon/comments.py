"""`/fasttrack` comment commands on a pull request: run [PIPELINE] [NAME=VALUE...], retest, cancel, ok-to-test [HEAD].

Only owners, members and collaborators may command (core/comment_commands.py
parses and decides that); what each command does is the daemon's own work,
asked for by a comment (the console's buttons ask for the same, daemon/web/actions.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.comment_commands import command_allowed, parse_command, run_arguments
from fasttrack_gitops.core.events import Comment
from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.core.pipeline.params import ParamError
from fasttrack_gitops.daemon.config import RepositoryConfig
from fasttrack_gitops.daemon.handled import Handled, refused_params
from fasttrack_gitops.engine.plan import RepoSource, pipelines_at, plan

if TYPE_CHECKING:
    from fasttrack_gitops.daemon.service import Daemon


async def handle_comment(
    daemon: Daemon, repo: RepositoryConfig, source: RepoSource, comment: Comment, delivery: str, extra: Mapping
) -> Handled:
    command = parse_command(comment.body)
    if command is None:
        return Handled(note=f"comment on #{comment.number} has no /fasttrack command")
    if not command_allowed(comment.author_association):
        return Handled(
            note=f"/fasttrack {command.verb} from {comment.author} refused: only owners, members and "
            f"collaborators may run commands (they are {comment.author_association or 'unknown'})"
        )
    if command.verb == "ok-to-test":  # `/fasttrack ok-to-test [HEAD]`: with HEAD, that commit only
        reviewed = command.argument or ""
        if reviewed and not re.fullmatch(r"[0-9a-fA-F]{7,40}", reviewed):
            return Handled(
                note=f"/fasttrack ok-to-test {reviewed[:60]}: give the head's commit id (7 to 40 hex digits)"
            )
        return await daemon.approve(repo, source, comment.number, comment.author, extra, reviewed)
    if command.verb == "cancel":
        return daemon.cancel_jobs(
            daemon.ledger.jobs_of(repo.name, trigger_prefix=f"pull_request:{comment.number}", open_only=True),
            f"cancelled by {comment.author} (/fasttrack cancel)",
        )
    if command.verb == "retest":
        head = await daemon.repositories.pr_head(repo, source, comment.number)
        if head is None:
            return Handled(note=f"/fasttrack retest: the head of #{comment.number} is not known")
        failed = [v.job for v in daemon.latest_views(repo.name, head) if v.status == JobStatus.FAILED]
        return daemon.rerun(failed, f"retest:{delivery}", {"by": comment.author, "command": "retest"}, extra)
    if command.verb == "run":
        head = await daemon.repositories.pr_head(repo, source, comment.number)
        if head is None or not await daemon.repositories.has(repo, source, head):
            return Handled(note=f"/fasttrack run: the head of #{comment.number} cannot be fetched")
        try:
            wanted, overrides = run_arguments(command.argument)
        except ParamError as e:
            return Handled(note=f"/fasttrack run: {e}", refused=True)
        pipes = await asyncio.to_thread(pipelines_at, source, head)
        chosen = [c for c in pipes.candidates if wanted in (None, c.name, c.path)]
        if not chosen:
            names = ", ".join(sorted(c.name for c in pipes.candidates)) or "none"
            return Handled(note=f"/fasttrack run: no valid pipeline {wanted} at {head[:12]}; valid: {names}")
        trigger = {
            "event": "comment",
            "id": delivery or str(time.time()),
            "command": "run",
            "number": comment.number,
            "by": comment.author,
            **({"params": overrides} if overrides else {}),
        }
        reason = f"/fasttrack run by {comment.author} on #{comment.number}"
        selections = [
            triggers.Selection(c.path, c.name, trigger, triggers.trigger_key(trigger), reason, c.concurrency)
            for c in chosen
        ]
        if refused := refused_params(pipes, selections, "/fasttrack run: "):
            return refused
        ref = f"refs/pull/{comment.number}/head"
        handled = daemon.store_planned(
            await asyncio.to_thread(plan, source, pipes, selections, ref=ref, trigger_extra=extra)
        )
        handled.note = reason
        return handled
    return Handled(
        note=f"unknown command /fasttrack {command.argument or ''}; known: run [PIPELINE], retest, cancel, ok-to-test"
    )
