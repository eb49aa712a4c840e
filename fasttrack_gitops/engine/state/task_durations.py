"""How long a pipeline's tasks took in its recent jobs: the estimates the scheduler orders a critical path by.

A task's duration is from its first attempt's start to its last one's end,
retries included, in a job where it succeeded; the estimate is the median
of its most recent ones.
"""

from __future__ import annotations

import sqlite3

LOOKBACK = 10  # median_durations looks at most limit_jobs * LOOKBACK jobs back


def median_durations(
    cx: sqlite3.Connection, pipeline: str, limit_jobs: int, repository: str | None = None
) -> dict[str, float]:
    """Task name -> median duration (seconds) of its last `limit_jobs` succeeded instances; tasks never seen are
    absent. `repository`: only that repository's jobs of the pipeline (None: any repository's)."""
    rows = cx.execute(
        """
        WITH recent AS (
            SELECT id, created_at FROM jobs WHERE pipeline = ?1 AND (?4 IS NULL OR repository = ?4)
            ORDER BY created_at DESC, id DESC LIMIT ?2),
        spans AS (
            SELECT t.name, max(a.ended_at) - min(a.started_at) AS duration,
                   row_number() OVER (PARTITION BY t.name ORDER BY r.created_at DESC, r.id DESC) AS nth
            FROM recent r
            JOIN task_instances t ON t.job_id = r.id AND t.state = 'succeeded'
            JOIN attempts a ON a.job_id = t.job_id AND a.task = t.name
            GROUP BY t.job_id, t.name HAVING count(a.ended_at) = count(*))
        SELECT name, duration FROM spans WHERE nth <= ?3""",
        (pipeline, limit_jobs * LOOKBACK, limit_jobs, repository),
    ).fetchall()
    durations: dict[str, list[float]] = {}
    for name, duration in rows:
        durations.setdefault(name, []).append(duration)
    return {name: _median(values) for name, values in durations.items()}


def _median(values: list[float]) -> float:
    """statistics.median, written out: that module imports fractions, decimal and random, a few ms of every `run`'s
    start-up for one sort."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
