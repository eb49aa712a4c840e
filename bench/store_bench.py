"""What the state store costs a runner and a reader: milliseconds per write and per view of a 200-task job.

    python bench/store_bench.py [--tasks 200] [--views 20] [--runs 5]

A chain of --tasks tasks is stored in a fresh state folder; then, under the
job's runner claim, each task gets the six writes a runner makes for a task
that runs once (waiting, submitted, attempt started, running, attempt ended,
succeeded), each its own transaction as in a real run. Then the job's view
(every task instance, attempt and the job status, read in one snapshot) is
read --views times. Prints the median over --runs fresh folders of the
milliseconds per write and per view. Targets: well under 1 ms per write; a
view of 200 tasks under 50 ms (a unit test asserted them until issue 19).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fasttrack_gitops.core.job import JobStatus, Outcome, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine.state.store import Store

WRITES_PER_TASK = 6


def chain(tasks: int) -> str:
    lines = ['version: "26.4.4"', "name: bench", "tasks:"]
    for i in range(tasks):
        lines += [f"  - name: t{i}", f"    command: echo {i}"] + ([f"    dependencies: [t{i - 1}]"] if i else [])
    return "\n".join(lines) + "\n"


def one_run(folder: Path, tasks: int, views: int) -> tuple[float, float]:
    """Seconds per write and per view, in a fresh state folder."""
    pipeline = check_pipeline(chain(tasks).encode(), "bench.yaml").pipeline
    assert pipeline is not None
    job = freeze(
        pipeline,
        pipeline_path="pipelines/bench.yaml",
        repository="bench/store",
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
        now=1_700_000_000.0,
    )
    with Store(folder) as store:
        store.create_job(job)
        started = time.perf_counter()
        with store.claim(job.id):
            for i in range(tasks):
                task = f"t{i}"
                store.set_task_state(job.id, task, TaskState.WAITING)
                store.set_task_state(job.id, task, TaskState.SUBMITTED)
                store.start_attempt(job.id, task, 1, started_at=i)
                store.set_task_state(job.id, task, TaskState.RUNNING)
                store.end_attempt(job.id, task, 1, ended_at=i + 1, exit_code=0, outcome=Outcome.SUCCEEDED)
                store.set_task_state(job.id, task, TaskState.SUCCEEDED)
        per_write = (time.perf_counter() - started) / (tasks * WRITES_PER_TASK)
        store.view(job.id)  # the first view normalises the job's pipeline once; a reader keeps it
        started = time.perf_counter()
        for _ in range(views):
            view = store.view(job.id)
        per_view = (time.perf_counter() - started) / views
    if view.status != JobStatus.SUCCEEDED or len(view.tasks) != tasks:
        raise SystemExit(f"the job did not end as expected: {view.status}, {len(view.tasks)} tasks")
    return per_write, per_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    writes, views = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            per_write, per_view = one_run(Path(tmp) / f"state-{run}", args.tasks, args.views)
            writes.append(per_write)
            views.append(per_view)
    print(f"store: {statistics.median(writes) * 1e3:.3f} ms per write (target well under 1 ms)")
    print(f"store: {statistics.median(views) * 1e3:.2f} ms per view of {args.tasks} tasks (target under 50 ms)")
    print(
        f"(median of {args.runs} fresh state folders; {args.tasks * WRITES_PER_TASK} writes and {args.views} views each)"
    )


if __name__ == "__main__":
    main()
