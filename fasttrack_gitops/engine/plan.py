"""Planning: a pipeline file at a snapshot, checked and frozen into a job; for one file, or a commit's pipelines.

Every shell plans here. `run` plans one file (`plan_file`: at a revision,
as the work tree stands, or a folder in no git repository as it is); the
daemon and the Action plan a repository at a commit (`pipelines_at`, then
`plan` for what triggers.py selected and `plan_invalid` for the files that
are not valid); `jobs rerun` and the daemon's re-runs repeat a stored job
(`rerun_job`). They share two steps: `check_at` reads and checks one file at
a snapshot, `freeze_at` freezes a checked pipeline with its code trees.

This is blocking git and YAML work: the daemon runs it in a worker thread
and gets plain records (`Planned`) back, which it stores in its own thread.

What only the daemon and the Action use (triggers, concurrency groups, the
ledger's keys) is imported where it is used: `run` plans one file and never
needs them, and importing them cost a 1-task `run` some 8 ms of its start.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fasttrack_gitops.core.job import PipelineJob, freeze, freeze_invalid, rerun, with_params
from fasttrack_gitops.core.pipeline import CheckResult, check_pipeline, schema
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors, sort_key
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitUsageError, Snapshot
from fasttrack_gitops.engine.workspace import DEFAULT_PIPELINE_GLOBS, SETTINGS_FILE

if TYPE_CHECKING:
    from fasttrack_gitops.core import triggers
    from fasttrack_gitops.engine.state.ledger import JobKey

CACHE_SIZE = 256  # commits whose checked pipelines are kept: a burst of deliveries of one push reads it once


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


# -- a repository at a commit: the daemon and the Action ----------------------------------------------


@dataclass(frozen=True)
class RepoSource:
    """Where the daemon reads one configured repository."""

    name: str  # owner/repo, as the git host names it
    top: Path  # the git repository read: the local clone itself, or the daemon's mirror of a remote one
    prefix: str = ""  # the pipeline repository's folder inside it (a monorepo)
    globs: tuple[str, ...] | None = None  # where pipelines live; None: .fasttrack.yaml at the commit, else default


@dataclass(frozen=True)
class Pipelines:
    """The pipeline files of a repository at one commit, checked."""

    snapshot: Snapshot
    valid: Mapping[str, Pipeline]  # path -> pipeline
    invalid: Mapping[str, tuple[str, tuple[dict, ...]]]  # path -> (pipeline name or file stem, diagnostics)
    warnings: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)  # path -> a valid one's

    @property
    def candidates(self) -> list[triggers.Candidate]:
        from fasttrack_gitops.core import triggers

        return [triggers.Candidate(path, p.name, p.triggers, p.concurrency) for path, p in self.valid.items()]


@dataclass(frozen=True)
class Planned:
    """A job to store under its key (the ledger makes it only when the key has none)."""

    key: JobKey
    job: PipelineJob
    group: str | None = None
    cancel_in_progress: bool = False
    reason: str = ""


_cache: OrderedDict[tuple, Pipelines] = OrderedDict()
_cache_lock = threading.Lock()


def snapshot_at(source: RepoSource, commit: str, ref: str | None = None) -> Snapshot:
    """The pipeline repository at a commit, read from the clone or the mirror (bare repositories too)."""
    snap = gitrepo.open_snapshot(source.top, commit)
    if source.prefix:
        tree = gitrepo.tree_id(snap, source.prefix)
        if tree is None:
            raise GitUsageError(f"folder '{source.prefix}' is not in commit {commit[:12]} of {source.name}")
        snap = replace(snap, prefix=source.prefix, tree=tree)
    return replace(snap, ref=ref)


def default_head(source: RepoSource) -> tuple[str, str | None]:
    """The default branch's full ref (HEAD's branch, else main) and its commit (None when it has none)."""
    ref = f"refs/heads/{gitrepo.default_branch(source.top) or 'main'}"
    return ref, gitrepo.heads(source.top, (ref,)).get(ref)


def pipelines_at(source: RepoSource, commit: str, *, limits: Limits = Limits()) -> Pipelines:
    """Every pipeline file at the commit, checked as `validate` checks them (cached by commit)."""
    key = (str(source.top), source.prefix, source.globs, commit)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    snap = snapshot_at(source, commit)
    globs = source.globs or _settings_globs(snap, limits) or DEFAULT_PIPELINE_GLOBS
    valid: dict[str, Pipeline] = {}
    invalid: dict[str, tuple[str, tuple[dict, ...]]] = {}
    warnings: dict[str, tuple[Diagnostic, ...]] = {}
    for path in gitrepo.list_files(snap, globs):
        checked = check_at(snap, path, limits=limits)
        if checked is None:  # list_files names files of this very tree: not reached
            continue
        if checked.pipeline is not None:
            valid[path] = checked.pipeline
            if checked.warnings:
                warnings[path] = checked.warnings
        else:
            document = checked.result.document
            data = document.data if document is not None else None
            name = data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else None
            invalid[path] = (name or Path(path).stem, tuple(d.as_dict() for d in checked.diagnostics))
    found = Pipelines(snap, valid, invalid, warnings)
    with _cache_lock:
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _settings_globs(snap: Snapshot, limits: Limits) -> tuple[str, ...] | None:
    """The `pipelines` globs of .fasttrack.yaml at the commit; None when it has none or is not valid."""
    raw = gitrepo.read_file(snap, SETTINGS_FILE, max_bytes=limits.max_bytes + 1)
    if raw is None:
        return None
    doc, found = load(raw, SETTINGS_FILE, limits)
    if doc is None or has_errors(found + schema.check(doc, "repository.schema.json", subject=SETTINGS_FILE)):
        return None
    globs = doc.data.get("pipelines")
    return tuple(g.removeprefix("./") for g in globs) if globs else None


def plan(
    source: RepoSource,
    found: Pipelines,
    selections: Sequence[triggers.Selection],
    *,
    ref: str | None,
    trigger_extra: Mapping | None = None,
) -> list[Planned]:
    """A job per selection: the pipeline frozen at the commit, with its concurrency group worked out.

    `trigger_extra` are facts of the delivery every job records in its
    trigger (the GitHub App installation its reporters act as); they are not
    part of the idempotency key, so the same event from a webhook and from a
    poll still makes one job.
    """
    from fasttrack_gitops.core.concurrency_groups import concurrency_group, group_context
    from fasttrack_gitops.engine.state.ledger import JobKey

    snap = replace(found.snapshot, ref=ref)
    commit = snap.commit or ""
    base = base_commit(snap, selections[0].trigger) if selections else None  # one event: one base for all
    planned = []
    for selection in selections:
        pipeline = found.valid[selection.path]
        job = freeze_at(
            snap,
            pipeline,
            pipeline_path=selection.path,
            repository=source.name,
            trigger=with_base_commit(
                {**selection.trigger, "reason": selection.reason, **(trigger_extra or {})}, snap, base
            ),
            warnings=found.warnings.get(selection.path, ()),
        )
        group, cancel = None, False
        if pipeline.concurrency:
            context = group_context(selection, repository=source.name, commit=commit)
            group = f"{source.name}:{concurrency_group(pipeline.concurrency['group'], context)}"
            cancel = bool(pipeline.concurrency.get("cancel_in_progress"))
        key = JobKey(source.name, commit, selection.path, selection.key)
        planned.append(Planned(key, job, group, cancel, selection.reason))
    return planned


def check_params(found: Pipelines, selections: Sequence[triggers.Selection]) -> None:
    """ParamError when a selection's trigger gives its pipeline a parameter it lacks or a value that does not
    fit: the daemon and the Action ask before planning, so a bad request makes no job at all."""
    for selection in selections:
        with_params(found.valid[selection.path], selection.trigger.get("params"))


def plan_invalid(
    source: RepoSource,
    found: Pipelines,
    *,
    ref: str | None,
    trigger: Mapping,
    trigger_extra: Mapping | None = None,
) -> list[Planned]:
    """A job per invalid pipeline file, carrying its diagnostics (one per file and trigger, like the others)."""
    from fasttrack_gitops.core import triggers
    from fasttrack_gitops.engine.state.ledger import JobKey

    commit = found.snapshot.commit or ""
    key = triggers.trigger_key(trigger)
    planned = []
    for path, (name, diagnostics) in found.invalid.items():
        job = freeze_invalid(
            name,
            diagnostics,
            pipeline_path=path,
            repository=source.name,
            commit=commit,
            ref=ref,
            tree=found.snapshot.tree,
            trigger={**trigger, **(trigger_extra or {})},
        )
        planned.append(Planned(JobKey(source.name, commit, path, key), job, reason=f"{path} is not valid"))
    return planned
