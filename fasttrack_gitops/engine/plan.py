"""Planning: a pipeline file at a snapshot, checked and frozen into a job; for one file, or a commit's pipelines.

Every shell plans here. `run` plans one file (`plan_file`: at a revision,
as the work tree stands, or a folder in no git repository as it is); the
daemon and the Action plan a repository at a commit (plan_repo.py:
`pipelines_at`, then `plan` for what triggers.py selected and `plan_invalid`
for the files that are not valid); `jobs rerun` and the daemon's re-runs
repeat a stored job (`rerun_job`). They share two steps: `check_at` reads
and checks one file at a snapshot, `freeze_at` freezes a checked pipeline
with its code trees.

This is blocking git and YAML work: the daemon runs it in a worker thread
and gets plain records (`Planned`) back, which it stores in its own thread.

plan_repo.py's names are answered here too (`from ...engine.plan import
pipelines_at`), but its module is imported only when one is first asked for
(`__getattr__`): `run` plans one file and never needs it, and its records,
triggers, concurrency groups and ledger keys were a measurable part of a
1-task run's start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fasttrack_gitops.core.job import PipelineJob, freeze, rerun
from fasttrack_gitops.core.pipeline import CheckResult, check_pipeline
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, sort_key
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.yamlsource import Limits
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitUsageError, Snapshot
from fasttrack_gitops.engine.lazy import lazy_names

if TYPE_CHECKING:
    from fasttrack_gitops.engine.plan_repo import (
        CACHE_SIZE,
        Pipelines,
        Planned,
        RepoSource,
        check_params,
        default_head,
        pipelines_at,
        plan,
        plan_invalid,
        snapshot_at,
    )

__all__ = [
    "CACHE_SIZE",
    "Checked",
    "FilePlan",
    "NotInSnapshot",
    "Pipelines",
    "Planned",
    "RepoSource",
    "base_commit",
    "check_at",
    "check_params",
    "code_trees_at",
    "default_head",
    "freeze_at",
    "pipelines_at",
    "plan",
    "plan_file",
    "plan_invalid",
    "rerun_job",
    "snapshot_at",
    "with_base_commit",
]

# plan_repo.py's names (planning a repository at a commit: the daemon's and the Action's), imported on first use.
__getattr__ = lazy_names(
    __name__,
    {
        "CACHE_SIZE",
        "Pipelines",
        "Planned",
        "RepoSource",
        "check_params",
        "default_head",
        "pipelines_at",
        "plan",
        "plan_invalid",
        "snapshot_at",
    },
    "fasttrack_gitops.engine.plan_repo",
)


# -- the two steps every plan takes ----------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """One pipeline file at a snapshot, checked as `validate` checks it."""

    result: CheckResult  # every diagnostic of the check; the pipeline when the file is valid
    warnings: tuple[Diagnostic, ...] = ()  # what a job of it will not do as written: recorded on the job

    @property
    def pipeline(self) -> Pipeline | None:
        return self.result.pipeline

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """What to show: the check's findings and the job's warnings, in file order."""
        return sorted([*self.result.diagnostics, *self.warnings], key=sort_key)


def check_at(snap: Snapshot, path: str, *, shown: str | None = None, limits: Limits = Limits()) -> Checked | None:
    """The pipeline file at path (under the snapshot's root) read and checked, code: folders looked up in the
    snapshot; diagnostics name the file as `shown` (default: path). None when the snapshot has no such file."""
    raw = gitrepo.read_file(snap, path, max_bytes=limits.max_bytes + 1)
    if raw is None:
        return None
    return Checked(check_pipeline(raw, shown or path, limits=limits, code_lookup=gitrepo.code_lookup(snap)))


def code_trees_at(snap: Snapshot, pipeline: Pipeline) -> dict[str, str]:
    """Each task's code: folder as its tree id at the snapshot (freeze gives the tasks without one the root tree).

    The rule for every shell: a pipeline is frozen at the snapshot it was
    checked at, where the check found each code: folder (FT113 otherwise).
    A folder missing here means another snapshot was checked, and no job is
    made: running such a task in the repository root instead, or with no
    tree at all, would run something the pipeline does not name.
    """
    trees = {}
    for task in pipeline.tasks:
        if task.code:
            tree = gitrepo.tree_id(snap, task.code)
            if tree is None:
                raise GitUsageError(
                    f"task '{task.name}': its code folder '{task.code}' is not in {_named(snap)}; "
                    "the pipeline was checked at another snapshot"
                )
            trees[task.name] = tree
    return trees


def freeze_at(
    snap: Snapshot,
    pipeline: Pipeline,
    *,
    pipeline_path: str,
    repository: str,
    trigger: Mapping,
    warnings: Sequence[Diagnostic] = (),
) -> PipelineJob:
    """A new job of a pipeline checked at the snapshot: its commit, ref, trees and dirtiness; the warnings kept."""
    job = freeze(
        pipeline,
        pipeline_path=pipeline_path,
        repository=repository,
        source=snap.kind,
        commit=snap.commit,
        ref=snap.ref,
        tree=snap.tree,
        code_trees=code_trees_at(snap, pipeline),
        trigger=trigger,
        dirty=snap.dirty,
    )
    return replace(job, diagnostics=tuple(d.as_dict() for d in warnings)) if warnings else job


def rerun_job(old: PipelineJob, *, trigger: Mapping | None = None) -> PipelineJob:
    """A new job repeating a stored one: its frozen spec, snapshot, code trees and findings; nothing is read again."""
    return replace(rerun(old, trigger=trigger), diagnostics=tuple(old.diagnostics))


def _named(snap: Snapshot) -> str:
    """'commit 0123456789ab', or 'the worktree snapshot': what a message says was read."""
    return f"commit {(snap.commit or '')[:12]}" if snap.kind == "commit" else f"the {snap.kind} snapshot"


# -- one file: `run` --------------------------------------------------------------------------------


class NotInSnapshot(GitUsageError):
    """The pipeline file is not a file in the snapshot (the message says where it was looked for)."""

    def __init__(self, message: str, snapshot: Snapshot) -> None:
        super().__init__(message)
        self.snapshot = snapshot


@dataclass(frozen=True)
class FilePlan:
    """One pipeline file planned: the snapshot read, what to show, and the job (None when the file is not valid)."""

    snapshot: Snapshot
    diagnostics: list[Diagnostic]
    job: PipelineJob | None


def plan_file(
    folder: Path,
    path: str,
    *,
    rev: str | None = None,
    worktree: bool = False,
    objects: Path | None = None,
    shown: str | None = None,
    limits: Limits = Limits(),
    params: Mapping[str, str] | None = None,
) -> FilePlan:
    """The pipeline file at path in the repository at folder as a job, not stored.

    The repository is read at rev (default HEAD), or as its work tree stands
    (worktree; the job is dirty when it differs from HEAD), or, for a folder
    in no git repository, as the folder is. Work-tree and unversioned
    snapshots write their objects to `objects`. `params` override the
    pipeline's parameters (core/pipeline/params.py; ParamError, before any
    job exists, when one does not fit). Raises NotInSnapshot when the file
    is not there.
    """
    # One flow of git questions (the snapshot, the file, its code: folders, the base commit): the repository is
    # opened once for all of them rather than once each (three times for a 1-task `run`).
    with gitrepo.held_open():
        snap = gitrepo.open_snapshot(folder, rev or "HEAD", worktree=worktree, store=objects)
        checked = check_at(snap, path, shown=shown, limits=limits)
        if checked is None:
            raise NotInSnapshot(f"{path} is not a file in {folder} at {_named(snap)}", snap)
        job = None
        if checked.pipeline is not None:
            job = freeze_at(
                snap,
                checked.pipeline,
                pipeline_path=path,
                repository=str(Path(folder).resolve()),
                # one file planned on request: the command line's
                trigger=with_base_commit({"event": "cli", **({"params": dict(params)} if params else {})}, snap),
                warnings=checked.warnings,
            )
    return FilePlan(snap, checked.diagnostics, job)


def base_commit(snap: Snapshot, trigger: Mapping) -> str | None:
    """The commit whose job a new job's model results are compared with (engine/results.py): a push's `before`,
    a pull request's merge base (the daemon records it as `merge_base`), a work tree's HEAD, else the commit's
    first parent; None when there is none (a new branch, a root commit, a folder outside git)."""
    event = trigger.get("event")
    if event == "push":
        before = trigger.get("before")
        return str(before) if before and before != gitrepo.ZERO_COMMIT else None
    if event == "pull_request":
        return trigger.get("merge_base")
    if snap.kind == "worktree":
        return snap.commit
    if snap.kind != "commit" or not snap.commit:
        return None
    try:
        return gitrepo.resolve_revision(snap.repo_root, f"{snap.commit}~1")[0]
    except gitrepo.GitError:
        return None


def with_base_commit(trigger: dict, snap: Snapshot, base: str | None = None) -> dict:
    """The trigger with its `base_commit`, when there is one (base: already worked out for the event)."""
    found = base if base is not None else base_commit(snap, trigger)
    return {**trigger, "base_commit": found} if found else trigger
