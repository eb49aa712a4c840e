"""Running a job from the command line: its warnings, live progress, Ctrl-C, its record and exit code.

Shared by `run` and `jobs rerun`, so both show the same progress, print the
same record and exit with the same codes; engine/launch.py does the running.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

import click

from fasttrack_gitops.commands import startup
from fasttrack_gitops.core.job import JobStatus, JobView, PipelineJob, TaskState
from fasttrack_gitops.engine.state.store import Store


def run_job(
    job: PipelineJob,
    store: Store,
    source,
    *,
    executor: str,
    secrets: Mapping[str, str],
    max_parallel: int | None,
    fmt: str,
    failed_only: bool = False,
    executor_options: Mapping[str, Any] | None = None,
) -> int:
    """Store a new job and run it to its end, showing progress; print its record; the exit code."""
    import asyncio

    from fasttrack_gitops.commands.progress import progress_for
    from fasttrack_gitops.core.render.jobs import job_record, job_summary
    from fasttrack_gitops.core.taskenv import task_environment
    from fasttrack_gitops.engine.launch import Launch, opened_executor, stop_signals

    pipeline = job.pipeline_model()
    shown: set[str] = set()
    for task in pipeline.tasks:
        for warning in task_environment(pipeline, task, secrets).warnings:
            click.echo(f"warning: {warning}", err=True)
            shown.add(warning)

    async def main() -> JobView:
        async with opened_executor(executor, **(executor_options or {})) as opened:
            with progress_for(job) as progress:
                launch = Launch(
                    job,
                    store,
                    opened,
                    source=source,
                    secrets=secrets,
                    max_parallel=max_parallel,
                    failed_only=failed_only,
                    new=True,
                    on_change=progress.change,
                )

                def stop(sig: signal.Signals) -> None:
                    if sig == signal.SIGINT:
                        click.echo("\ncancelling the job (Ctrl-C again to stop at once)", err=True)
                    launch.cancel()

                with stop_signals(stop, second_interrupt_raises=True):
                    return await launch.run()

    startup.started()  # what start-up made lives for the whole run: each collection walks only what the run makes
    view = asyncio.run(main())
    # What the run found on its way (the cache's: outputs that cannot be cached, a damaged entry), said once.
    for event in store.events(view.job.id):
        message = event.data.get("message", "") if event.kind == "task.warning" else ""
        if message and message not in shown:
            click.echo(f"warning: task '{event.task}': {message}", err=True)
            shown.add(message)
    found = None
    if any(t.metrics is not None for t in pipeline.tasks):  # else the results code is not even imported (start-up)
        from fasttrack_gitops.core.metrics import as_json as metrics_json
        from fasttrack_gitops.core.reports.results import gate_title, results_text
        from fasttrack_gitops.engine.results import base_label, comparison

        found = comparison(store, view)
    if fmt == "json":
        import json

        record = job_record(view)
        if found is not None:
            record["metrics"] = metrics_json(found)
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(job_summary(view), nl=False)
        if found is not None:
            click.echo(f"\nmodel results (baseline: {base_label(view, found)})\n{results_text(found)}", nl=False)
        _point_at_logs(view)
    if found is not None and found.gates_failed and view.status == JobStatus.SUCCEEDED:
        click.echo(f"gate failed: {gate_title(found)}", err=True)
        return 1
    return 0 if view.status == JobStatus.SUCCEEDED else 1


def _point_at_logs(view: JobView) -> None:
    failed = [name for name, i in view.tasks.items() if i.state == TaskState.FAILED]
    if failed:
        click.echo(f"\nsee why: fasttrack-gitops jobs logs {view.job.id} {failed[0]}")
