"""`fasttrack-gitops schema`: print a JSON Schema for editors and other tools."""

from __future__ import annotations

import click

SCHEMAS = {
    "pipeline": "pipeline.schema.json",
    "repository": "repository.schema.json",
    "config": "config.schema.json",
}


@click.command("schema")
@click.argument("name", type=click.Choice(sorted(SCHEMAS)), default="pipeline")
def command(name: str) -> int:
    """Print a JSON Schema: of pipeline files, of .fasttrack.yaml, or of the daemon's configuration.

    NAME is `pipeline` (the default), `repository` or `config` (`serve --config FILE`).
    """
    from fasttrack_gitops.core.pipeline.schema import schema_text

    click.echo(schema_text(SCHEMAS[name]), nl=False)
    return 0
