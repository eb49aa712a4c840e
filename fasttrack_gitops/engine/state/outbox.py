"""The outbox: which job's report each reporter still has to send, kept in the state database.

One row per (job, reporter). Marking a job bumps `version`; a send that
succeeds records the version it sent, so a change that arrives while a send
is in flight is sent too (at-least-once), and a burst of changes costs one
send (coalescing). `not_before` spaces the sends of one job (the reporter's
min_interval), except a final report; `retry_at` is the backoff after a
failure. `state_json` is the reporter's memory between sends (a check run
id, a Slack ts), which is what makes a re-send update rather than duplicate.
Rows live in the store, so a restart loses nothing.

`DeliveryQueue` is what the deliverer needs of an outbox; `Outbox` here and
`MemoryOutbox` (memory_outbox.py, the Action's step, which keeps no
database) both are one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from fasttrack_gitops.engine.state.migrations import translated, writing
from fasttrack_gitops.engine.state.store import Store


@dataclass(frozen=True)
class Pending:
    job_id: str
    reporter: str
    version: int
    final: bool
    state: dict
    failures: int
    retry_at: float
    not_before: float


class DeliveryQueue(Protocol):
    """The rows a deliverer works through, and what each send came to."""

    def due(self, reporter: str, now: float, *, limit: int = 50) -> list[Pending]:
        """This reporter's rows to send now, oldest first."""
        ...

    def next_due(self, reporter: str) -> float | None:
        """When the reporter's earliest pending row falls due; None when nothing is pending."""
        ...

    def sent(self, row: Pending, state: dict, *, min_interval: float, now: float | None = None) -> None:
        """`row.version` went through; the reporter's state now; the job's next send not before now+min_interval."""
        ...

    def failed(self, row: Pending, error: str, *, retry_at: float, state: dict | None = None) -> None:
        """The send failed; try again at `retry_at`, going on from `state` (how far it got) when given."""
        ...

    def give_up(self, row: Pending, reason: str, *, state: dict | None = None) -> None:
        """Never send this job to this reporter again."""
        ...

    def settle(self, row: Pending) -> None:
        """Nothing to send for `row.version` (the reporter does not want the job)."""
        ...


class Outbox:
    def __init__(self, store: Store):
        self._cx = store._cx  # one connection per thread: the outbox shares the store's
        self._db = store._db  # for @translated

    @translated
    def mark(self, job_id: str, reporters: Iterable[str], *, final: bool = False) -> None:
        """The job changed: each reporter owes it a send (a final one once the job has ended)."""
        with writing(self._cx) as cx:
            for reporter in reporters:
                cx.execute(
                    "INSERT INTO outbox (job_id, reporter, final) VALUES (?, ?, ?) ON CONFLICT DO UPDATE"
                    " SET version = version + 1, final = max(final, excluded.final)",
                    (job_id, reporter, int(final)),
                )

    @translated
    def due(self, reporter: str, now: float, *, limit: int = 50) -> list[Pending]:
        """This reporter's rows to send now: changed since the last send, not backing off, not held back by
        min_interval unless final; oldest first."""
        rows = self._cx.execute(
            "SELECT job_id, reporter, version, final, state_json, failures, retry_at, not_before FROM outbox"
            " WHERE reporter = ? AND version > sent_version AND gave_up IS NULL AND retry_at <= ?"
            " AND (final = 1 OR not_before <= ?) ORDER BY max(retry_at, not_before), job_id LIMIT ?",
            (reporter, now, now, limit),
        )
        return [Pending(j, r, v, bool(f), json.loads(s), n, ra, nb) for j, r, v, f, s, n, ra, nb in rows]

    @translated
    def next_due(self, reporter: str) -> float | None:
        """When this reporter's earliest pending row falls due (None: nothing pending)."""
        row = self._cx.execute(
            "SELECT min(CASE WHEN final = 1 THEN retry_at ELSE max(retry_at, not_before) END) FROM outbox"
            " WHERE reporter = ? AND version > sent_version AND gave_up IS NULL",
            (reporter,),
        ).fetchone()
        return row[0]

    @translated
    def sent(self, row: Pending, state: dict, *, min_interval: float, now: float | None = None) -> None:
        """Sent `row.version` successfully; what the reporter remembers now."""
        now = time.time() if now is None else now
        with writing(self._cx) as cx:
            cx.execute(
                "UPDATE outbox SET sent_version = ?, state_json = ?, failures = 0, retry_at = 0,"
                " not_before = ?, sent_at = ?, last_error = '' WHERE job_id = ? AND reporter = ?",
                (row.version, json.dumps(state), now + min_interval, now, row.job_id, row.reporter),
            )

    @translated
    def failed(self, row: Pending, error: str, *, retry_at: float, state: dict | None = None) -> None:
        with writing(self._cx) as cx:
            cx.execute(
                "UPDATE outbox SET failures = failures + 1, retry_at = ?, last_error = ?,"
                " state_json = coalesce(?, state_json) WHERE job_id = ? AND reporter = ?",
                (retry_at, error[:500], None if state is None else json.dumps(state), row.job_id, row.reporter),
            )

    @translated
    def give_up(self, row: Pending, reason: str, *, state: dict | None = None) -> None:
        """Stop sending this job to this reporter (a later change of the job does not revive it)."""
        with writing(self._cx) as cx:
            cx.execute(
                "UPDATE outbox SET gave_up = ?, last_error = ?, state_json = coalesce(?, state_json)"
                " WHERE job_id = ? AND reporter = ?",
                (reason[:500], reason[:500], None if state is None else json.dumps(state), row.job_id, row.reporter),
            )

    @translated
    def settle(self, row: Pending) -> None:
        """Nothing to send for this version (the reporter does not want the job): not pending any more."""
        with writing(self._cx) as cx:
            cx.execute(
                "UPDATE outbox SET sent_version = ? WHERE job_id = ? AND reporter = ?",
                (row.version, row.job_id, row.reporter),
            )

    @translated
    def pending(self) -> dict[str, int]:
        """Rows waiting per reporter (for /metrics)."""
        rows = self._cx.execute(
            "SELECT reporter, count(*) FROM outbox WHERE version > sent_version AND gave_up IS NULL GROUP BY reporter"
        )
        return dict(rows.fetchall())

    @translated
    def row(self, job_id: str, reporter: str) -> dict | None:
        """A row as plain data (for tests and `jobs show`)."""
        cursor = self._cx.execute("SELECT * FROM outbox WHERE job_id = ? AND reporter = ?", (job_id, reporter))
        found = cursor.fetchone()
        return None if found is None else dict(zip([d[0] for d in cursor.description], found))
