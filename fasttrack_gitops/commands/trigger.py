"""`fasttrack-gitops trigger`: ask a running daemon to run a pipeline now (its POST /api/trigger)."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import no_cache_option, param_option


@click.command("trigger")
@click.argument("repository", metavar="REPO")
@click.argument("pipeline", metavar="PIPELINE")
@click.option(
    "--ref", default="HEAD", show_default=True, metavar="REF", help="The branch, tag or commit to run the pipeline at."
)
@click.option(
    "--daemon",
    "url",
    envvar="FTG_DAEMON_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    metavar="URL",
    help="The daemon's address (also $FTG_DAEMON_URL).",
)
@click.option(
    "--request-id",
    default=None,
    metavar="ID",
    help="Makes retries safe: the daemon makes one job per request id (default: a new one).",
)
@param_option
@no_cache_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(
    repository: str,
    pipeline: str,
    ref: str,
    url: str,
    request_id: str | None,
    params: tuple[str, ...],
    no_cache: bool,
    fmt: str,
) -> int:
    """Run PIPELINE (a name or a file path) of REPO (owner/repo, as configured) through the daemon.

    The daemon reads the pipeline at REF, makes a job and queues it like any
    other; the job ids are printed. With an api_token_env in the daemon's
    configuration, give the token in $FTG_API_TOKEN. Exit 0 when a job was
    made, 1 when the pipeline is not there or not valid at REF, 2 when the
    daemon cannot be reached or refuses the request.
    """
    import json
    import os
    import secrets

    from fasttrack_gitops.core.pipeline.params import parse_assignments
    from fasttrack_gitops.engine.daemon_client import API_TOKEN_VARIABLE, DaemonError, trigger

    overrides = parse_assignments(params)  # malformed: exit 2 here; unknown or mistyped: the daemon's 400

    try:
        triggered = trigger(
            url,
            repository=repository,
            pipeline=pipeline,
            ref=ref,
            request_id=request_id or secrets.token_hex(8),
            sender=os.environ.get("USER", "cli"),
            api_token=os.environ.get(API_TOKEN_VARIABLE) or None,
            no_cache=no_cache,
            params=overrides,
            where="--daemon or $FTG_DAEMON_URL",
        )
    except DaemonError as e:
        if fmt == "json" and e.answer is not None:  # the daemon's own answer, for a script to read
            click.echo(json.dumps(e.answer, indent=2))
        raise
    if fmt == "json":
        click.echo(json.dumps(triggered.answer, indent=2))
    elif triggered.made:
        click.echo(f"{triggered.answer.get('note', '')}\njobs: {', '.join(triggered.jobs)}")
    else:
        click.echo(f"error: {triggered.message}", err=True)
    return 0 if triggered.made else 1
