"""`fasttrack-gitops run`: freeze a pipeline at a commit into a job and run it to its end."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.options import (
    executor_option,
    format_option,
    max_file_size,
    no_cache_option,
    param_option,
    repo_option,
    rev_option,
    state_dir_option,
)


@click.command("run")
@click.argument("pipeline", metavar="PIPELINE")
@repo_option
@rev_option("Run")
@click.option("--worktree", is_flag=True, help="Run the uncommitted working tree (the job is marked dirty).")
@executor_option
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Run at most N tasks at once (default: as many as are ready).",
)
@click.option(
    "--secrets-file",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="NAME=value lines for ${{ secrets.NAME }} (also read: FTG_SECRET_NAME variables).",
)
@click.option(
    "--keep-services",
    is_flag=True,
    help="Leave deployment tasks' services running when the job ends (locally: their servers; on Backend.AI: "
    "ephemeral services too).",
)
@param_option
@no_cache_option
@state_dir_option
@format_option
@max_file_size
def command(
    pipeline: str,
    repo: str | None,
    rev: str | None,
    worktree: bool,
    executor: str,
    max_parallel: int | None,
    secrets_file: str | None,
    keep_services: bool,
    params: tuple[str, ...],
    no_cache: bool,
    state_dir,
    fmt: str,
    max_file_size: int,
) -> int:
    """Run PIPELINE as an immutable job and show its progress.

    The pipeline and its tasks' code: folders are read from the commit
    (--rev, default HEAD), not from the working tree, unless --worktree is
    given; a pipeline outside any git repository runs from its folder as it
    is. Exit 0 when the job succeeded, 1 when it failed or was cancelled, 2 on a usage error, 3 on an operational one.
    """
    if executor == "local":  # its task launcher starts on another core while the rest of the command loads
        from fasttrack_gitops.engine.executors.local import start_launcher_early

        start_launcher_early()
    from fasttrack_gitops.commands.running import run_job
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.core.pipeline.params import parse_assignments
    from fasttrack_gitops.core.pipeline.yamlsource import Limits
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.core.taskenv import check_secrets
    from fasttrack_gitops.engine.launch import snapshot_store
    from fasttrack_gitops.engine.plan import NotInSnapshot, plan_file
    from fasttrack_gitops.engine.state.store import Store

    if rev is not None and worktree:
        raise UsageError("--rev and --worktree exclude each other: a job runs a commit or the working tree")
    overrides = parse_assignments(params)
    repo_dir, relpath = locate(pipeline, repo)
    with Store(state_dir) as store:  # closed (and checkpointed) before the process ends, not at its teardown
        try:
            planned = plan_file(
                repo_dir,
                relpath,
                rev=rev,
                worktree=worktree,
                objects=snapshot_store(store),
                shown=pipeline,
                limits=Limits(max_bytes=max_file_size),
                params=overrides,
            )
        except NotInSnapshot as e:
            advice = "; commit it, or run the working tree with --worktree" if e.snapshot.kind == "commit" else ""
            raise UsageError(f"{e}{advice}") from None
        for d in planned.diagnostics:
            click.echo(text_line(d), err=True)
        if planned.job is None:
            click.echo("the pipeline is not valid; no job was created", err=True)
            return 1
        secrets = gather_secrets(secrets_file)
        check_secrets(planned.job.pipeline_model(), secrets)
        job = planned.job
        if no_cache:  # the task cache's code is imported only when asked for (a run without cached tasks needs none)
            from fasttrack_gitops.engine.cache.job_cache import without_reuse

            job = without_reuse(job)
        return run_job(
            job,
            store,
            planned.snapshot,
            executor=executor,
            secrets=secrets,
            max_parallel=max_parallel,
            fmt=fmt,
            executor_options={"keep_services": True} if keep_services else None,
        )


def locate(pipeline: str, repo: str | None):
    """(the pipeline repository's folder, the pipeline's path inside it)."""
    from pathlib import Path

    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.engine.workspace import find_root

    given = Path(pipeline)
    if repo is not None:
        root = Path(repo)
        if not root.is_dir():
            raise UsageError(f"--repo {repo}: no such folder")
        if given.is_absolute() or given.exists():
            try:
                return root, given.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                raise UsageError(f"{pipeline} is not inside the repository {repo}") from None
        return root, given.as_posix()  # a path inside the repository, perhaps only at another commit
    if not given.parent.is_dir():
        raise UsageError(f"{pipeline}: no such file or folder")
    root, _ = find_root(given)
    return root, given.resolve().relative_to(root).as_posix()


def gather_secrets(secrets_file: str | None) -> dict[str, str]:
    """FTG_SECRET_NAME variables, overridden by the --secrets-file's NAME=value lines."""
    import os
    from pathlib import Path

    from fasttrack_gitops.core.taskenv import parse_dotenv, secrets_from_environ

    secrets = secrets_from_environ(os.environ)
    if secrets_file:
        secrets.update(parse_dotenv(Path(secrets_file).read_text(encoding="utf-8"), secrets_file))
    return secrets
