"""`fasttrack-gitops export`: a pipeline of the repository as a file FastTrack's GUI imports."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import max_file_size, repo_option, rev_option


@click.command("export")
@click.argument("pipeline", metavar="PIPELINE")
@repo_option
@rev_option("Export")
@click.option(
    "--target-version",
    default=None,
    metavar="V",
    help="The FastTrack release to write for (e.g. 25.6.5 or 26.4.4): its words for ownership and task types "
    "(default: the pipeline's own version).",
)
@click.option(
    "--ship-code",
    "ship_code",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write each task's code: folder into DIR/<tree id>/ and make its command enter "
    "/pipeline/vfroot/fasttrack-gitops/code/<tree id>; upload DIR's folders there in FastTrack.",
)
@click.option(
    "--upload-to",
    "upload_to",
    default=None,
    metavar="VFOLDER",
    help="With --ship-code: upload the code trees into this vfolder (the FastTrack pipeline's data folder) under "
    "fasttrack-gitops/code/, with the BACKEND_* credentials; trees already there are skipped.",
)
@click.option("-o", "--output", "output", required=True, metavar="FILE", help="The file to write ('-': stdout).")
@max_file_size
def command(
    pipeline: str,
    repo: str | None,
    rev: str | None,
    target_version: str | None,
    ship_code: str | None,
    upload_to: str | None,
    output: str,
    max_file_size: int,
) -> int:
    """Write PIPELINE, as committed at --rev (default HEAD), as a FastTrack pipeline export.

    The file has the target release's shape (ownership.domain or
    domain_name, deployment or serving); what FastTrack does not know (code,
    timeout, cache, on, concurrency, notify, ...) is kept under
    x-fasttrack-gitops, so `import` brings the file back unchanged. Exit 0
    when written, 1 when the pipeline is not valid, 2 for a bad command line.
    """
    from pathlib import Path

    from fasttrack_gitops.commands.run import locate
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.engine.fasttrack_files import export_at
    from fasttrack_gitops.engine.plan import NotInSnapshot

    if upload_to and not ship_code:
        raise UsageError("--upload-to needs --ship-code DIR: the folder the code trees are written to first")
    repo_dir, relpath = locate(pipeline, repo)
    ship_to = Path(ship_code) if ship_code else None
    try:
        exported = export_at(
            repo_dir, relpath, rev=rev, target_version=target_version, ship_to=ship_to, limits=Limits(max_file_size)
        )
    except NotInSnapshot as e:
        raise UsageError(f"{e}; commit it first (export reads the commit, as `run` does)") from None
    for d in exported.diagnostics:
        click.echo(text_line(d), err=True)
    if not exported.text:
        click.echo("the pipeline is not valid; nothing was exported", err=True)
        return 1
    if output == "-":
        click.echo(exported.text, nl=False)
    else:
        try:
            Path(output).write_text(exported.text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {output}: {e.strerror or e}") from None
        click.echo(f"wrote {output} ({relpath} at {(exported.commit or '')[:12]})", err=True)
    if exported.shipped and upload_to:
        uploaded = _upload(upload_to, Path(ship_code or "."), set(exported.shipped.values()))
        click.echo(
            f"code of {len(exported.shipped)} task(s) in vfolder {upload_to} under fasttrack-gitops/code/ "
            f"({len(uploaded)} tree(s) uploaded now, the others there already)",
            err=True,
        )
    elif exported.shipped:
        click.echo(
            f"code of {len(exported.shipped)} task(s) in {ship_code}/: upload each folder into the pipeline's data "
            "folder under fasttrack-gitops/code/ before running it in FastTrack (or give --upload-to)",
            err=True,
        )
    for task, tree in exported.shipped.items():
        click.echo(f"  {task}: {ship_code}/{tree}", err=True)
    return 0


def _upload(vfolder: str, ship_to, trees: set[str]) -> list[str]:
    import asyncio

    from fasttrack_gitops.engine.backendai.client import Client
    from fasttrack_gitops.engine.backendai.credentials import Credentials
    from fasttrack_gitops.engine.fasttrack_files import upload_code

    async def main() -> list[str]:
        async with Client(Credentials.from_env()) as client:
            return await upload_code(client, vfolder, ship_to, trees)

    return asyncio.run(main())
