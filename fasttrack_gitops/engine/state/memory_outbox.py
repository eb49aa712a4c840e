"""The outbox of a process that keeps no state database: the GitHub Action's step.

The same rows and the same rules as outbox.py (one row per job and
reporter; `mark` bumps the version, a send records the version it sent, a
final report skips `min_interval`, `retry_at` holds a failed row back, a
row given up stays so), kept in a dict for as long as the step runs. The
step reports only its own jobs, and what it could not send by its end is
not sent later by anyone, so nothing needs to outlive it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fasttrack_gitops.engine.state.outbox import Pending


@dataclass
class _Row:
    version: int = 1
    sent_version: int = 0
    final: bool = False
    state: dict = field(default_factory=dict)
    failures: int = 0
    retry_at: float = 0.0
    not_before: float = 0.0
    sent_at: float | None = None
    last_error: str = ""
    gave_up: str | None = None

    @property
    def owed(self) -> bool:
        return self.version > self.sent_version and self.gave_up is None

    @property
    def due_at(self) -> float:
        return self.retry_at if self.final else max(self.retry_at, self.not_before)


class MemoryOutbox:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}  # (job id, reporter) -> row

    def mark(self, job_id: str, reporters: Iterable[str], *, final: bool = False) -> None:
        """The job changed: each reporter owes it a send (a final one once the job has ended)."""
        for reporter in reporters:
            row = self._rows.get((job_id, reporter))
            if row is None:
                self._rows[job_id, reporter] = _Row(final=final)
            else:
                row.version += 1
                row.final = row.final or final

    def due(self, reporter: str, now: float, *, limit: int = 50) -> list[Pending]:
        """This reporter's rows to send now: changed since the last send, not backing off, not held back by
        min_interval unless final; oldest first."""
        rows = [
            (job_id, row)
            for job_id, row in self._owed(reporter)
            if row.retry_at <= now and (row.final or row.not_before <= now)
        ]
        rows.sort(key=lambda item: (max(item[1].retry_at, item[1].not_before), item[0]))
        return [
            Pending(
                job_id,
                reporter,
                row.version,
                row.final,
                copy.deepcopy(row.state),
                row.failures,
                row.retry_at,
                row.not_before,
            )
            for job_id, row in rows[:limit]
        ]

    def next_due(self, reporter: str) -> float | None:
        """When this reporter's earliest pending row falls due (None: nothing pending)."""
        return min((row.due_at for _, row in self._owed(reporter)), default=None)

    def sent(self, row: Pending, state: dict, *, min_interval: float, now: float | None = None) -> None:
        """Sent `row.version` successfully; what the reporter remembers now."""
        now = time.time() if now is None else now
        kept = self._rows[row.job_id, row.reporter]
        kept.sent_version, kept.state = row.version, copy.deepcopy(state)
        kept.failures, kept.retry_at, kept.not_before, kept.sent_at, kept.last_error = (
            0,
            0.0,
            now + min_interval,
            now,
            "",
        )

    def failed(self, row: Pending, error: str, *, retry_at: float, state: dict | None = None) -> None:
        kept = self._rows[row.job_id, row.reporter]
        kept.failures += 1
        kept.retry_at, kept.last_error = retry_at, error[:500]
        if state is not None:
            kept.state = copy.deepcopy(state)

    def give_up(self, row: Pending, reason: str, *, state: dict | None = None) -> None:
        """Stop sending this job to this reporter (a later change of the job does not revive it)."""
        kept = self._rows[row.job_id, row.reporter]
        kept.gave_up = kept.last_error = reason[:500]
        if state is not None:
            kept.state = copy.deepcopy(state)

    def settle(self, row: Pending) -> None:
        """Nothing to send for this version (the reporter does not want the job): not pending any more."""
        self._rows[row.job_id, row.reporter].sent_version = row.version

    def pending(self) -> dict[str, int]:
        """Rows waiting per reporter."""
        counts: dict[str, int] = {}
        for (_, reporter), row in self._rows.items():
            if row.owed:
                counts[reporter] = counts.get(reporter, 0) + 1
        return counts

    def row(self, job_id: str, reporter: str) -> dict | None:
        """A row as plain data, in the shape of Outbox.row."""
        kept = self._rows.get((job_id, reporter))
        if kept is None:
            return None
        return {
            "job_id": job_id,
            "reporter": reporter,
            "version": kept.version,
            "sent_version": kept.sent_version,
            "final": int(kept.final),
            "state_json": json.dumps(kept.state),
            "failures": kept.failures,
            "retry_at": kept.retry_at,
            "not_before": kept.not_before,
            "sent_at": kept.sent_at,
            "last_error": kept.last_error,
            "gave_up": kept.gave_up,
        }

    def _owed(self, reporter: str) -> Iterator[tuple[str, _Row]]:
        for (job_id, name), row in self._rows.items():
            if name == reporter and row.owed:
                yield job_id, row
