"""`fasttrack-gitops import`: a pipeline exported from FastTrack's GUI as a pipeline file of the repository."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import max_file_size


@click.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option(
    "--into",
    "into",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    metavar="REPO",
    help="The pipeline repository; the file is written to REPO/pipelines/<name>.yaml.",
)
@click.option(
    "--name", default=None, metavar="NAME", help="The pipeline's (and the file's) name (default: the export's)."
)
@click.option("--force", is_flag=True, help="Replace an existing pipelines/<name>.yaml.")
@max_file_size
def command(file: str, into: str, name: str | None, force: bool, max_file_size: int) -> int:
    """Write FILE, a pipeline exported from FastTrack, as REPO/pipelines/<name>.yaml.

    What `export` added (x-fasttrack-gitops, a shipped command's first line,
    another release's words) is undone. A secret-looking literal value
    (FT202: HF_TOKEN, API_KEY, ...) becomes ${{ secrets.NAME }}, and the
    names are listed: give the values as FTG_SECRET_NAME or in a
    --secrets-file, never in git. Exit 0 when written, 2 when FILE is not a
    FastTrack export or the target exists.
    """
    from pathlib import Path

    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.engine.fasttrack_files import import_file

    imported = import_file(Path(file), into=Path(into), name=name, force=force, limits=Limits(max_file_size))
    for d in imported.diagnostics:
        click.echo(text_line(d), err=True)
    click.echo(f"wrote {imported.path}")
    if imported.secrets:
        click.echo(
            f"{len(imported.secrets)} literal secret value(s) replaced by ${{{{ secrets.NAME }}}} references "
            "(the values were not written):",
            err=True,
        )
        for place in imported.secrets:
            click.echo(f"  {place}", err=True)
        click.echo(
            "give each value as FTG_SECRET_<NAME> or in a --secrets-file when running, or in the daemon's environment",
            err=True,
        )
    return 0
