"""Which queued jobs start, and which a newer job supersedes: the pure rules."""

from __future__ import annotations

from fasttrack_gitops.daemon.dispatch import startable, superseded
from fasttrack_gitops.engine.state.ledger import Queued


def q(job: str, at: float, group: str | None = None, *, started: bool = False, cancel: bool = False) -> Queued:
    return Queued(job, group, cancel, at, at if started else None)


def test_the_oldest_queued_jobs_fill_the_free_slots():
    entries = [q("c", 3), q("a", 1), q("b", 2), q("r", 0, started=True)]
    assert startable(entries, limit=3) == ["a", "b"]
    assert startable(entries, limit=1) == []
    assert startable([], limit=4) == []


def test_a_group_runs_one_job_at_a_time_and_others_pass_it():
    entries = [
        q("running", 0, "g", started=True),
        q("next-in-g", 1, "g"),
        q("free", 2),
        q("h1", 3, "h"),
        q("h2", 4, "h"),
    ]
    assert startable(entries, limit=10) == ["free", "h1"]
    entries[0] = q("running", 0, "other", started=True)
    assert startable(entries, limit=10) == ["next-in-g", "free", "h1"]


def test_cancel_in_progress_supersedes_only_older_jobs_of_its_group():
    old_running, old_queued = q("a", 1, "g", started=True), q("b", 2, "g")
    newer, newest = q("c", 3, "g", cancel=True), q("d", 4, "g")
    entries = [old_running, old_queued, newer, newest, q("x", 0, "other")]
    assert superseded(entries, newer) == [old_running, old_queued]
    assert superseded(entries, q("e", 5, "g")) == []  # without cancel_in_progress the newer one waits
    assert superseded(entries, q("f", 6, None, cancel=True)) == []
