"""`fasttrack-gitops jobs`: list, show, follow the logs of, cancel and re-run stored jobs (`outputs`: outputs.py,
`metrics`: metrics.py)."""

from __future__ import annotations

import click

from fasttrack_gitops.commands.metrics import metrics
from fasttrack_gitops.commands.options import executor_option, format_option, no_cache_option, state_dir_option
from fasttrack_gitops.commands.outputs import outputs


@click.group("jobs")
def group() -> None:
    """Jobs in the state directory: list, show, logs, outputs, cancel, rerun.

    JOB is a job id or any unique prefix of one.
    """


@group.command("list")
@click.option("--pipeline", default=None, help="Only jobs of this pipeline.")
@click.option(
    "--status",
    type=click.Choice(["pending", "running", "succeeded", "failed", "cancelled", "interrupted"]),
    default=None,
    help="Only jobs with this status.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@state_dir_option
@format_option
def list_jobs(pipeline: str | None, status: str | None, limit: int, state_dir, fmt: str) -> int:
    """The newest jobs first."""
    from fasttrack_gitops.core.job import JobStatus
    from fasttrack_gitops.core.render.jobs import job_record, jobs_table

    views = _store(state_dir).list_jobs(pipeline=pipeline, status=JobStatus(status) if status else None, limit=limit)
    if fmt == "json":
        _json([job_record(v) for v in views])
    elif views:
        click.echo(jobs_table(views), nl=False)
    else:
        click.echo("no jobs yet: start one with fasttrack-gitops run PIPELINE", err=True)
    return 0


@group.command("show")
@click.argument("job")
@click.option("--cache", "with_cache", is_flag=True, help="Each task's cache key, its ingredients, and the decision.")
@state_dir_option
@format_option
def show(job: str, with_cache: bool, state_dir, fmt: str) -> int:
    """A job's record, its tasks, and where each would run on a cluster."""
    from fasttrack_gitops.core.render.cache import cache_text
    from fasttrack_gitops.core.render.jobs import job_record, job_summary

    store = _store(state_dir)
    view = store.view(job)
    records = store.task_cache(view.job.id) if with_cache else {}
    if fmt == "json":
        _json({**job_record(view), "cache": records} if with_cache else job_record(view))
    elif with_cache:
        click.echo(cache_text(view, records), nl=False)
    else:
        click.echo(job_summary(view, details=True), nl=False)
    return 0


@group.command("logs")
@click.argument("job")
@click.argument("task", required=False)
@click.option("--attempt", type=click.IntRange(min=1), default=None, help="This attempt (default: the last).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the job runs.")
@state_dir_option
def logs(job: str, task: str | None, attempt: int | None, follow: bool, state_dir) -> int:
    """The output of a task's attempt (every task's last attempt without TASK)."""
    from fasttrack_gitops.commands.logs import follow_logs, print_logs
    from fasttrack_gitops.core.errors import UsageError

    store = _store(state_dir)
    view = store.view(job)
    if task is not None and task not in view.tasks:
        from fasttrack_gitops.core.pipeline.diagnostics import did_you_mean

        raise UsageError(f"job {view.job.id} has no task '{task}'{did_you_mean(task, view.tasks)}")
    if follow:
        return follow_logs(store, view.job.id, task, attempt)
    return print_logs(store, view, task, attempt)


group.add_command(outputs)
group.add_command(metrics)


@group.command("cancel")
@click.argument("job")
@state_dir_option
def cancel(job: str, state_dir) -> int:
    """Ask the job's runner to stop it (running attempts are killed, waiting tasks cancelled)."""
    import time

    from fasttrack_gitops.core.job import ENDED, Outcome, TaskState

    store = _store(state_dir)
    view = store.view(job)
    if view.status.value in ("succeeded", "failed", "cancelled"):
        click.echo(f"job {view.job.id} has already ended: {view.status}")
        return 0
    store.request_cancel(view.job.id)
    if not view.runner_alive:  # nobody will act on the request: record it ourselves
        with store.claim(view.job.id):
            for name, instance in view.tasks.items():
                if instance.state in ENDED:
                    continue
                for a in instance.attempts:
                    if a.ended_at is None:
                        store.end_attempt(
                            view.job.id,
                            name,
                            a.number,
                            ended_at=time.time(),
                            exit_code=None,
                            outcome=Outcome.INTERRUPTED,
                            message="its runner stopped while it ran",
                        )
                store.set_task_state(view.job.id, name, TaskState.CANCELLED, reason="the job was cancelled")
    click.echo(f"job {view.job.id}: cancel requested")
    return 0


@group.command("rerun")
@click.argument("job")
@click.option("--failed-only", is_flag=True, help="Reuse the outputs of the tasks that succeeded; run the rest.")
@executor_option
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, metavar="N")
@click.option("--secrets-file", type=click.Path(exists=True, dir_okay=False), metavar="FILE")
@no_cache_option
@state_dir_option
@format_option
def rerun(
    job: str,
    failed_only: bool,
    executor: str,
    max_parallel: int | None,
    secrets_file: str | None,
    no_cache: bool,
    state_dir,
    fmt: str,
) -> int:
    """A new job with the same frozen spec and snapshot, run like `run` runs one."""
    from pathlib import Path

    from fasttrack_gitops.commands.run import gather_secrets
    from fasttrack_gitops.commands.running import run_job
    from fasttrack_gitops.core.errors import UsageError
    from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic
    from fasttrack_gitops.core.render.diagnostics import text_line
    from fasttrack_gitops.core.taskenv import check_secrets
    from fasttrack_gitops.engine.cache.job_cache import without_reuse
    from fasttrack_gitops.engine.launch import source_of
    from fasttrack_gitops.engine.plan import rerun_job

    store = _store(state_dir)
    old = store.view(job)
    if old.job.invalid:
        raise UsageError(
            f"job {old.job.id} ran nothing: {old.job.pipeline_path} was not valid at commit "
            f"{(old.job.commit or '')[:12]}; fix the file and commit it"
        )
    if not Path(old.job.repository).is_dir():
        raise UsageError(
            f"job {old.job.id} was made by the daemon from {old.job.repository}; re-run it there "
            "(the check's Re-run button, /fasttrack retest, or fasttrack-gitops trigger)"
        )
    new = rerun_job(old.job)
    if no_cache:
        new = without_reuse(new)
    for d in new.diagnostics:  # what the job does not do as its file says (params), as `run` showed it
        click.echo(text_line(Diagnostic(**d)), err=True)
    secrets = gather_secrets(secrets_file)
    check_secrets(new.pipeline_model(), secrets)
    source = source_of(old.job, store)
    return run_job(
        new,
        store,
        source,
        executor=executor,
        secrets=secrets,
        max_parallel=max_parallel,
        fmt=fmt,
        failed_only=failed_only,
    )


def _store(state_dir):
    from fasttrack_gitops.engine.state.store import Store

    return Store(state_dir)


def _json(data) -> None:
    import json

    click.echo(json.dumps(data, indent=2))
