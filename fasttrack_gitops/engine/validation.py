"""Validating pipeline files on disk: named files and folders, or a whole repository; every diagnostic in a Report.

What `fasttrack-gitops validate PATH` does, and what the Action reports
about its checkout (`validate_repository`); `graph` and `doctor` read
pipelines through it too. The files are read from the file system as they
stand (workspace.py); planning a job reads them from git instead (plan.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fasttrack_gitops.core.globs import static_prefix
from fasttrack_gitops.core.pipeline import CheckResult, check_pipeline
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.repository import check_repository
from fasttrack_gitops.core.pipeline.yamlsource import Limits
from fasttrack_gitops.engine.workspace import (
    DEFAULT_PIPELINE_GLOBS,
    Repository,
    find_root,
    open_repository,
    read_bytes,
)


@dataclass
class Report:
    """What validating some paths found: all diagnostics, a summary per file, the valid pipelines."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)

    def add(self, result: CheckResult) -> None:
        self.diagnostics += result.diagnostics
        pipeline = result.pipeline
        if pipeline is not None:
            self.pipelines.append(pipeline)
        data = result.document.data if result.document is not None else None
        self.files.append(
            {
                "file": result.file,
                "pipeline": pipeline.name if pipeline else (data.get("name") if isinstance(data, dict) else None),
                "tasks": len(pipeline.tasks) if pipeline else None,
                "valid": result.ok,
                "errors": sum(d.is_error for d in result.diagnostics),
                "warnings": sum(not d.is_error for d in result.diagnostics),
            }
        )


def check_file(path: Path, shown: str, repo: Repository, limits: Limits) -> CheckResult:
    """One pipeline file on disk, checked; code: folders are looked up in its repository; shown names it."""
    raw = read_bytes(path, shown, limits)
    if isinstance(raw, Diagnostic):
        return CheckResult(shown, [raw], None, None)
    return check_pipeline(raw, shown, limits=limits, code_lookup=repo.code_lookup())


def validate_repository(root: Path, *, globs: Sequence[str] = (), limits: Limits = Limits()) -> Report:
    """Every pipeline file of the repository at root, checked, paths relative to it; globs replace its settings'."""
    repo = open_repository(root, ".", limits)  # label ".": paths show relative to the root
    if globs:
        repo.pipeline_globs = tuple(globs)
    report = Report(diagnostics=list(repo.diagnostics))
    results = _check_files(report, repo, {path: repo.display(path) for path in repo.pipeline_files()}, limits)
    report.diagnostics += check_repository(".", repo.pipeline_globs, results)
    return report


def validate_paths(paths: Sequence[str], limits: Limits) -> Report:
    """Check every pipeline file the paths name, and each repository they belong to as a whole.

    A folder is a repository root (its pipeline globs select the files); a
    file belongs to the repository find_root finds. Files are grouped by
    repository, so its .fasttrack.yaml is reported once and duplicate
    pipeline names are caught among the files given (pre-commit passes the
    changed files one by one). A file named twice is checked once.
    """
    repos: dict[Path, tuple[Repository, dict[Path, str]]] = {}  # resolved root -> (repository, {file: shown})

    def repository(root: Path, label: str) -> tuple[Repository, dict[Path, str]]:
        key = root.resolve()
        if key not in repos:
            repos[key] = (open_repository(root, label, limits), {})
        return repos[key]

    empty_folders: list[tuple[str, Repository]] = []
    seen: set[Path] = set()  # a file reached twice (a folder and a file in it) is checked once

    def take(files: dict[Path, str], file: Path, shown: str) -> None:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            files[file.resolve()] = shown

    for given in paths:
        path = Path(given)
        if path.is_dir():
            repo, files = repository(path, given)
            selected = repo.pipeline_files()
            if not selected:
                # `validate repo/pipelines`: a folder inside a repository means that
                # repository's pipeline files under the folder.
                outer, outer_files = repository(*_enclosing_root(path, given))
                inside = path.resolve()
                selected = [f for f in outer.pipeline_files() if inside in f.resolve().parents]
                if selected:
                    repo, files = outer, outer_files
                else:
                    empty_folders.append((given, repo))
            for file in selected:
                take(files, file, repo.display(file))
        else:
            repo, files = repository(*find_root(path))
            take(files, path, given)

    report = Report()
    for repo, files in repos.values():
        report.diagnostics += repo.diagnostics
        results = _check_files(report, repo, files, limits)
        if results:
            report.diagnostics += check_repository(repo.label, repo.pipeline_globs, results)
    for given, repo in empty_folders:
        if not any(d.is_error for d in repo.diagnostics):  # broken settings: that error says it already
            report.diagnostics += check_repository(given, repo.pipeline_globs, [])
    return report


def _check_files(report: Report, repo: Repository, files: dict[Path, str], limits: Limits) -> list[CheckResult]:
    results = [check_file(file, shown, repo, limits) for file, shown in files.items()]
    for result in results:
        report.add(result)
    return results


def _enclosing_root(folder: Path, given: str) -> tuple[Path, str]:
    """The repository a folder without pipelines of its own is part of, and its label.

    The nearest folder above with a .fasttrack.yaml or a .git; in no
    repository at all, the nearest folder above whose pipeline globs reach
    into it (`validate pipelines/` in a plain folder means the files under
    pipelines/, as `validate .` there finds them). Else the folder itself.
    """
    root, label = find_root(folder / "-")
    start = folder.resolve()
    if root != start:
        return root, label
    fixed = {static_prefix(g) for g in DEFAULT_PIPELINE_GLOBS}  # no folder above has settings: find_root looked
    for up, above in enumerate(start.parents, start=1):
        inside = start.relative_to(above).as_posix()
        if any(p and (inside == p or inside.startswith(f"{p}/")) for p in fixed):
            return above, os.path.normpath(os.path.join(given, *[".."] * up))
    return root, label
