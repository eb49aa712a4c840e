"""`fasttrack-gitops serve`: run the GitOps daemon from its configuration file, or only check that file."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("serve")
@click.option(
    "--config",
    "config_file",
    envvar="FTG_CONFIG",
    metavar="FILE",
    help="The daemon's configuration (YAML; `fasttrack-gitops schema config` prints its schema). Default: $FTG_CONFIG.",
)
@click.option("--check", is_flag=True, help="Check the configuration (and that its secrets resolve), then exit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the check's result as a record (with --check).",
)
def command(config_file: str | None, check: bool, fmt: str) -> int:
    """Run the daemon: follow repositories and webhooks, turn commits into jobs, run them.

    The configuration is checked first, secrets included; any problem is
    reported as file:line:col and nothing starts (exit 2). With --check,
    print a summary of the configuration and exit 0 when it is valid.
    """
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.core.pipeline.diagnostics import has_errors
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.daemon.config_loading import load_config

    path = _config_path(config_file)
    config, found = load_config(path)
    color = sys.stderr.isatty()
    for d in found:
        click.echo(text_line(d, color=color), err=True)
    if check and fmt == "json":
        click.echo(_as_json(config, found))
    if config is None or has_errors(found):
        raise UsageError("the configuration is not valid; nothing was started")
    for warning in warnings(config):
        click.echo(f"{path}: warning: {warning}", err=True)
    if check:
        if fmt == "text":
            click.echo(summary(config))
        return 0
    from fasttrack_gitops.daemon.app import serve as run_daemon  # the server stack loads only now

    return run_daemon(config)


def warnings(config) -> list[str]:
    """What is valid but probably not meant: today, a console nobody away from the machine can read."""
    from fasttrack_gitops.daemon.web.access import listens_beyond_loopback

    if config.loopback_only and listens_beyond_loopback(config.host):
        return [
            f"the daemon listens on {_address(config)} but has no read_token_env (nor api_token_env), so its console "
            "and read APIs answer only on this machine (127.0.0.1); set read_token_env, or public_read: true to "
            "open them to anyone deliberately"
        ]
    return []


def _config_path(given: str | None) -> Path:
    """The configuration file, or a one-line UsageError when there is none to read."""
    from fasttrack_gitops.core.errors import UsageError

    if not given:
        raise UsageError("no configuration: pass --config FILE or set FTG_CONFIG")
    path = Path(given)
    if not path.exists():
        raise UsageError(f"{given}: no such configuration file")
    if path.is_dir():
        raise UsageError(f"{given} is a folder; --config names the configuration file")
    return path


def summary(config) -> str:
    """One line that says what the daemon would do, for `serve --check`."""
    count = len(config.repositories)
    return (
        f"config OK: {count} repositor{'y' if count == 1 else 'ies'}, executor {config.executor}, "
        f"listening on {_address(config)}, state in {config.state_dir}"
    )


def _address(config) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{host}:{config.port}"


def _as_json(config, found) -> str:
    """The check's result for machines: the diagnostics, and what was configured (never a secret)."""
    import json

    from fasttrack_gitops.core.masking import masked_url_credentials

    result: dict = {"valid": config is not None, "diagnostics": [d.as_dict() for d in found]}
    if config is not None:
        result.update(
            {
                "file": str(config.file),
                "state_dir": str(config.state_dir),
                "listen": _address(config),
                "executor": config.executor,
                "public_url": config.public_url,
                "max_running_jobs": config.max_running_jobs,
                "shutdown_grace": config.shutdown_grace,
                "webhook_max_body": config.webhook_max_body,
                "outputs_max_size": config.outputs_max_size,
                "api_token": config.api_token is not None,
                "read_token": config.read_token is not None,
                "public_read": config.public_read,
                "warnings": warnings(config),
                "signing_secret": config.signing_secret is not None,
                "integrations": {
                    name: getattr(config, name) is not None for name in ("github", "gitlab", "slack", "backendai")
                },
                "repositories": [
                    {
                        "name": r.name,
                        "url": masked_url_credentials(r.url),  # a token may be its user: https://${TOKEN}@...
                        "provider": r.provider,
                        "branches": list(r.branches),
                        "watch": r.watch,
                        "poll_interval": r.poll_interval,
                        "path": r.path,
                        "pipelines": None if r.pipelines is None else list(r.pipelines),
                    }
                    for r in config.repositories
                ],
            }
        )
    return json.dumps(result, indent=2)
