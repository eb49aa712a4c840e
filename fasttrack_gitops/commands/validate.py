"""`fasttrack-gitops validate`: check pipeline files and repositories, report every problem."""

from __future__ import annotations

import sys

import click

from fasttrack_gitops.commands.options import max_file_size


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True), metavar="[PATH]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: file:line:col lines; json: an object with 'diagnostics'; github: workflow commands.",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@max_file_size
def command(paths: tuple[str, ...], fmt: str, strict: bool, max_file_size: int) -> int:
    """Validate pipeline files.

    Each PATH is a pipeline file or a repository folder (default: the current
    folder). In a folder, pipelines are the files matching
    pipelines/**/*.yaml and pipelines/**/*.yml, or the globs listed under
    `pipelines` in the folder's .fasttrack.yaml. Exit 0 when there is no
    error, 1 when there is one.
    """
    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render import diagnostics as render

    report = validate_paths(list(paths) or ["."], Limits(max_bytes=max_file_size))
    errors = sum(d.is_error for d in report.diagnostics)
    warnings = len(report.diagnostics) - errors
    if fmt == "json":
        click.echo(render.as_json(report.diagnostics, report.files))
    elif fmt == "github":
        for d in report.diagnostics:
            click.echo(render.github_command(d))
        click.echo(render.summary_line(len(report.files), errors, warnings))
    else:
        color = sys.stdout.isatty()
        for d in report.diagnostics:
            click.echo(render.text_line(d, color=color))
        click.echo(render.summary_line(len(report.files), errors, warnings))
    return 1 if errors or (strict and warnings) else 0


class Report:
    """What validating some paths found: all diagnostics, a summary per file, the valid pipelines."""

    def __init__(self) -> None:
        self.diagnostics: list = []
        self.files: list[dict] = []
        self.pipelines: list = []

    def add(self, result) -> None:
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


def validate_paths(paths: list[str], limits) -> Report:
    """Check every pipeline file the paths name, and each repository they belong to as a whole.

    A folder is a repository root (its pipeline globs select the files); a
    file belongs to the repository find_root finds. Files are grouped by
    repository, so its .fasttrack.yaml is reported once and duplicate
    pipeline names are caught among the files given (pre-commit passes the
    changed files one by one). A file named twice is checked once.
    """
    from pathlib import Path

    from fasttrack_gitops.core.pipeline.repository import check_repository
    from fasttrack_gitops.engine.workspace import find_root, open_repository

    repos: dict = {}  # resolved root -> (repository, {resolved file: shown path})

    def repository(root: Path, label: str):
        key = root.resolve()
        if key not in repos:
            repos[key] = (open_repository(root, label, limits), {})
        return repos[key]

    empty_folders: list = []
    seen: set = set()  # a file reached twice (a folder and a file in it) is checked once

    def take(files: dict, file: Path, shown: str) -> None:
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
                outer, outer_files = repository(*find_root(path / "-"))
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
        results = [check_file(file, shown, repo, limits) for file, shown in files.items()]
        for result in results:
            report.add(result)
        if results:
            report.diagnostics += check_repository(repo.label, repo.pipeline_globs, results)
    for given, repo in empty_folders:
        if not any(d.is_error for d in repo.diagnostics):  # broken settings: that error says it already
            report.diagnostics += check_repository(given, repo.pipeline_globs, [])
    return report


def check_file(path, shown: str, repo, limits):
    from fasttrack_gitops.core.pipeline import CheckResult, check_pipeline
    from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic
    from fasttrack_gitops.engine.workspace import read_bytes

    raw = read_bytes(path, shown, limits)
    if isinstance(raw, Diagnostic):
        return CheckResult(shown, [raw], None, None)
    return check_pipeline(raw, shown, limits=limits, code_lookup=repo.code_lookup())
