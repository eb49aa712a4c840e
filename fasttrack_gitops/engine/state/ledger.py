"""The daemon's ledger: its rows in the state database beside the jobs (store.py).

What keeps the daemon idempotent and lets it pick up where it stopped:
- job_keys: one job per (repository, commit, pipeline file, trigger key),
  however many times a webhook, a poll and a watch report the same commit;
- queue: the jobs the daemon owns, queued until a slot and their
  concurrency group let them start, then started, then done;
- deliveries: webhook deliveries already handled (a replay does nothing);
- schedule_ticks: the last cron tick run per pipeline, so downtime costs
  one run, not one per missed tick;
- positions: where each followed ref was last seen, so a restart notices
  what moved while it was down;
- pr_gates: pull requests from forks, held until a member approves them.

The schema is migration 2 in migrations.py; the queries are all here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fasttrack_gitops.core.comment_commands import Gate
from fasttrack_gitops.core.job import ENDED, PipelineJob, TaskState
from fasttrack_gitops.engine.state.migrations import translated, writing
from fasttrack_gitops.engine.state.store import Store

_ENDED = tuple(s.value for s in ENDED)


@dataclass(frozen=True)
class JobKey:
    repository: str
    commit: str
    pipeline_path: str
    trigger_key: str


@dataclass(frozen=True)
class Queued:
    """A job the daemon owns, as the queue has it."""

    job_id: str
    group: str | None
    cancel_in_progress: bool
    queued_at: float
    started_at: float | None


class Ledger:
    """The daemon's tables, through the store's connection (same thread rules as the Store)."""

    def __init__(self, store: Store):
        self.store = store
        self._cx = store._cx  # one connection per thread: the ledger shares the store's
        self._db = store._db  # for @translated

    # -- jobs: one per trigger, queued

    @translated
    def add_job(
        self,
        key: JobKey,
        job: PipelineJob,
        *,
        group: str | None = None,
        cancel_in_progress: bool = False,
        queue: bool = True,
    ) -> tuple[str, bool]:
        """Store the job under its key unless the key has one: (the key's job id, whether it is new).

        The key, the job and its queue entry go in one transaction, so two
        deliveries of the same push racing each other make one job.
        """
        with writing(self._cx) as cx:
            row = cx.execute(
                "SELECT job_id FROM job_keys WHERE repository = ? AND commit_id = ? AND pipeline_path = ?"
                " AND trigger_key = ?",
                (key.repository, key.commit, key.pipeline_path, key.trigger_key),
            ).fetchone()
            if row is not None:
                return row[0], False
            self.store.insert_job(cx, job)
            cx.execute(
                "INSERT INTO job_keys (repository, commit_id, pipeline_path, trigger_key, job_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (key.repository, key.commit, key.pipeline_path, key.trigger_key, job.id),
            )
            if queue and not job.invalid:
                cx.execute(
                    "INSERT INTO queue (job_id, concurrency_group, cancel_in_progress, queued_at) VALUES (?, ?, ?, ?)",
                    (job.id, group, int(cancel_in_progress), job.created_at),
                )
        return job.id, True

    @translated
    def open_queue(self) -> list[Queued]:
        """Jobs queued or started and not done, oldest first."""
        rows = self._cx.execute(
            "SELECT job_id, concurrency_group, cancel_in_progress, queued_at, started_at"
            " FROM queue WHERE done_at IS NULL ORDER BY queued_at, job_id"
        )
        return [Queued(j, g, bool(c), q, s) for j, g, c, q, s in rows]

    @translated
    def mark_started(self, job_id: str, at: float | None = None) -> None:
        with writing(self._cx) as cx:
            cx.execute("UPDATE queue SET started_at = ? WHERE job_id = ?", (at or time.time(), job_id))

    @translated
    def mark_done(self, job_id: str, at: float | None = None) -> None:
        with writing(self._cx) as cx:
            cx.execute("UPDATE queue SET done_at = ? WHERE job_id = ? AND done_at IS NULL", (at or time.time(), job_id))

    @translated
    def end_unstarted(self, job_id: str, reason: str, state: TaskState = TaskState.CANCELLED) -> bool:
        """End a queued job that never started: its tasks cancelled, or failed (it stays in history)."""
        now = time.time()
        with writing(self._cx) as cx:
            done = cx.execute(
                "UPDATE queue SET done_at = ? WHERE job_id = ? AND started_at IS NULL AND done_at IS NULL",
                (now, job_id),
            ).rowcount
            if not done:
                return False
            names = [
                r[0]
                for r in cx.execute(
                    f"SELECT name FROM task_instances WHERE job_id = ? AND state NOT IN ({','.join('?' * len(_ENDED))})"
                    " ORDER BY position",
                    (job_id, *_ENDED),
                )
            ]
            cx.execute(
                f"UPDATE task_instances SET state = ?, reason = ? WHERE job_id = ?"
                f" AND state NOT IN ({','.join('?' * len(_ENDED))})",
                (state.value, reason, job_id, *_ENDED),
            )
            for name in names:
                self.store._event(cx, job_id, f"task.{state.value}", name, {"reason": reason}, now)
            self.store._event(cx, job_id, f"job.{state.value}", None, {"reason": reason}, now)
        return True

    @translated
    def jobs_of(
        self, repository: str, *, commit: str | None = None, trigger_prefix: str | None = None, open_only: bool = False
    ) -> list[str]:
        """Ids of the jobs made for a repository (at a commit; whose trigger key starts so), newest first."""
        query = (
            "SELECT k.job_id FROM job_keys k JOIN jobs j ON j.id = k.job_id"
            " LEFT JOIN queue q ON q.job_id = k.job_id WHERE k.repository = ?"
        )
        params: list = [repository]
        if commit is not None:
            query += " AND k.commit_id = ?"
            params.append(commit)
        if trigger_prefix is not None:
            query += " AND k.trigger_key >= ? AND k.trigger_key < ?"
            params += [trigger_prefix, trigger_prefix + "\U0010ffff"]
        if open_only:
            query += " AND q.job_id IS NOT NULL AND q.done_at IS NULL"
        query += " ORDER BY j.created_at DESC, j.id DESC"
        return [r[0] for r in self._cx.execute(query, params)]

    @translated
    @translated
    def open_counts(self) -> tuple[int, int]:
        """(queued, running) jobs of the open queue, counted by SQLite: /healthz asks it at each probe, and a
        burst can leave thousands queued (open_queue() built an object per row: a third of a loaded loop's time)."""
        queued, running = self._cx.execute(
            "SELECT count(*) - count(started_at), count(started_at) FROM queue WHERE done_at IS NULL"
        ).fetchone()
        return queued, running

    def queue_depth(self) -> int:
        return self._cx.execute("SELECT count(*) FROM queue WHERE done_at IS NULL AND started_at IS NULL").fetchone()[0]

    # -- webhook deliveries

    @translated
    def seen_delivery(self, provider: str, delivery_id: str) -> bool:
        return (
            self._cx.execute(
                "SELECT 1 FROM deliveries WHERE provider = ? AND id = ?", (provider, delivery_id)
            ).fetchone()
            is not None
        )

    @translated
    def record_delivery(self, provider: str, delivery_id: str, event: str, result: str) -> bool:
        """Remember a handled delivery; False when it was recorded already (a replay)."""
        with writing(self._cx) as cx:
            return (
                cx.execute(
                    "INSERT OR IGNORE INTO deliveries (provider, id, received_at, event, result)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (provider, delivery_id, time.time(), event, result),
                ).rowcount
                == 1
            )

    @translated
    def forget_deliveries(self, before: float) -> int:
        """Drop delivery ids older than `before` (GitHub redelivers for days, not months)."""
        with writing(self._cx) as cx:
            return cx.execute("DELETE FROM deliveries WHERE received_at < ?", (before,)).rowcount

    # -- schedules and positions

    @translated
    def last_tick(self, repository: str, pipeline_path: str, cron: str) -> float | None:
        row = self._cx.execute(
            "SELECT last_at FROM schedule_ticks WHERE repository = ? AND pipeline_path = ? AND cron = ?",
            (repository, pipeline_path, cron),
        ).fetchone()
        return row[0] if row else None

    @translated
    def set_tick(self, repository: str, pipeline_path: str, cron: str, at: float) -> None:
        with writing(self._cx) as cx:
            cx.execute(
                "INSERT INTO schedule_ticks (repository, pipeline_path, cron, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET last_at = excluded.last_at",
                (repository, pipeline_path, cron, at),
            )

    @translated
    def positions(self, repository: str) -> dict[str, str]:
        rows = self._cx.execute("SELECT ref, commit_id FROM positions WHERE repository = ?", (repository,))
        return dict(rows.fetchall())

    @translated
    def set_positions(self, repository: str, moves: Iterable[tuple[str, str | None]]) -> None:
        """Record where refs are now; None for a ref that is gone."""
        with writing(self._cx) as cx:
            for ref, commit in moves:
                if commit is None:
                    cx.execute("DELETE FROM positions WHERE repository = ? AND ref = ?", (repository, ref))
                else:
                    cx.execute(
                        "INSERT INTO positions (repository, ref, commit_id) VALUES (?, ?, ?)"
                        " ON CONFLICT DO UPDATE SET commit_id = excluded.commit_id",
                        (repository, ref, commit),
                    )

    # -- pull requests from forks

    @translated
    def hold(self, repository: str, number: int, head_sha: str, event: dict) -> bool:
        """Hold a fork's pull request head until approved; False when it was held already."""
        with writing(self._cx) as cx:
            return (
                cx.execute(
                    "INSERT OR IGNORE INTO pr_gates (repository, number, head_sha, event_json, held_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (repository, number, head_sha, json.dumps(event), time.time()),
                ).rowcount
                == 1
            )

    @translated
    def approve(self, repository: str, number: int, by: str) -> Gate | None:
        """Approve the pull request's newest held head; the gate, or None when nothing is held."""
        with writing(self._cx) as cx:
            row = cx.execute(
                "SELECT head_sha FROM pr_gates WHERE repository = ? AND number = ? ORDER BY held_at DESC LIMIT 1",
                (repository, number),
            ).fetchone()
            if row is None:
                return None
            cx.execute(
                "UPDATE pr_gates SET approved_by = coalesce(approved_by, ?), approved_at = coalesce("
                "approved_at, ?) WHERE repository = ? AND number = ? AND head_sha = ?",
                (by, time.time(), repository, number, row[0]),
            )
        return self.gate(repository, number, row[0])

    @translated
    def gate(self, repository: str, number: int, head_sha: str) -> Gate | None:
        row = self._cx.execute(
            "SELECT event_json, held_at, approved_by FROM pr_gates WHERE repository = ?"
            " AND number = ? AND head_sha = ?",
            (repository, number, head_sha),
        ).fetchone()
        if row is None:
            return None
        return Gate(repository, number, head_sha, json.loads(row[0]), row[1], row[2])

    @translated
    def gates(self, *, waiting_only: bool = True) -> list[Gate]:
        query = "SELECT repository, number, head_sha, event_json, held_at, approved_by FROM pr_gates"
        if waiting_only:
            query += " WHERE approved_by IS NULL"
        rows = self._cx.execute(query + " ORDER BY held_at DESC").fetchall()
        return [Gate(r, n, h, json.loads(e), at, by) for r, n, h, e, at, by in rows]


__all__ = ["JobKey", "Ledger", "Queued"]
