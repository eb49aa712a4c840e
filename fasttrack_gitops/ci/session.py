"""The repository side of a step: validate the checkout, read the event, find what changed, choose the pipelines.

Validation reads the work tree as `validate` does (every pipeline file,
every diagnostic, paths relative to the repository); selection reads the
commit through git as the daemon does (`plan.pipelines_at`). The change
set needs history: actions/checkout fetches one commit unless told
`fetch-depth: 0`, and then the files a push or pull request changed are
unknown, path filters pass, and the summary says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fasttrack_gitops.ci import selection
from fasttrack_gitops.ci.runner_env import RunnerContext, read_event
from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.events import PullRequest, Push
from fasttrack_gitops.core.pipeline.yamlsource import Limits
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitError
from fasttrack_gitops.engine.plan import Pipelines, RepoSource, pipelines_at
from fasttrack_gitops.engine.validation import Report, validate_repository

HISTORY_ADVICE = (
    "the history needed to tell which files changed is not in the checkout, so path filters were not "
    "applied; give actions/checkout `fetch-depth: 0`"
)


@dataclass
class Prepared:
    """What the event selects at the commit, and everything the summary must say about it."""

    source: RepoSource
    found: Pipelines  # the pipelines at the commit, valid and not
    commit: str  # the commit the jobs run (what the workflow checked out)
    report_commit: str  # where checks go: a pull request's head, else the commit
    ref: str | None
    choice: selection.Choice
    notes: list[str] = field(default_factory=list)


def validate(workspace: Path, globs: Sequence[str] = (), limits: Limits = Limits()) -> Report:
    """Every pipeline file of the checkout, checked: paths relative to the repository, as annotations need."""
    return validate_repository(workspace, globs=globs, limits=limits)


def prepare(ctx: RunnerContext, globs: Sequence[str] = ()) -> Prepared:
    """Read the event and the repository at the workflow's commit; decide every pipeline."""
    workspace = ctx.workspace
    if gitrepo.repository_of(workspace) is None:
        raise UsageError(f"GITHUB_WORKSPACE={workspace} is not a git checkout: run actions/checkout before this step")
    delivery = read_event(ctx)
    notes: list[str] = []
    commit = ctx.sha
    if not _has(workspace, commit):
        commit, _ = gitrepo.resolve_revision(workspace, "HEAD")
        notes.append(f"GITHUB_SHA {ctx.sha[:12]} is not in the checkout; the checked-out commit {commit[:12]} ran")
    source = RepoSource(ctx.repository, workspace, globs=tuple(globs) or None)
    found = pipelines_at(source, commit)
    event = delivery.record
    report_commit = commit
    if isinstance(event, Push):
        changed = push_changes(workspace, event)
        choice = selection.for_push(
            found.candidates, event, changed=changed, follow_branches=selection.follow_branches(event.default_branch)
        )
    elif isinstance(event, PullRequest):
        changed = pr_changes(workspace, event, commit)
        choice = selection.for_pull_request(found.candidates, event, changed=changed)
        report_commit = event.head_sha
    else:
        choice = selection.for_event(found.candidates, ctx.event_name, run_id=ctx.run_id, sender=ctx.actor)
        if delivery.ignored and ctx.event_name in ("push", "pull_request"):
            notes.append(f"the {ctx.event_name} payload was not understood ({delivery.ignored})")
    if choice.changes_unknown:
        notes.append(HISTORY_ADVICE)
    return Prepared(source, found, commit, report_commit, ctx.ref or None, choice, notes)


def push_changes(workspace: Path, push: Push) -> set[str] | None:
    """The files the push changed; None when the history to tell is not in the checkout."""
    default_ref = None
    if push.default_branch and push.ref != f"refs/heads/{push.default_branch}":
        # A new or force-pushed branch is compared with the default branch, as the checkout names it.
        wanted = (f"refs/remotes/origin/{push.default_branch}", f"refs/heads/{push.default_branch}")
        present = gitrepo.heads(workspace, wanted)
        default_ref = next((ref for ref in wanted if ref in present), None)
    try:
        return gitrepo.push_changes(workspace, push, default_ref=default_ref)
    except (GitError, KeyError, ValueError):  # a shallow history ends before the answer: unknown
        return None


def pr_changes(workspace: Path, pr: PullRequest, commit: str) -> set[str] | None:
    """The files the pull request changed since it left its base; None when the history is not there.

    The head is the pull request's head commit, else the merge commit the
    workflow checked out (it holds the same changes on top of the base).
    """
    base = pr.base_sha if pr.base_sha and _has(workspace, pr.base_sha) else None
    if base is None:
        wanted = (f"refs/remotes/origin/{pr.base_ref}", f"refs/heads/{pr.base_ref}")
        present = gitrepo.heads(workspace, wanted)
        base = next((present[ref] for ref in wanted if ref in present), None)
    if base is None:
        return None
    head = pr.head_sha if _has(workspace, pr.head_sha) else commit
    try:
        return gitrepo.pr_changes(workspace, base, head)
    except (GitError, KeyError, ValueError):
        return None


def _has(workspace: Path, commit: str) -> bool:
    try:
        return bool(commit) and gitrepo.has_commit(workspace, commit)
    except (KeyError, ValueError):
        return False
