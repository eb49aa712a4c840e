"""Model results in the state database: the metrics each task instance's declared files held, and the baseline.

The runner records a task's metrics once it succeeded (engine/results.py
reads its files); reports, `jobs metrics` and the HTTP API read them here,
never the files again, so a report costs no I/O on the outputs and a job
whose outputs were deleted keeps its numbers. A reused task's metrics are
those recorded for the job whose outputs it reuses.

The baseline is our own record, not a metric file in git: the newest job of
the same pipeline at the base commit that succeeded (core/metrics.py
compares with it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fasttrack_gitops.core.job import JobStatus, JobView
from fasttrack_gitops.engine.state.migrations import translated, writing
from fasttrack_gitops.engine.state.store import Store


@dataclass(frozen=True)
class TaskResults:
    metrics: Mapping[str, float]
    problems: tuple[str, ...]  # "metrics.json: not found in the outputs", ...


class Results:
    """The task_results table; shares the store's connection (one per thread)."""

    def __init__(self, store: Store):
        self.store = store
        self._cx = store._cx
        self._db = store._db  # for @translated

    @translated
    def record(self, job_id: str, task: str, metrics: Mapping[str, float], problems: Sequence[str]) -> None:
        with writing(self._cx) as cx:
            cx.execute(
                "INSERT INTO task_results (job_id, task, metrics_json, problems_json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job_id, task) DO UPDATE SET metrics_json = excluded.metrics_json,"
                " problems_json = excluded.problems_json",
                (job_id, task, json.dumps(dict(metrics), sort_keys=True), json.dumps(list(problems))),
            )

    @translated
    def of_task(self, job_id: str, task: str) -> TaskResults | None:
        row = self._cx.execute(
            "SELECT metrics_json, problems_json FROM task_results WHERE job_id = ? AND task = ?", (job_id, task)
        ).fetchone()
        return TaskResults(json.loads(row[0]), tuple(json.loads(row[1]))) if row else None

    def of_job(self, view: JobView) -> dict[str, TaskResults]:
        """Each task's recorded results; a reused task's come from the job it reuses."""
        found: dict[str, TaskResults] = {}
        for name, instance in view.tasks.items():
            recorded = self.of_task(instance.reused_from or view.job.id, name)
            if recorded is not None:
                found[name] = recorded
        return found

    @translated
    def baseline(self, view: JobView, commit: str | None) -> JobView | None:
        """The newest succeeded job of the view's pipeline (same repository and file) at `commit`, not itself."""
        if not commit:
            return None
        job = view.job
        rows = self._cx.execute(
            "SELECT id FROM jobs WHERE repository = ? AND commit_id = ? AND pipeline_path = ? AND id != ?"
            " ORDER BY created_at DESC, id DESC",
            (job.repository, commit, job.pipeline_path, job.id),
        ).fetchall()
        for (job_id,) in rows:
            candidate = self.store.view(job_id)
            if candidate.status == JobStatus.SUCCEEDED:
                return candidate
        return None
