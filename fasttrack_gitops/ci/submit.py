"""`wait: false`: hand the selected pipelines to a running daemon (`fasttrack-gitops serve`) and return.

A job needs something to drive it to its end and report it; a step that
exits cannot, so without a daemon `wait: false` is a configuration error.
Each pipeline is a manual run through the daemon's POST /api/trigger,
with a request id made of the workflow run's id, so re-sending the same
step makes no second job (a re-run of the workflow, a new attempt, does).
"""

from __future__ import annotations

from collections.abc import Sequence

from fasttrack_gitops.ci.runner_env import RunnerContext
from fasttrack_gitops.ci.summary import Submitted
from fasttrack_gitops.core.triggers import Selection

NEEDS_DAEMON = (
    "`wait: false` needs `daemon-url`: a job must be driven to its end and reported after this step "
    "exits, which only a running `fasttrack-gitops serve` does; give its address, or leave `wait` true"
)


def request_id(ctx: RunnerContext, pipeline: str) -> str:
    """One job per pipeline per workflow run attempt, however often the request is sent."""
    attempt = "" if ctx.run_attempt in ("", "1") else f"-{ctx.run_attempt}"
    return f"{ctx.run_id}{attempt}-{pipeline}"


def submit(
    selections: Sequence[Selection], *, ctx: RunnerContext, commit: str, daemon_url: str, api_token: str | None
) -> list[Submitted]:
    """Trigger each selection on the daemon; what it made of each (a refusal to make a job is the Submitted's
    `error`). DaemonError (a UsageError) when the daemon cannot be used at all (unreachable, not a daemon,
    refused)."""
    from fasttrack_gitops.engine.daemon_client import trigger

    made = []
    for s in selections:
        triggered = trigger(
            daemon_url,
            repository=ctx.repository,
            pipeline=s.path,
            ref=commit,
            request_id=request_id(ctx, s.name),
            sender=ctx.actor or "github-actions",
            api_token=api_token,
            params=s.trigger.get("params"),
            where="the daemon-url input",
        )
        if triggered.made:
            made.append(Submitted(s.name, s.path, triggered.jobs))
        else:  # the pipeline is not there, or not valid, at the commit the daemon read
            made.append(Submitted(s.name, s.path, (), error=f"the daemon made no job: {triggered.message}"))
    return made
