"""`fasttrack-gitops gc`: remove old jobs, their logs, data folders, code trees and cache entries (engine/gc.py).

The daemon does the same on a schedule from its `retention:` section
(daemon/retention.py); by hand the limits are options.
"""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import format_option, state_dir_option


def _duration(_ctx, _param, value: str | None) -> float | None:
    if value is None:
        return None
    from fasttrack_gitops.core.pipeline.units import parse_duration

    try:
        return parse_duration(float(value) if value.replace(".", "", 1).isdigit() else value)
    except ValueError as e:
        raise click.BadParameter(f"'{value}' is not a duration ({e}); write e.g. 30d, 12h or 90m") from None


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would go and how many bytes it holds.")
@click.option(
    "--max-age",
    default=None,
    metavar="DURATION",
    callback=_duration,
    help="Remove ended jobs older than this, e.g. 30d.",
)
@click.option(
    "--keep-per-pipeline",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Keep the newest N jobs of each pipeline; remove the ended ones beyond them.",
)
@click.option(
    "--backendai",
    is_flag=True,
    help="Also remove the jobs' folders (jobs/<id>) in their pipelines' Backend.AI data folders "
    "(the manager named by BACKEND_ENDPOINT, BACKEND_ACCESS_KEY, BACKEND_SECRET_KEY).",
)
@state_dir_option
@format_option
def command(
    dry_run: bool, max_age: float | None, keep_per_pipeline: int | None, backendai: bool, state_dir, fmt: str
) -> int:
    """Remove ended jobs past a limit, and what only they used.

    A job goes when it is older than --max-age or beyond the newest
    --keep-per-pipeline of its pipeline; never one that has not ended, one
    whose report is still owed, or one whose outputs a kept job reuses. Its
    rows, logs, data folder and cache entries go with it, and the code trees
    no kept job names. Exit 0; 2 without a limit or a state folder; 3 when the
    state database cannot be used (damaged, locked: the message says what to do).
    """
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.core.render.retention import gc_text
    from fasttrack_gitops.core.retention import RetentionPolicy
    from fasttrack_gitops.engine.gc import collect, existing_store

    if max_age is None and keep_per_pipeline is None:
        raise UsageError("gc needs a limit: give --max-age (e.g. 30d) or --keep-per-pipeline (e.g. 50), or both")
    policy = RetentionPolicy(max_age=max_age, keep_per_pipeline=keep_per_pipeline)
    with existing_store(state_dir) as store:
        done = collect(store, policy, dry_run=dry_run)
    if backendai and done.collected:
        import asyncio

        asyncio.run(_backendai(done))
    if fmt == "json":
        import json

        record = {
            "dry_run": dry_run,
            "items": [{"kind": i.kind, "name": i.name, "detail": i.detail, "bytes": i.bytes} for i in done.items],
            "kept": done.kept,
            "rows": done.rows,
            "freed": done.freed,
            "problems": done.problems,
            "seconds": round(done.seconds, 3),
        }
        click.echo(json.dumps(record, indent=2))
    else:
        items = [(i.kind, i.name, i.detail, i.bytes) for i in done.items]
        click.echo(gc_text(items, done.kept, dry_run=dry_run, freed=done.freed, seconds=done.seconds), nl=False)
        for problem in done.problems:
            click.echo(f"warning: could not remove {problem}", err=True)
    return 0


async def _backendai(done) -> None:
    from fasttrack_gitops.engine.backendai.client import Client
    from fasttrack_gitops.engine.backendai.credentials import Credentials
    from fasttrack_gitops.engine.gc_vfolders import collect_folders

    client = Client(Credentials.from_env())
    try:
        await collect_folders(client, done)
    finally:
        await client.aclose()
