"""Past task durations, the scheduler's estimates: medians of a pipeline's recent succeeded task instances."""

from __future__ import annotations

import statistics

from conftest import MINIMAL
from engine.state.store_test import make_job, run_task
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.job import Outcome, TaskState
from fasttrack_gitops.engine.state.task_durations import _median


def test_past_durations_are_medians_of_recent_succeeded_task_instances(store):
    jobs = {n: make_job(now=n, job_id=f"j{n}") for n in (100, 200, 300, 500)}
    for job in jobs.values():
        store.create_job(job)
    store.create_job(make_job(MINIMAL.replace("name: demo", "name: other"), now=400, job_id="j400"))
    run_task(store, "j100", "prepare", seconds=10)
    run_task(store, "j100", "train", seconds=100)
    run_task(store, "j200", "prepare", seconds=20)
    run_task(store, "j200", "train", seconds=5, outcome=Outcome.FAILED)
    run_task(store, "j300", "prepare", seconds=30)
    store.start_attempt("j300", "train", 1, started_at=0)  # a retried task counts from its first start
    store.end_attempt("j300", "train", 1, ended_at=10, exit_code=1, outcome=Outcome.FAILED)
    store.start_attempt("j300", "train", 2, started_at=15)
    store.end_attempt("j300", "train", 2, ended_at=215, exit_code=0, outcome=Outcome.SUCCEEDED)
    store.set_task_state("j300", "train", TaskState.SUCCEEDED)
    run_task(store, "j400", "prepare", seconds=999)  # another pipeline
    # j500 is the job about to run: nothing succeeded yet

    assert store.past_durations("demo") == {"prepare": 20, "train": 157.5}
    assert store.past_durations("demo", limit_jobs=2) == {"prepare": 25, "train": 157.5}
    assert store.past_durations("nothing-ran") == {}


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=12))
def test_the_median_is_the_statistics_modules(values):
    """task_durations.py writes the median out rather than import statistics (a run's start-up): the same number."""
    assert _median(values) == statistics.median(values)
