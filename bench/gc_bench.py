"""What gc costs and frees on a busy daemon's state folder: 10,000 jobs, their logs, outputs, trees and cache entries.

    python bench/gc_bench.py [--jobs 10000] [--pipelines 10] [--keep 100] [--max-age 30d] [--folder DIR]

Every job is written through the real Store API (store.batch(): one
transaction per job, as the runner's writes would be many): three tasks,
each with an attempt and its events, an outbox row sent to one reporter;
one job in five reuses the outputs of the job before it (`reused_from`,
hard links, as the local cache does). Each attempt gets a 2 KiB log and an
8 KiB output; 200 code trees sit under trees/, each job naming one; every
task's cache entry points at its outputs. The jobs are spread over the last
60 days, and all of it is written to disk (sync) before anything is
timed. Then: disk use and rows per table before, the time to open the
store with and without its integrity check (PRAGMA quick_check), gc with
--keep newest per pipeline and --max-age, and disk use and rows after.
Target: gc of 10,000 jobs in 10 s or less.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from fasttrack_gitops.core.job import Outcome, TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.units import parse_duration
from fasttrack_gitops.core.render.retention import human_size
from fasttrack_gitops.core.retention import RetentionPolicy
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.gc import collect, counts, disk_use
from fasttrack_gitops.engine.state.outbox import Outbox, Pending
from fasttrack_gitops.engine.state.store import Store

TASKS = ("prepare", "train", "report")
PIPELINE = """\
version: "26.4.4"
name: {name}
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    command: echo train
  - name: report
    dependencies: [train]
    command: echo report
"""
TREES = 200
DAY = 86400.0


def generate(state: Path, jobs: int, pipelines: int, now: float) -> None:
    models = {}
    for p in range(pipelines):
        model = check_pipeline(PIPELINE.format(name=f"p{p}").encode(), f"p{p}.yaml").pipeline
        assert model is not None
        models[p] = model
    for t in range(TREES):
        tree = datafolder.tree_folder(state, f"{t:040x}")
        tree.mkdir(parents=True)
        (tree / "main.py").write_text("print('hello')\n" * 20)
        os.utime(tree, (now - 2 * DAY, now - 2 * DAY))
    log_text = b"x" * 2047 + b"\n"
    output = os.urandom(8192)
    with Store(state) as store:
        outbox = Outbox(store)
        previous: dict[int, str] = {}
        for i in range(jobs):
            p = i % pipelines
            created = now - 60 * DAY * (jobs - i) / jobs
            tree = f"{i % TREES:040x}"
            job = freeze(
                models[p],
                pipeline_path=f"pipelines/p{p}.yaml",
                repository="acme/models",
                source="commit",
                commit=f"{i:040x}",
                ref="refs/heads/main",
                tree=tree,
                code_trees=dict.fromkeys(TASKS, tree),
                now=created,
            )
            reuse = previous.get(p) if i % 5 == 4 else None
            with store.batch():
                store.create_job(job)
                for n, task in enumerate(TASKS):
                    at = created + n
                    if reuse and task == "prepare":
                        store.set_task_state(job.id, task, TaskState.REUSED, reused_from=reuse, at=at)
                        continue
                    store.set_task_state(job.id, task, TaskState.SUBMITTED, at=at)
                    store.start_attempt(job.id, task, 1, started_at=at)
                    store.set_task_state(job.id, task, TaskState.RUNNING, at=at)
                    store.end_attempt(job.id, task, 1, ended_at=at + 1, exit_code=0, outcome=Outcome.SUCCEEDED)
                    store.set_task_state(job.id, task, TaskState.SUCCEEDED, at=at + 1)
                outbox.mark(job.id, ["github"], final=True)
                outbox.sent(Pending(job.id, "github", 1, True, {}, 0, 0, 0), {"check_run": i}, min_interval=0)
            _files(state, job.id, reuse, log_text, output, job.pipeline)
            previous[p] = job.id


def _files(state: Path, job_id: str, reuse: str | None, log_text: bytes, output: bytes, pipeline: str) -> None:
    job_folder = datafolder.job_folder(state, job_id)
    cache = datafolder.cache_folder(state, "acme/models", pipeline) / "entries"
    cache.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        outputs = datafolder.outputs_folder(job_folder, task)
        outputs.mkdir(parents=True)
        if reuse and task == "prepare":
            os.link(
                datafolder.outputs_folder(datafolder.job_folder(state, reuse), task) / "out.bin", outputs / "out.bin"
            )
            continue
        (outputs / "out.bin").write_bytes(output)
        log = state / "logs" / job_id / task / "1.log"
        log.parent.mkdir(parents=True)
        log.write_bytes(log_text)
        (cache / f"{job_id}-{task}.json").write_text(json.dumps({"job": job_id, "task": task}))


def opening(state: Path, runs: int = 5) -> tuple[float, float]:
    """Median milliseconds: opening the store (its quick_check included), and the quick_check alone."""
    opens, checks = [], []
    for _ in range(runs):
        t = time.perf_counter()
        Store(state).close()
        opens.append(time.perf_counter() - t)
        with sqlite3.connect(state / "state.db") as cx:
            t = time.perf_counter()
            cx.execute("PRAGMA quick_check(5)").fetchall()
            checks.append(time.perf_counter() - t)
    return sorted(opens)[runs // 2] * 1000, sorted(checks)[runs // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--keep", type=int, default=100, help="keep_per_pipeline")
    parser.add_argument("--max-age", default="30d")
    parser.add_argument("--folder", type=Path, default=None, help="where to make the state folder (default: a temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        state = Path(tmp) / "state"
        now = time.time()
        t = time.perf_counter()
        generate(state, args.jobs, args.pipelines, now)
        os.sync()  # a daemon's gc meets files written days ago, not a gigabyte still being written back
        print(f"generated {args.jobs:,} jobs in {time.perf_counter() - t:.1f} s (written to disk)")
        db_size = (state / "state.db").stat().st_size
        open_ms, check_ms = opening(state)
        print(f"state.db {human_size(db_size)}: open {open_ms:.1f} ms, of which quick_check {check_ms:.1f} ms")
        with Store(state) as store:
            rows_before, disk_before = counts(store), disk_use(state)
            policy = RetentionPolicy(max_age=parse_duration(args.max_age), keep_per_pipeline=args.keep)
            dry = collect(store, policy, dry_run=True, now=now)
            done = collect(store, policy, now=now)
            rows_after, disk_after = counts(store), disk_use(state)
        print(f"gc --dry-run: {len(dry.jobs):,} jobs, would free {human_size(dry.freed)} in {dry.seconds:.2f} s")
        print(
            f"gc: removed {len(done.jobs):,} jobs and {len(done.items) - len(done.jobs):,} other items, "
            f"kept {len(done.kept)} past a limit, freed {human_size(done.freed)} in {done.seconds:.2f} s"
        )
        print(f"disk use: {human_size(disk_before)} -> {human_size(disk_after)}")
        for table in rows_before:
            print(f"  {table:<16} {rows_before[table]:>9,} -> {rows_after[table]:>9,}")


if __name__ == "__main__":
    main()
