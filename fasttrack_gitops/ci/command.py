"""`fasttrack-gitops ci`: the GitHub Action's step (validate, select, run, report, summarise)."""

from __future__ import annotations

import click


def _input(name: str, *fallbacks: str, **kwargs):
    """An option named like the action's input, also read from FTG_CI_<NAME> (then the fallback variables).

    The composite action passes its inputs as FTG_CI_* variables, never
    interpolated into a shell script; an empty variable counts as unset.
    """
    envvar = "FTG_CI_" + name.upper().replace("-", "_")
    return click.option(f"--{name}", name.replace("-", "_"), envvar=[envvar, *fallbacks], show_envvar=True, **kwargs)


def _token(value: str | None) -> str | None:
    """The --github-token given, None for `none` in any case: no check runs, and no token to send or mask."""
    return None if (value or "").strip().lower() == "none" else value


@click.command("ci")
@_input(
    "mode",
    type=click.Choice(["validate", "run", "plan"], case_sensitive=False),
    default="validate",
    show_default=True,
    help="validate: check every pipeline file and show what the event selects; run: also run the selection; "
    "plan: say what running it would run and reuse from the task cache, and why, in the step summary.",
)
@_input(
    "executor",
    type=click.Choice(["backendai", "local"], case_sensitive=False),
    default="backendai",
    show_default=True,
    help="Where tasks run: backendai, or local (processes on the runner).",
)
@_input(
    "pipelines",
    default=None,
    metavar="GLOBS",
    help="Pipeline files, as globs separated by commas or new lines (default: as `validate` finds them).",
)
@_input(
    "wait",
    type=click.BOOL,
    default="true",
    show_default=True,
    metavar="true|false",
    help="Wait for the jobs and fail the step when one fails; false hands them to --daemon-url and returns.",
)
@_input("backend-endpoint", "BACKEND_ENDPOINT", default=None, metavar="URL", help="The Backend.AI manager's API URL.")
@_input("backend-access-key", "BACKEND_ACCESS_KEY", default=None, metavar="KEY", help="Backend.AI access key.")
@_input("backend-secret-key", "BACKEND_SECRET_KEY", default=None, metavar="KEY", help="Backend.AI secret key.")
@_input(
    "github-token",
    "GITHUB_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Writes the check runs (needs checks: write); none (in any case): no check runs.",
)
@_input("slack-bot-token", default=None, metavar="TOKEN", help="A Slack bot token (chat:write).")
@_input("slack-webhook-url", default=None, metavar="URL", help="A Slack incoming webhook.")
@_input(
    "slack-channel", default=None, metavar="CHANNEL", help="The channel for pipelines whose notify.slack names none."
)
@_input(
    "daemon-url",
    default=None,
    metavar="URL",
    help="A running `fasttrack-gitops serve` that drives the jobs when --wait false (FTG_API_TOKEN: its token).",
)
@_input(
    "no-cache",
    type=click.BOOL,
    default="false",
    show_default=True,
    metavar="true|false",
    help="true: reuse no cached task outputs, every task runs (run mode) or is planned to (plan mode).",
)
@_input(
    "params",
    default=None,
    metavar="NAME=VALUE lines",
    help="Parameter values for the selected pipelines, one NAME=VALUE a line (a workflow_dispatch event's inputs "
    "named like a parameter apply too; these win).",
)
@_input(
    "state-dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Where jobs and logs are kept during the step (default: $RUNNER_TEMP/fasttrack-gitops).",
)
def command(
    mode: str,
    executor: str,
    pipelines: str | None,
    wait: bool,
    backend_endpoint: str | None,
    backend_access_key: str | None,
    backend_secret_key: str | None,
    github_token: str | None,
    slack_bot_token: str | None,
    slack_webhook_url: str | None,
    slack_channel: str | None,
    daemon_url: str | None,
    no_cache: bool,
    params: str | None,
    state_dir: str | None,
) -> int:
    """Run as a GitHub Actions step: validate, select the pipelines the event selects, run them, report.

    Reads the runner's GITHUB_* variables and event payload. Every
    diagnostic is an annotation; the step summary shows each job's DAG,
    tasks and failed logs, and why each pipeline was or was not selected;
    the outputs are job-ids, conclusion and summary. Exit 0 when every
    selected job succeeded or nothing was selected, 1 when a job failed or a
    pipeline file is not valid, 2 on a configuration error, 3 on an
    operational failure (the state database, a repository or a server).
    """
    from pathlib import Path

    from fasttrack_gitops.ci.main import Inputs, parse_globs, run

    inputs = Inputs(
        mode=mode.lower(),
        executor=executor.lower(),
        pipelines=parse_globs(pipelines),
        wait=wait,
        backend_endpoint=backend_endpoint,
        backend_access_key=backend_access_key,
        backend_secret_key=backend_secret_key,
        github_token=_token(github_token),
        slack_bot_token=slack_bot_token,
        slack_webhook_url=slack_webhook_url,
        slack_channel=slack_channel,
        daemon_url=daemon_url,
        state_dir=Path(state_dir) if state_dir else None,
        no_cache=no_cache,
        params=params,
    )
    return run(inputs)
