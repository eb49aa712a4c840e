"""`fasttrack-gitops doctor`: can this machine run the repository's pipelines on Backend.AI?"""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import format_option


@click.command("doctor")
@click.argument("paths", nargs=-1, type=click.Path(exists=True), metavar="[PATH]...")
@format_option
def command(paths: tuple[str, ...], fmt: str) -> int:
    """Check the Backend.AI endpoint, API version, keypair and resource slots.

    Reads BACKEND_ENDPOINT, BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY,
    compares the resource slots the cluster offers with what the pipelines
    of PATH (default: the current folder) request, and makes sure each
    pipeline's data folder (a vfolder) exists or can be created. Prints a
    table of checks, each failure with what to do; exit 1 when any fails.
    """
    import asyncio
    from pathlib import Path

    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render.jobs import table
    from fasttrack_gitops.engine.validation import validate_paths
    from fasttrack_gitops.engine.workspace import find_root

    pipelines = []  # (the repository's folder, as a job records it; the pipeline)
    for given in paths or (".",):
        path = Path(given)
        root = path.resolve() if path.is_dir() else find_root(path)[0]
        pipelines += [(str(root), p) for p in validate_paths([given], Limits()).pipelines]
    checks = asyncio.run(run_checks(pipelines))
    if fmt == "json":
        import json

        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        rows = [
            (("ok" if c.ok else "FAIL") if c.ok is not None else "skip", c.name, c.detail, c.advice) for c in checks
        ]
        click.echo(table(rows, ("", "check", "found", "what to do")), nl=False)
    return 0 if all(c.ok is not False for c in checks) else 1


class Check:
    def __init__(self, name: str, ok: bool | None, detail: str = "", advice: str = ""):
        self.name, self.ok, self.detail, self.advice = name, ok, detail, advice


async def run_checks(pipelines, environ=None) -> list[Check]:
    """Each check in order; a failed one skips those that need it. pipelines: (repository, Pipeline) pairs."""
    from fasttrack_gitops.core.errors import FastTrackError
    from fasttrack_gitops.engine.backendai.client import Client
    from fasttrack_gitops.engine.backendai.credentials import Credentials
    from fasttrack_gitops.engine.backendai.errors import AuthError, BackendAIError, ClockSkewError

    checks: list[Check] = []
    try:
        credentials = Credentials.from_env(environ)
    except FastTrackError as e:
        return [Check("credentials", False, str(e), "export the three BACKEND_* variables (see the README)")]
    checks.append(Check("credentials", True, f"{credentials.endpoint}, access key {credentials.access_key}"))
    async with Client(credentials) as client:
        try:
            server = await client.negotiate()
        except BackendAIError as e:
            return checks + [
                Check(
                    "endpoint", False, str(e), "point BACKEND_ENDPOINT at the manager's API (e.g. http://manager:8081)"
                )
            ]
        checks.append(Check("endpoint", True, f"Backend.AI manager {server.manager}"))
        checks.append(Check("API version", True, f"server {server.version}, sending {server.api_version}"))
        try:
            await client.request("GET", "/auth", params={"echo": "fasttrack-gitops"})  # the manager's auth test
            checks.append(Check("keypair", True, "signed requests are accepted"))
        except ClockSkewError as e:
            return checks + [Check("keypair", False, str(e), "synchronise this machine's clock (NTP)")]
        except AuthError as e:
            return checks + [Check("keypair", False, str(e), "check BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY")]
        except BackendAIError as e:
            return checks + [Check("keypair", False, str(e), "")]
        try:
            offered = await client.request("GET", "/config/resource-slots")
        except BackendAIError as e:
            return checks + [Check("resource slots", False, str(e), "")]
        checks.append(slots_check(offered or {}, [p for _, p in pipelines]))
        checks.append(await folders_check(client, pipelines))
    return checks


async def folders_check(client, pipelines) -> Check:
    """Each pipeline's data folder exists or can be created (creating it: the executor would anyway)."""
    from fasttrack_gitops.engine.backendai.errors import BackendAIError
    from fasttrack_gitops.engine.backendai.vfolders import create_vfolder
    from fasttrack_gitops.engine.datafolder import folder_name

    names = sorted({folder_name(repository, p.name) for repository, p in pipelines})
    if not names:
        return Check("pipeline folders", None, "no valid pipeline to check")
    for name in names:
        try:
            await create_vfolder(client, name)
        except BackendAIError as e:
            return Check(
                "pipeline folders",
                False,
                str(e),
                "ask the cluster admin for vfolder quota/permission, or set a storage host",
            )
    return Check("pipeline folders", True, ", ".join(names))


def slots_check(offered: dict, pipelines) -> Check:
    """Whether the cluster offers every resource slot the pipelines' tasks request. Pure."""
    missing: dict[str, list[str]] = {}
    for pipeline in pipelines:
        for task in pipeline.tasks:
            wanted = ["cpu", "mem", *(slot for slot, amount in task.resources.accelerators if amount)]
            for slot in wanted:
                if slot not in offered:
                    missing.setdefault(slot, []).append(f"{pipeline.name}/{task.name}")
    found = ", ".join(sorted(offered)) or "none"
    if missing:
        lacking = "; ".join(
            f"{slot} (asked by {', '.join(who[:3])}{', ...' if len(who) > 3 else ''})"
            for slot, who in sorted(missing.items())
        )
        return Check(
            "resource slots",
            False,
            f"offers {found}; missing {lacking}",
            "run those tasks on a cluster with the slot, or change their resources",
        )
    return Check("resource slots", True, f"offers {found}; every pipeline's requests fit")
