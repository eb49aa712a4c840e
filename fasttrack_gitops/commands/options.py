"""Options shared by several commands, defined once."""

from __future__ import annotations

import click


def size_option(value: str) -> int:
    from fasttrack_gitops.core.pipeline.units import parse_size

    try:
        return parse_size(int(value) if value.isdigit() else value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a size; write e.g. 2m or 1048576") from None


max_file_size = click.option(
    "--max-file-size",
    default="1m",
    show_default=True,
    metavar="SIZE",
    callback=lambda _c, _p, v: size_option(v),
    help="Refuse pipeline files larger than this (e.g. 512k, 2m).",
)


def _state_dir(_ctx, _param, value: str | None):
    from pathlib import Path

    from fasttrack_gitops.engine.state.state_folder import default_state_dir

    return Path(value) if value else default_state_dir()


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    callback=_state_dir,
    metavar="DIR",
    help="Where jobs, logs and outputs are kept (default: $FTG_STATE_DIR, else $XDG_STATE_HOME/fasttrack-gitops, "
    "else ~/.local/state/fasttrack-gitops).",
)

no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    help="Reuse no cached task outputs: every task runs (what it makes is still cached for later jobs).",
)

param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give the pipeline's parameter NAME this value instead of its default (repeatable); tasks read it as "
    "$PARAM_<NAME>. An unknown name or a value of the wrong type stops before anything runs.",
)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: machine-readable records.",
)


def _executor_names() -> list[str]:
    from fasttrack_gitops.engine.executors import EXECUTORS  # the registry only: no executor is imported

    return sorted(EXECUTORS)


executor_option = click.option(
    "--executor",
    type=click.Choice(_executor_names()),
    default="local",
    show_default=True,
    help="Where tasks run: local (processes on this machine) or backendai (BACKEND_* variables).",
)


def markdown_format_option(help: str):
    """`--format text|json|markdown`: for what people also paste into a pull request or a step summary."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help=help,
    )


repo_option = click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="The pipeline repository (default: the folder above PIPELINE with a .fasttrack.yaml or .git). "
    "May be a subfolder of a git repository; code: paths are relative to it.",
)


def rev_option(verb: str):
    """`--rev REV`: the commit a command reads the pipeline at ("Run", "Plan")."""
    return click.option(
        "--rev",
        default=None,
        metavar="REV",
        help=f"{verb} the pipeline as of this commit, branch or tag (default HEAD).",
    )
