"""Which pipelines an event selects, and the keys that make it one job per trigger. Pure.

The daemon and the GitHub Action both turn what happened into an event record
(`events.py`) and ask this module which of the pipeline files at the commit
should run; the rules follow GitHub Actions' `on:` so an author's intuition
carries over. Every decision comes with a one-line reason a person reads in
the logs or the Action's summary, for the pipelines that did not run as much
as for those that did (`explain_*`).

`/fasttrack` commands in pull-request comments live in
`comment_commands.py`; a selection's concurrency group in
`concurrency_groups.py`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from fasttrack_gitops.core import globs
from fasttrack_gitops.core.events import Manual, PullRequest, Push, Tick
from fasttrack_gitops.core.pipeline.model import Concurrency

__all__ = [
    "DEFAULT_PULL_REQUEST_TYPES",
    "Candidate",
    "Considered",
    "Selection",
    "explain_manual",
    "explain_pull_request",
    "explain_push",
    "explain_tick",
    "ref_kind",
    "select_manual",
    "select_pull_request",
    "select_push",
    "select_tick",
    "trigger_key",
]

# GitHub's default activity types for `on: pull_request`.
DEFAULT_PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened")


@dataclass(frozen=True)
class Candidate:
    """One valid pipeline file at the commit being considered."""

    path: str  # repository-relative path of the file
    name: str  # the pipeline's name
    triggers: Mapping[str, Any] | None  # Pipeline.triggers: the normalised `on`, None when the file has none
    concurrency: Concurrency | None = None  # Pipeline.concurrency


@dataclass(frozen=True)
class Selection:
    """Run this pipeline for this event."""

    path: str
    name: str
    trigger: dict[str, Any]  # JSON-able, stored in the job record; always has "event"
    key: str  # trigger_key(trigger): one job per (repository, commit, path, key)
    reason: str  # one line a person reads
    concurrency: Concurrency | None = None  # the candidate's, so the caller need not look it up again


class Considered(NamedTuple):
    """Whether one candidate runs for the event, and why (or why not)."""

    candidate: Candidate
    selected: bool
    reason: str


# --- push ------------------------------------------------------------------------------------


def explain_push(
    candidates: Sequence[Candidate], push: Push, *, changed: Collection[str] | None, follow_branches: Sequence[str]
) -> list[Considered]:
    """Decide every candidate for a push; `changed` None means the change set is unknown.

    A pipeline without `on` runs on pushes to the followed branches (the
    repository's configuration); with `on`, GitHub Actions' push rules apply.
    """
    return [Considered(c, *_decide_push(c, push, changed, follow_branches)) for c in candidates]


def select_push(
    candidates: Sequence[Candidate], push: Push, *, changed: Collection[str] | None, follow_branches: Sequence[str]
) -> list[Selection]:
    trigger = {"event": "push", "ref": push.ref, "before": push.before, "after": push.after, "sender": push.sender}
    return _selected(explain_push(candidates, push, changed=changed, follow_branches=follow_branches), trigger)


def _decide_push(
    c: Candidate, push: Push, changed: Collection[str] | None, follow_branches: Sequence[str]
) -> tuple[bool, str]:
    kind, name = ref_kind(push.ref)
    what = f"push to {name}" if kind == "branch" else f"push of {kind} {name}"
    if push.deleted:
        return False, f"{what}: the {kind} was deleted"
    if kind == "ref":
        return False, f"{what}: only branch and tag pushes run pipelines"
    if c.triggers is None:
        return _decide_without_on(kind, name, what, follow_branches)
    if "push" not in c.triggers:
        return False, f"{what}: `on` has no push"
    spec = c.triggers["push"]
    refused = _branch_refusal(spec, name) if kind == "branch" else _tag_refusal(spec, name)
    if refused:
        return False, f"{what}: {refused}"
    if kind == "tag":
        return True, what  # like GitHub, path filters are not evaluated for tag pushes
    return _decide_paths(spec, changed, "on.push", what)


def _decide_without_on(kind: str, name: str, what: str, follow_branches: Sequence[str]) -> tuple[bool, str]:
    if kind == "tag":
        return False, f"{what}: the pipeline has no `on`, so only pushes to followed branches run it"
    if globs.matches(name, follow_branches):
        return True, f"{what} (no `on`; {name} is a followed branch)"
    return False, f"{what}: the pipeline has no `on` and {name} is not a followed branch ({_list(follow_branches)})"


def _branch_refusal(spec: Mapping[str, list[str]], branch: str) -> str:
    """Why a push to `branch` does not pass on.push's ref filters; '' when it does."""
    if "branches" not in spec and "branches-ignore" not in spec and "tags" in spec:
        return "on.push has only a tags filter, so branch pushes do not run it"
    if "branches" in spec and not globs.matches(branch, spec["branches"]):
        return f"{branch} does not match on.push.branches ({_list(spec['branches'])})"
    if "branches-ignore" in spec and globs.matches(branch, spec["branches-ignore"]):
        return f"{branch} matches on.push.branches-ignore ({_list(spec['branches-ignore'])})"
    return ""


def _tag_refusal(spec: Mapping[str, list[str]], tag: str) -> str:
    """Why a push of `tag` does not pass on.push's ref filters; '' when it does."""
    if "tags" in spec:
        return "" if globs.matches(tag, spec["tags"]) else f"{tag} does not match on.push.tags ({_list(spec['tags'])})"
    if "branches" in spec or "branches-ignore" in spec:
        return "on.push has only a branches filter, so tag pushes do not run it"
    return ""


# --- pull requests ---------------------------------------------------------------------------


def explain_pull_request(
    candidates: Sequence[Candidate], pr: PullRequest, *, changed: Collection[str] | None
) -> list[Considered]:
    """Decide every candidate for pull-request activity; only pipelines with `on.pull_request` run.

    A fork's pull request is decided like any other: whether it may run is
    the daemon's question (the trigger records "fork").
    """
    return [Considered(c, *_decide_pull_request(c, pr, changed)) for c in candidates]


def select_pull_request(
    candidates: Sequence[Candidate], pr: PullRequest, *, changed: Collection[str] | None
) -> list[Selection]:
    trigger = {
        "event": "pull_request",
        "number": pr.number,
        "action": pr.action,
        "head_sha": pr.head_sha,
        "base_ref": pr.base_ref,
        "head_ref": pr.head_ref,
        "fork": pr.from_fork,
        "sender": pr.sender,
    }
    return _selected(explain_pull_request(candidates, pr, changed=changed), trigger)


def _decide_pull_request(c: Candidate, pr: PullRequest, changed: Collection[str] | None) -> tuple[bool, str]:
    what = f"pull request #{pr.number} into {pr.base_ref} ({pr.action})"
    if c.triggers is None:
        return False, f"{what}: the pipeline has no `on`, so pull requests do not run it"
    if "pull_request" not in c.triggers:
        return False, f"{what}: `on` has no pull_request"
    spec = c.triggers["pull_request"]
    types = spec.get("types", DEFAULT_PULL_REQUEST_TYPES)
    if pr.action not in types:
        where = "on.pull_request.types" if "types" in spec else "the default types"
        return False, f"{what}: {pr.action} is not in {where} ({_list(types)})"
    if "branches" in spec and not globs.matches(pr.base_ref, spec["branches"]):
        return False, f"{what}: {pr.base_ref} does not match on.pull_request.branches ({_list(spec['branches'])})"
    if "branches-ignore" in spec and globs.matches(pr.base_ref, spec["branches-ignore"]):
        return False, (
            f"{what}: {pr.base_ref} matches on.pull_request.branches-ignore ({_list(spec['branches-ignore'])})"
        )
    return _decide_paths(spec, changed, "on.pull_request", what)


# --- paths (push and pull_request) -----------------------------------------------------------


def _decide_paths(
    spec: Mapping[str, list[str]], changed: Collection[str] | None, where: str, what: str
) -> tuple[bool, str]:
    """GitHub's path filters: `paths` needs one changed file inside, `paths-ignore` one outside.

    An unknown change set (None) passes, as GitHub runs when it cannot
    compute the diff: running once too often beats missing a change.
    """
    paths, ignore = spec.get("paths"), spec.get("paths-ignore")
    if paths is None and ignore is None:
        return True, what
    if changed is None:
        return True, f"{what} (changed files unknown, so the path filters were not applied)"
    if not changed:
        return False, f"{what}: no file changed, and {where} has path filters"
    inside = sorted(p for p in changed if paths is None or globs.matches(p, paths))
    if not inside:
        return False, f"{what}: no changed file matches {where}.paths ({_list(paths or ())})"
    kept = [p for p in inside if ignore is None or not globs.matches(p, ignore)]
    if not kept:
        return False, f"{what}: every changed file matches {where}.paths-ignore ({_list(ignore or ())})"
    return True, f"{what} changed {_files(kept)}"


# --- manual runs and schedules ---------------------------------------------------------------


def explain_manual(candidates: Sequence[Candidate], manual: Manual) -> list[Considered]:
    """Decide every candidate for a manual run, asked for by path or by name.

    Every pipeline may be run by hand, whatever its `on` says (`manual`
    included): an operator asked for this one explicitly, and refusing would
    only send them to edit the file. A path wins over a name, so a file is
    reachable even when another pipeline's name happens to equal its path.
    """
    wanted = manual.pipeline
    path = posixpath.normpath(wanted)
    by_path = any(c.path == path for c in candidates)
    by = f" by {manual.sender}" if manual.sender else ""
    decisions = []
    for c in candidates:
        chosen = c.path == path if by_path else c.name == wanted
        reason = f"manual run of {c.name} at {manual.ref}{by}" if chosen else f"manual run asked for {wanted}"
        decisions.append(Considered(c, chosen, reason))
    return decisions


def select_manual(candidates: Sequence[Candidate], manual: Manual) -> list[Selection]:
    """The pipeline named (or at the path) the request asks for; [] when there is none."""
    trigger: dict[str, Any] = {
        "event": "manual",
        "ref": manual.ref,
        "request_id": manual.request_id,
        "sender": manual.sender,
    }
    if manual.params:
        trigger["params"] = dict(manual.params)  # freeze() gives them to the job (core/job.py)
    return _selected(explain_manual(candidates, manual), trigger)


def explain_tick(candidates: Sequence[Candidate], tick: Tick) -> list[Considered]:
    """The tick's own pipeline runs if its `on.schedule` still has the tick's cron.

    The daemon computed the tick from an older commit's file; an edited or
    removed schedule must not fire one last time.
    """
    return [Considered(c, *_decide_tick(c, tick)) for c in candidates]


def select_tick(candidates: Sequence[Candidate], tick: Tick) -> list[Selection]:
    trigger = {"event": "schedule", "cron": tick.cron, "at": tick.at}
    return _selected(explain_tick(candidates, tick), trigger)


def _decide_tick(c: Candidate, tick: Tick) -> tuple[bool, str]:
    if c.path != tick.pipeline_path:
        return False, f"the schedule that fell due belongs to {tick.pipeline_path}"
    crons = [_spaces(s["cron"]) for s in (c.triggers or {}).get("schedule", ())]
    if _spaces(tick.cron) not in crons:
        return False, f"schedule '{tick.cron}' is no longer in on.schedule"
    at = datetime.fromtimestamp(tick.at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return True, f"schedule '{tick.cron}' fell due at {at}"


def _spaces(cron: str) -> str:
    return " ".join(cron.split())


# --- the trigger's identity ------------------------------------------------------------------


def trigger_key(trigger: Mapping[str, Any]) -> str:
    """The idempotency key: the same event delivered twice makes one job, not two.

    push "push:<ref>", pull_request "pull_request:<number>", schedule
    "schedule:<cron>@<at>", manual "manual:<request_id>"; any other event
    (a rerun, say) carries its own "id" and gets "<event>:<id>".
    """
    event = trigger["event"]
    if event == "push":
        return f"push:{trigger['ref']}"
    if event == "pull_request":
        return f"pull_request:{trigger['number']}"
    if event == "schedule":
        return f"schedule:{trigger['cron']}@{int(trigger['at'])}"
    if event == "manual":
        return f"manual:{trigger['request_id']}"
    if "id" in trigger:
        return f"{event}:{trigger['id']}"
    raise ValueError(f"a '{event}' trigger needs an 'id' to tell its jobs apart")


def _selected(decisions: Iterable[Considered], trigger: dict[str, Any]) -> list[Selection]:
    key = trigger_key(trigger)
    return [
        Selection(d.candidate.path, d.candidate.name, dict(trigger), key, d.reason, d.candidate.concurrency)
        for d in decisions
        if d.selected
    ]


# --- small words -----------------------------------------------------------------------------


def ref_kind(ref: str) -> tuple[str, str]:
    """refs/heads/x -> ("branch", "x"), refs/tags/y -> ("tag", "y"), anything else -> ("ref", ref)."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return kind, ref[len(prefix) :]
    return "ref", ref


def _list(patterns: Iterable[str]) -> str:
    return ", ".join(patterns) or "none"


def _files(paths: Sequence[str], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")
