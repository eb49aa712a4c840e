"""`fasttrack-gitops validate`: check pipeline files and repositories, report every problem."""

from __future__ import annotations

import os
import sys

import click

from fasttrack_gitops.commands.options import max_file_size


def _readable_folders(_ctx, _param, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a folder that cannot be read, as click's own check did; a file that cannot be read is not refused
    here but reported as FT001, as it is when found in a folder (so click's check is off: readable=False)."""
    for path in paths:
        if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
            raise click.BadParameter(f"Path {path!r} is not readable.")
    return paths


@click.command("validate")
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, readable=False), callback=_readable_folders, metavar="[PATH]..."
)
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
    from fasttrack_gitops.engine.validation import validate_paths

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
