"""The command group: parsing, dispatch, and what an error becomes (a line and an exit code).

Each command lives in its own module under commands/ and is imported only
when it runs, so `--help` and `validate` stay fast and never load the HTTP,
git or server stacks.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from fasttrack_gitops.core.errors import FastTrackError

COMMANDS = {
    "validate": "fasttrack_gitops.commands.validate:command",
    "graph": "fasttrack_gitops.commands.graph:command",
    "schema": "fasttrack_gitops.commands.schema:command",
    "run": "fasttrack_gitops.commands.run:command",
    "plan": "fasttrack_gitops.commands.plan:command",
    "jobs": "fasttrack_gitops.commands.jobs:group",
    "doctor": "fasttrack_gitops.commands.doctor:command",
    "trigger": "fasttrack_gitops.commands.trigger:command",
    "export": "fasttrack_gitops.commands.export:command",
    "import": "fasttrack_gitops.commands.import_:command",
    "gc": "fasttrack_gitops.commands.gc:command",
    "state": "fasttrack_gitops.commands.state:group",
    "serve": "fasttrack_gitops.daemon.command:command",
    "ci": "fasttrack_gitops.ci.command:command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            from fasttrack_gitops.core.pipeline.diagnostics import did_you_mean

            ctx.fail(f"no such command '{name}'{did_you_mean(name, COMMANDS)}; commands: {', '.join(sorted(COMMANDS))}")
        return super().resolve_command(ctx, args)


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from fasttrack_gitops.version import describe  # reads .git files: only when asked

    click.echo(f"fasttrack-gitops {describe()}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=show_version,
    help="Show the version (and the commit, from a git checkout) and exit.",
)
def cli() -> None:
    """Backend.AI FastTrack 2 pipelines from a git repository.

    Validate pipeline files, draw their DAGs, run them as immutable jobs,
    and look at the jobs. Exit codes: 0 success, 1 a failed validation or
    job, 2 a usage or configuration error, 3 an operational failure (the
    state database locked or of a newer version, a repository or server
    that cannot be reached): try again, or fix what the message names.
    """


def invoke(args: list[str]) -> int:
    try:
        # make_context + invoke rather than cli.main(): click's main() turns a
        # broken pipe into exit 1 before we could see it.
        with cli.make_context("fasttrack-gitops", args) as ctx:
            result = cli.invoke(ctx)
    except click.exceptions.Exit as e:  # --help, --version
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except FastTrackError as e:  # its class says who must act: 1 failed, 2 usage (UsageError), 3 OperationalError
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        # `fasttrack-gitops ... | head`: the reader left; that is not our failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug: say so in one line unless asked for the traceback
        if os.environ.get("FTG_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(e).__name__}: {e} (set FTG_DEBUG=1 for the traceback, and please report it)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0
