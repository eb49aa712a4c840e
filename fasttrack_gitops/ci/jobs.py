"""The pipeline jobs of a step: launched side by side in the step, each task's log streamed into a group of its own.

Each job is stored, reported (queued), and run by engine/launch.py like any
other; when a task ends, its log (masked) is printed in a `::group::` of
its own, so the step's log reads task by task even when jobs run side by
side. A few jobs run at once. SIGINT/SIGTERM (the workflow was cancelled)
cancels them: running tasks are stopped and the checks say "cancelled".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fasttrack_gitops.ci.reporters import Reporters
from fasttrack_gitops.ci.workflow import Log
from fasttrack_gitops.core.job import ENDED, JobView, PipelineJob, TaskInstance, TaskState
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.engine.executors.base import Executor
from fasttrack_gitops.engine.launch import Launch, stop_signals
from fasttrack_gitops.engine.state.store import Store

MAX_JOBS = 4  # jobs of one step running at once
LOG_BYTES = 4 * 1024 * 1024  # at most this much of a task's log is printed (its end)
LOG_LINES = 100_000


async def run_jobs(
    jobs: Sequence[PipelineJob],
    *,
    store: Store,
    executor: Executor,
    source,
    secrets: dict[str, str],
    masks: Sequence[str],
    reporters: Reporters,
    log: Log,
) -> list[JobView]:
    """Run every job to its end with the executor (the caller closes it); their views, in the order given."""
    slots = asyncio.Semaphore(MAX_JOBS)
    launches: list[Launch] = []
    stopping: list[bool] = []

    def cancel_all() -> None:
        log.line("cancelling the jobs: the workflow run was cancelled")
        stopping.append(True)  # jobs still waiting for a slot end cancelled at once
        for launch in launches:
            launch.cancel()

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

            launch = Launch(job, store, executor, source=source, secrets=secrets, on_change=on_change)
            launches.append(launch)
            if stopping:
                launch.cancel()
            await launch.run()
            await asyncio.gather(*pending)
            await reporters.update(store, job.id, final=True)
            return store.view(job.id)

    with stop_signals(lambda sig: cancel_all()):
        for job in jobs:  # every job shows as queued at once, also those waiting for a slot
            store.create_job(job)
            await reporters.update(store, job.id)
        return list(await asyncio.gather(*(run_one(job) for job in jobs)))


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
