"""Running the selected jobs inside the step, with the daemon's runner, streaming each task to the log.

Each job is stored, reported (queued), driven by a `JobRunner` like any
other; when a task ends, its log (masked) is printed in a `::group::` of
its own, so the step's log reads task by task even when jobs run side by
side. A few jobs run at once. SIGINT/SIGTERM (the workflow was cancelled)
cancels them: running tasks are stopped and the checks say "cancelled".
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

from fasttrack_gitops.ci.reporters import Reporters
from fasttrack_gitops.ci.workflow import Log
from fasttrack_gitops.core.job import ENDED, JobView, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.engine.state.store import Store

MAX_JOBS = 4  # jobs of one step running at once
LOG_BYTES = 4 * 1024 * 1024  # at most this much of a task's log is printed (its end)
LOG_LINES = 100_000


async def run_jobs(
    jobs: Sequence[PipelineJob],
    *,
    store: Store,
    executor,
    source,
    secrets: dict[str, str],
    masks: Sequence[str],
    reporters: Reporters,
    log: Log,
) -> list[JobView]:
    """Run every job to its end; their views, in the order given."""
    from fasttrack_gitops.engine.launch import Workdirs
    from fasttrack_gitops.engine.runner import JobRunner

    slots = asyncio.Semaphore(MAX_JOBS)
    runners: list = []
    loop = asyncio.get_running_loop()

    stopping: list[bool] = []

    def cancel_all() -> None:
        log.line("cancelling the jobs: the workflow run was cancelled")
        stopping.append(True)  # jobs still waiting for a slot end cancelled at once
        for runner in runners:
            runner.cancel()

    async def run_one(job: PipelineJob) -> JobView:
        async with slots:
            pending: list[asyncio.Future] = []

            def on_change(change) -> None:
                instance = change.instance
                if instance.state == TaskState.RUNNING:
                    log.line(f"{job.pipeline} / {change.task}: running (attempt {len(instance.attempts)})")
                    if not pending:  # the job's first task started: in_progress
                        pending.append(asyncio.ensure_future(reporters.update(store, job.id)))
                elif instance.state == TaskState.WAITING and change.message:
                    log.line(masked(f"{job.pipeline} / {change.task}: {change.message}", tuple(masks)))
                elif instance.state in ENDED:
                    task_ended(store, job, instance, masks, log)

            runner = JobRunner(
                job, store, executor, workdir=Workdirs(store, job, source), secrets=secrets, on_change=on_change
            )
            runners.append(runner)
            if stopping:
                runner.cancel()
            await runner.run()
            await asyncio.gather(*pending)
            await reporters.update(store, job.id, final=True)
            return store.view(job.id)

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, cancel_all)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    try:
        for job in jobs:  # every job shows as queued at once, also those waiting for a slot
            store.create_job(job)
            await reporters.update(store, job.id)
        return list(await asyncio.gather(*(run_one(job) for job in jobs)))
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def task_ended(store: Store, job: PipelineJob, instance: TaskInstance, masks: Sequence[str], log: Log) -> None:
    """A group in the log: the task's state, its last attempt's log (masked), why it ended so."""
    from fasttrack_gitops.engine.reporters.logtail import log_tail

    hidden = tuple(m for m in masks if m)
    with log.group(f"{job.pipeline} / {instance.name} ({instance.state})"):
        if instance.attempts:
            last = instance.attempts[-1]
            path = store.log_path(job.id, instance.name, last.number)
            size = path.stat().st_size if path.exists() else 0
            if size > LOG_BYTES:
                log.line(f"(the first {size - LOG_BYTES} bytes of the log are left out)")
            log.verbatim(log_tail(path, max_bytes=LOG_BYTES, max_lines=LOG_LINES, masks=hidden))
            if len(instance.attempts) > 1:
                log.line(f"attempt {last.number} of {len(instance.attempts)}")
        if instance.reason:
            log.line(masked(instance.reason, hidden))
    if instance.state == TaskState.FAILED:
        why = masked(instance.reason or "failed", hidden)
        if job.pipeline_model().task(instance.name).continue_on_failure:
            log.warning(f"task {instance.name} failed (continue_on_failure): {why}", title=f"fasttrack/{job.pipeline}")
        else:
            log.error(f"task {instance.name} failed: {why}", title=f"fasttrack/{job.pipeline}")
