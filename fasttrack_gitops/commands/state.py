"""`fasttrack-gitops state`: check the state database, and back it up (engine/state/health.py)."""

from __future__ import annotations

from pathlib import Path

import click

from fasttrack_gitops.commands.options import state_dir_option


@click.group("state")
def group() -> None:
    """The state database: check it, back it up."""


@group.command("check")
@state_dir_option
def check(state_dir: Path) -> int:
    """SQLite's integrity and foreign key checks on state.db: exit 0 when sound, 1 with every problem found."""
    from fasttrack_gitops.engine.state.health import check as run_check
    from fasttrack_gitops.engine.state.state_folder import DB_NAME

    db = state_dir / DB_NAME
    problems = run_check(db)
    if not problems:
        click.echo(f"{db}: ok")
        return 0
    click.echo(f"{db}: {len(problems)} problem(s)", err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    click.echo(
        "put back a copy made by `fasttrack-gitops state backup`, or move the file aside to start with an empty one",
        err=True,
    )
    return 1


@group.command("backup")
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Where the copy goes (default: <state dir>/backups/state-<UTC time>.db). Never overwritten.",
)
@state_dir_option
def backup(to: Path | None, state_dir: Path) -> int:
    """A consistent copy of state.db, taken while jobs run (SQLite's online backup)."""
    from fasttrack_gitops.engine.state.health import backup as run_backup
    from fasttrack_gitops.engine.state.state_folder import DB_NAME

    click.echo(run_backup(state_dir / DB_NAME, to))
    return 0
