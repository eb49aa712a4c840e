"""Which pipelines the workflow's event selects, and why each one was or was not. Pure.

push and pull_request are decided by the daemon's rules (`triggers.py`), so
a pipeline runs from the Action exactly when the daemon would run it. The
events the daemon never sees (workflow_dispatch, schedule, ...) select every
pipeline without `on` and every pipeline whose `on` lists the event
(workflow_dispatch is `on: manual`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.events import PullRequest, Push
from fasttrack_gitops.core.triggers import Candidate, Considered, Selection

# A workflow's event -> the key of `on` that asks for it.
ON_KEYS = {"workflow_dispatch": "manual", "schedule": "schedule"}


@dataclass(frozen=True)
class Choice:
    """What the event selects: every candidate's decision, the selections, and what a reader should know."""

    what: str  # "push to main", "pull request #3 into main (opened)", "workflow_dispatch"
    decisions: tuple[Considered, ...]
    selections: tuple[Selection, ...]
    changed: frozenset[str] | None = None  # the files the event changed; None when not known (or not asked)
    changes_unknown: bool = False  # path filters could not be applied: the history is not there


def for_push(
    candidates: Sequence[Candidate], push: Push, *, changed: Collection[str] | None, follow_branches: Sequence[str]
) -> Choice:
    kind, name = triggers.ref_kind(push.ref)
    decisions = triggers.explain_push(candidates, push, changed=changed, follow_branches=follow_branches)
    selections = triggers.select_push(candidates, push, changed=changed, follow_branches=follow_branches)
    return Choice(
        f"push to {name}" if kind == "branch" else f"push of {kind} {name}",
        tuple(decisions),
        tuple(selections),
        _frozen(changed),
        changed is None and _uses_paths(candidates, "push"),
    )


def for_pull_request(candidates: Sequence[Candidate], pr: PullRequest, *, changed: Collection[str] | None) -> Choice:
    decisions = triggers.explain_pull_request(candidates, pr, changed=changed)
    selections = triggers.select_pull_request(candidates, pr, changed=changed)
    return Choice(
        f"pull request #{pr.number} into {pr.base_ref} ({pr.action})",
        tuple(decisions),
        tuple(selections),
        _frozen(changed),
        changed is None and _uses_paths(candidates, "pull_request"),
    )


def for_event(candidates: Sequence[Candidate], event: str, *, run_id: str, sender: str = "") -> Choice:
    """Any other event: pipelines without `on`, and those whose `on` lists it."""
    key = ON_KEYS.get(event, event)
    trigger = {"event": event, "id": run_id, "sender": sender}
    decisions = []
    for c in candidates:
        if c.triggers is None:
            decisions.append(Considered(c, True, f"{event} (the pipeline has no `on`)"))
        elif key in c.triggers:
            decisions.append(Considered(c, True, f"{event} (`on` lists {key})"))
        else:
            decisions.append(Considered(c, False, f"{event}: `on` has no {key}"))
    key = f"{event}:{run_id}"  # not triggers.trigger_key: a `schedule` run here has no cron of its own
    selections = tuple(
        Selection(d.candidate.path, d.candidate.name, dict(trigger), key, d.reason, d.candidate.concurrency)
        for d in decisions
        if d.selected
    )
    return Choice(event, tuple(decisions), selections)


def follow_branches(default_branch: str | None) -> tuple[str, ...]:
    """The branches whose pushes run pipelines without `on`: the repository's default branch (the daemon's
    default, main and master, when the payload does not name it)."""
    return (default_branch,) if default_branch else ("main", "master")


def _uses_paths(candidates: Sequence[Candidate], event: str) -> bool:
    """Whether some pipeline's decision needed the change set (it has path filters for the event)."""
    return any(
        c.triggers and isinstance(c.triggers.get(event), dict) and ({"paths", "paths-ignore"} & set(c.triggers[event]))
        for c in candidates
    )


def _frozen(changed: Collection[str] | None) -> frozenset[str] | None:
    return None if changed is None else frozenset(changed)
