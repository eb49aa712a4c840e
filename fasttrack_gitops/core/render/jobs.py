"""Jobs as records (JSON, the same for `run`, `jobs` and the daemon's API) and as terminal tables."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from fasttrack_gitops.core.job import JobView, TaskInstance
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.core.pipeline.params import Param, env_text
from fasttrack_gitops.core.pipeline.units import format_duration


def job_record(view: JobView) -> dict[str, Any]:
    """A JobView as plain JSON data."""
    job = view.job
    pipeline = None if job.invalid else job.pipeline_model()
    record: dict[str, Any] = {
        "id": job.id,
        "status": str(view.status),
        "pipeline": job.pipeline,
        "pipeline_path": job.pipeline_path,
        "repository": job.repository,
        "source": job.source,
        "commit": job.commit,
        "ref": job.ref,
        "dirty": job.dirty,
        "spec_id": job.spec_id,
        "trigger": dict(job.trigger),
        "created_at": _iso(job.created_at),
        "rerun_of": job.rerun_of,
        "cancel_requested": view.cancel_requested,
        "tasks": [
            task_record(instance, pipeline.task(name), job.code_trees.get(name))
            for name, instance in view.tasks.items()
        ]
        if pipeline is not None
        else [],
    }
    if pipeline is not None:
        record["params"] = [param_record(p) for p in pipeline.params]
    if job.invalid:  # the pipeline file was not valid at the commit: why, instead of tasks
        record["diagnostics"] = [dict(d) for d in job.diagnostics]
    return record


def param_record(param: Param) -> dict[str, Any]:
    """A job's parameter: the value it runs with, where a task reads it, and whether it was given."""
    return {
        "name": param.name,
        "type": param.type,
        "value": param.value,
        "default": param.default,
        "overridden": param.overridden,
        "env": param.env_name,
    }


def params_line(params: Sequence[Param]) -> str:
    """'params: lr=0.01 (given; default 0.001) · epochs=3', or '' when the pipeline has none."""
    if not params:
        return ""
    shown = [
        f"{p.name}={env_text(p.value)}" + (f" (given; default {env_text(p.default)})" if p.overridden else "")
        for p in params
    ]
    return "params: " + " · ".join(shown)


def task_record(instance: TaskInstance, task: Task, code_tree: str | None) -> dict[str, Any]:
    return {
        "name": instance.name,
        # What a Backend.AI session would get; recorded and shown, not used by a local run.
        "image": task.image,
        "scaling_group": task.scaling_group,
        "cluster": {"mode": task.cluster_mode, "size": task.cluster_size},
        "resources": task.resources.describe(),
        "code_tree": code_tree,
        "status": str(instance.state),
        "reason": instance.reason,
        "reused_from": instance.reused_from,  # the job whose outputs a reused task stands on
        # A deployment task's ready service: where it answers, and for a non-public one how to get a token.
        "url": instance.service.url if instance.service else None,
        "service": instance.service.as_dict() if instance.service else None,
        "exit_code": instance.exit_code,
        "duration": instance.duration,
        "attempts": [
            {
                "number": a.number,
                "started_at": _iso(a.started_at),
                "ended_at": _iso(a.ended_at) if a.ended_at is not None else None,
                "duration": a.duration,
                "exit_code": a.exit_code,
                "outcome": str(a.outcome) if a.outcome is not None else None,
                "message": a.message,
            }
            for a in instance.attempts
        ],
    }


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def elapsed(instance: TaskInstance, now: float | None = None) -> str:
    if not instance.attempts:
        return ""
    last = instance.attempts[-1]
    end = last.ended_at if last.ended_at is not None else (now or time.time())
    return format_duration(max(0.0, end - instance.attempts[0].started_at))


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain aligned table (terminals, logs, CI output alike)."""
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def task_table(view: JobView, now: float | None = None) -> str:
    rows = []
    for instance in view.tasks.values():
        attempts = len(instance.attempts)
        rows.append(
            (
                instance.name,
                str(instance.state),
                elapsed(instance, now),
                str(attempts) if attempts else "-",
                "" if instance.exit_code is None else str(instance.exit_code),
                _note(instance),
            )
        )
    return table(rows, ("task", "status", "duration", "attempts", "exit", "note"))


def _note(instance: TaskInstance) -> str:
    """The task's reason, or for a ready deployment task its URL (and how to get a token)."""
    service = instance.service
    if service is None:
        return instance.reason
    return " ".join(part for part in (service.url, "" if service.public else f"(token: {service.access})") if part)


def job_summary(view: JobView, *, details: bool = False) -> str:
    """The job's headline and task table; with details, where each task would run on a cluster too."""
    job = view.job
    where = job.commit[:12] if job.commit else job.source
    if job.dirty:
        where += " + uncommitted changes"
    head = f"job {job.id}  {job.pipeline}  {view.status}  ({where})"
    if job.invalid:  # no tasks: the diagnostics that kept it from running
        from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic
        from fasttrack_gitops.core.render.diagnostics import text_line

        lines = [text_line(Diagnostic(**d)) for d in job.diagnostics]
        return head + "\n\n" + "\n".join(lines) + "\n"
    pipeline = job.pipeline_model()
    given = params_line(pipeline.params)
    text = head + ("\n" + given if given else "") + "\n\n" + task_table(view)
    if details:
        rows = [
            (
                t.name,
                t.image or "-",
                t.resources.describe(),
                t.scaling_group or "-",
                f"{t.cluster_mode} x{t.cluster_size}",
                job.code_trees.get(t.name, "")[:12],
            )
            for t in pipeline.tasks
        ]
        text += "\n" + table(rows, ("task", "image", "resources", "scaling group", "cluster", "code tree"))
    return text


def jobs_table(views: Iterable[JobView]) -> str:
    rows = []
    for view in views:
        job = view.job
        done = sum(1 for i in view.tasks.values() if i.ended)
        rows.append(
            (
                job.id,
                job.pipeline,
                str(view.status),
                f"{done}/{len(view.tasks)}",
                (job.commit or job.source)[:12],
                _iso(job.created_at).replace("T", " ").rstrip("Z"),
            )
        )
    return table(rows, ("job", "pipeline", "status", "tasks", "commit", "created (UTC)"))
