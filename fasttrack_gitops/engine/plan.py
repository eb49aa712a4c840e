"""From an event to the jobs it makes: read the repository at a commit, check its pipelines, freeze selections.

This is the daemon's blocking git and YAML work; it runs in a worker thread
and hands back plain records (`Planned`) that the daemon stores in its own
thread. Which pipelines an event selects is `triggers.py`'s decision; this
module only gathers what it decides on and turns its answer into jobs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.job import PipelineJob, freeze, freeze_invalid
from fasttrack_gitops.core.pipeline import check_pipeline, schema
from fasttrack_gitops.core.pipeline.diagnostics import has_errors
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitError, Snapshot
from fasttrack_gitops.engine.state.ledger import JobKey
from fasttrack_gitops.engine.workspace import DEFAULT_PIPELINE_GLOBS, SETTINGS_FILE

CACHE_SIZE = 256  # commits whose checked pipelines are kept: a burst of deliveries of one push reads it once


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

    @property
    def candidates(self) -> list[triggers.Candidate]:
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
            raise GitError(f"folder '{source.prefix}' is not in commit {commit[:12]} of {source.name}")
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
    lookup = gitrepo.code_lookup(snap)
    valid: dict[str, Pipeline] = {}
    invalid: dict[str, tuple[str, tuple[dict, ...]]] = {}
    for path in gitrepo.list_files(snap, globs):
        raw = gitrepo.read_file(snap, path, max_bytes=limits.max_bytes + 1) or b""
        checked = check_pipeline(raw, path, limits=limits, code_lookup=lookup)
        if checked.pipeline is not None:
            valid[path] = checked.pipeline
        else:
            data = checked.document.data if checked.document is not None else None
            name = data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else None
            invalid[path] = (name or Path(path).stem, tuple(d.as_dict() for d in checked.diagnostics))
    found = Pipelines(snap, valid, invalid)
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
    source: RepoSource, found: Pipelines, selections: Sequence[triggers.Selection], *, commit: str, ref: str | None
) -> list[Planned]:
    """A job per selection: the pipeline frozen at the commit, with its concurrency group worked out."""
    snap = replace(found.snapshot, ref=ref)
    planned = []
    for selection in selections:
        pipeline = found.valid[selection.path]
        code_trees = {t.name: gitrepo.tree_id(snap, t.code) or snap.tree for t in pipeline.tasks if t.code}
        job = freeze(
            pipeline,
            pipeline_path=selection.path,
            repository=source.name,
            source="commit",
            commit=commit,
            ref=ref,
            tree=snap.tree,
            code_trees=code_trees,
            trigger={**selection.trigger, "reason": selection.reason},
        )
        group, cancel = None, False
        if pipeline.concurrency:
            context = triggers.group_context(selection, repository=source.name, commit=commit)
            group = f"{source.name}:{triggers.concurrency_group(pipeline.concurrency['group'], context)}"
            cancel = bool(pipeline.concurrency.get("cancel_in_progress"))
        key = JobKey(source.name, commit, selection.path, selection.key)
        planned.append(Planned(key, job, group, cancel, selection.reason))
    return planned


def plan_invalid(
    source: RepoSource, found: Pipelines, *, commit: str, ref: str | None, trigger: Mapping, key: str
) -> list[Planned]:
    """A job per invalid pipeline file, carrying its diagnostics (one per file and trigger, like the others)."""
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
            trigger=trigger,
        )
        planned.append(Planned(JobKey(source.name, commit, path, key), job, reason=f"{path} is not valid"))
    return planned
