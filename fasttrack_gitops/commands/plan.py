"""`fasttrack-gitops plan`: what a run of a pipeline would run, reuse and skip, why, and roughly how long it takes.

It plans the pipeline file as `run` does (same locating, same revision,
same checks) and asks the task cache the runner will ask, but stores no job,
opens no session and starts no task.
"""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import (
    executor_option,
    markdown_format_option,
    max_file_size,
    no_cache_option,
    param_option,
    repo_option,
    rev_option,
    state_dir_option,
)


@click.command("plan")
@click.argument("pipeline", metavar="PIPELINE")
@repo_option
@rev_option("Plan")
@click.option(
    "--base",
    default=None,
    metavar="REV",
    help="Also say, per task, what of its cache key changed between REV and --rev (e.g. --base main).",
)
@executor_option
@param_option
@no_cache_option
@state_dir_option
@markdown_format_option("json: the forecast as a record; markdown: a table for a pull request or a step summary.")
@max_file_size
def command(
    pipeline: str,
    repo: str | None,
    rev: str | None,
    base: str | None,
    executor: str,
    params: tuple[str, ...],
    no_cache: bool,
    state_dir,
    fmt: str,
    max_file_size: int,
) -> int:
    """Say what `run PIPELINE` would do: which tasks run and which are reused from the task cache, why, the
    critical path and its estimate from earlier runs, and the CPU and GPU hours it spends and saves.

    Nothing is run or stored. With --executor backendai the cache on Backend.AI is read (BACKEND_* variables).
    Exit 0 when the plan was made, 1 when the pipeline is not valid, 2 on a usage error (no such file or revision).
    """
    import asyncio
    import json

    from fasttrack_gitops.commands.run import locate
    from fasttrack_gitops.core.forecast import as_json, with_base
    from fasttrack_gitops.core.pipeline.params import ParamError, parse_assignments
    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.core.reports.plan import plan_markdown, plan_text
    from fasttrack_gitops.engine.cache.forecast import base_changes, forecast_for
    from fasttrack_gitops.engine.launch import opened_executor, snapshot_store
    from fasttrack_gitops.engine.state.store import Store

    overrides = parse_assignments(params)
    repo_dir, relpath = locate(pipeline, repo)
    limits = Limits(max_bytes=max_file_size)
    with Store(state_dir) as store:
        objects = snapshot_store(store)
        planned = _plan(repo_dir, relpath, rev, shown=pipeline, limits=limits, objects=objects, params=overrides)
        for d in planned.diagnostics:
            click.echo(text_line(d), err=True)
        job = planned.job
        if job is None:
            click.echo("the pipeline is not valid; nothing to plan", err=True)
            return 1

        async def main():
            async with opened_executor(executor) as opened:
                return await forecast_for(job, planned.snapshot, opened, store, no_cache=no_cache)

        found = asyncio.run(main())
        if base is not None:
            try:  # the same values at the base, so that only what the commits changed shows as changed
                before = _plan(
                    repo_dir,
                    relpath,
                    base,
                    shown=pipeline,
                    limits=limits,
                    objects=objects,
                    what="--base",
                    params=overrides,
                )
            except ParamError:  # the base has no such parameter: compare with its defaults
                before = _plan(repo_dir, relpath, base, shown=pipeline, limits=limits, objects=objects, what="--base")
            if before.job is None:
                click.echo(f"warning: the pipeline is not valid at {base}; nothing to compare with", err=True)
            else:
                found = with_base(found, base, base_changes(job, planned.snapshot, before.job, before.snapshot))
    for warning in found.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(json.dumps(as_json(found), indent=2))
    else:
        click.echo(plan_markdown(found) if fmt == "markdown" else plan_text(found), nl=False)
    return 0


def _plan(repo_dir, relpath: str, rev: str | None, *, shown: str, limits, objects, what: str = "--rev", params=None):
    """The file planned at rev (a job not stored); a usage error naming the revision when it is not there."""
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.engine.plan import NotInSnapshot, plan_file

    try:
        return plan_file(repo_dir, relpath, rev=rev, objects=objects, shown=shown, limits=limits, params=params)
    except NotInSnapshot as e:
        raise UsageError(f"{e}; commit it, or give {what} a revision that has it") from None
