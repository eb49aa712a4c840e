"""`fasttrack-gitops trigger`: ask a running daemon to run a pipeline now (its POST /api/trigger)."""

from __future__ import annotations

import click


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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(repository: str, pipeline: str, ref: str, url: str, request_id: str | None, fmt: str) -> int:
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

    import httpx

    from fasttrack_gitops.core.errors import UsageError

    body = {
        "repository": repository,
        "pipeline": pipeline,
        "ref": ref,
        "request_id": request_id or secrets.token_hex(8),
        "sender": os.environ.get("USER", "cli"),
    }
    headers = {"Authorization": f"Bearer {os.environ['FTG_API_TOKEN']}"} if os.environ.get("FTG_API_TOKEN") else {}
    try:
        answer = httpx.post(url.rstrip("/") + "/api/trigger", json=body, headers=headers, timeout=120)
    except httpx.HTTPError as e:
        raise UsageError(
            f"cannot reach the daemon at {url}: {e}; is `fasttrack-gitops serve` running there? "
            "(--daemon or $FTG_DAEMON_URL)"
        ) from None
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):  # a proxy's error page, another service: not the daemon's JSON object
        raise UsageError(
            f"{url} answered {answer.status_code} {answer.reason_phrase} without the JSON a "
            "fasttrack-gitops daemon answers; is that the daemon's address? (--daemon or $FTG_DAEMON_URL)"
        )
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    if answer.status_code == 201:
        if fmt == "text":
            click.echo(f"{data.get('note', '')}\njobs: {', '.join(str(j) for j in data.get('jobs') or [])}")
        return 0
    message = " ".join(str(data.get("error") or data.get("note") or f"HTTP {answer.status_code}").split())
    if answer.status_code == 422:
        if fmt == "text":
            click.echo(f"error: {message}", err=True)
        return 1
    if answer.status_code == 401:
        message += (
            "; $FTG_API_TOKEN is not the daemon's token"
            if headers
            else "; give the daemon's API token in $FTG_API_TOKEN"
        )
    raise UsageError(f"the daemon refused the request ({answer.status_code}): {message}")
