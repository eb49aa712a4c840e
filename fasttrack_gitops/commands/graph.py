"""`fasttrack-gitops graph`: draw a pipeline's DAG."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import max_file_size


@click.command("graph")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot", "json"]),
    default="text",
    show_default=True,
    help="text: a table by step; mermaid/dot: a diagram; json: nodes and edges.",
)
@max_file_size
def command(pipeline: str, fmt: str, max_file_size: int) -> int:
    """Show the task DAG of PIPELINE, each task with its resources.

    Paste `--format mermaid` into a GitHub comment or README to see it drawn;
    pipe `--format dot` to `dot -Tsvg`. An invalid pipeline prints its
    diagnostics instead and exits 1.
    """
    import json

    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render import graph
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.engine.validation import validate_paths

    report = validate_paths([pipeline], Limits(max_bytes=max_file_size))
    errors = [d for d in report.diagnostics if d.is_error]
    if errors:
        for d in errors:
            click.echo(text_line(d), err=True)
        return 1
    checked = report.pipelines[0]
    if fmt == "mermaid":
        click.echo(graph.mermaid(checked), nl=False)
    elif fmt == "dot":
        click.echo(graph.dot(checked), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(graph.as_json(checked), indent=2))
    else:
        click.echo(graph.text(checked), nl=False)
    return 0
