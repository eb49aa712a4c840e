"""Options shared by several commands, defined once."""

from __future__ import annotations

import click


def size_option(value: str) -> int:
    from fasttrack_gitops.pipeline.units import parse_size

    try:
        return parse_size(int(value) if value.isdigit() else value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a size; write e.g. 2m or 1048576") from None


max_file_size = click.option(
    "--max-file-size", default="1m", show_default=True, metavar="SIZE", callback=lambda _c, _p, v: size_option(v),
    help="Refuse pipeline files larger than this (e.g. 512k, 2m).",
)
