"""Planning a repository at a commit: the daemon's and the Action's (engine/plan.py plans one file, for `run`).

A push, a pull request or a tick names a commit; `pipelines_at` reads and
checks every pipeline file there (cached by commit: a burst of deliveries of
one push reads it once), triggers.py selects among them, and `plan` freezes
each selected one into a job with its concurrency group (`plan_invalid` a
job per file that is not valid, so the commit's check can say why). The
steps every plan shares (`check_at`, `freeze_at`) are plan.py's.

Apart from plan.py because `run` never needs it: its records and the
triggers, concurrency groups and ledger keys it uses are a measurable part
of a 1-task run's start-up (tests/commands/run_imports_test.py). plan.py
still answers these names, importing this module on first use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.concurrency_groups import concurrency_group, group_context
from fasttrack_gitops.core.job import PipelineJob, freeze_invalid, with_params
from fasttrack_gitops.core.pipeline import schema
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitUsageError, Snapshot
from fasttrack_gitops.engine.plan import base_commit, check_at, freeze_at, with_base_commit
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
    warnings: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)  # path -> a valid one's

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
