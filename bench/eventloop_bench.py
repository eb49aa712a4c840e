"""Whether the daemon's event loop stays free while a job with a big code tree starts, on a real `serve` process.

    python bench/eventloop_bench.py [--deliveries 200] [--rounds 10] [--concurrency 4] [--files 1000]

The repository's pipeline has one task whose `code:` folder holds --files
files of 4 KiB each (committed with git). Starting a job of it writes that
tree to the daemon's tree cache and copies it into the job's data folder.
Each round changes one file of the tree (so the next job materialises a new
tree, not a cached one), then:

1. idle: --deliveries/--rounds signed push webhooks, --concurrency at a time,
   with no job running (the reference);
2. busy: a manual run of the pipeline (POST /api/trigger), and at once as
   many webhooks again, while the job starts;
3. waits for the job to end.

Every webhook is a push to main of its own commit that changes no path the
pipeline follows, so the daemon reads the commit (git, in worker threads),
records the delivery and the branch position (SQLite), and makes no job:
only the big jobs run. The latency is the client's round trip. Printed:
p50/p99/max of both, their ratio, and how long the big jobs took from
trigger to end. Then the SQLite writes the daemon makes on its loop, timed
in this process against the run's own state database (same file, WAL, same
pragmas): a figure for whether they may stay on the loop.

Only 127.0.0.1 is contacted; the run stops after --deadline seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from daemon_bench import free_port, git, headers, percentile, push_body, start_daemon, stop

REPOSITORY = "bench/big"
PIPELINE = """\
version: "26.4.4"
name: big
on:
  push:
    branches: [main]
    paths: ["code/**", "pipelines/**"]
tasks:
  - name: work
    code: code/big
    command: "true"
"""
FILE_SIZE = 4096


def make_repo(path: Path, files: int, rounds: int, deliveries: int) -> tuple[list[str], list[str]]:
    """The repository: (one commit per round, each with its own code tree; the webhook commits, on top)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "pipelines").mkdir()
    (path / "pipelines" / "big.yaml").write_text(PIPELINE)
    code = path / "code" / "big"
    code.mkdir(parents=True)
    rng = random.Random(7)
    for i in range(files):
        (code / f"f{i:04d}.txt").write_text("".join(rng.choices("abcdefghij \n", k=FILE_SIZE)))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "a task with a big code tree")
    rounds_at = []
    for r in range(rounds):
        (code / "f0000.txt").write_text(f"round {r}\n")
        git(path, "commit", "-q", "-am", f"round {r}")
        rounds_at.append(git(path, "rev-parse", "HEAD").strip())
    # The webhook commits: same tree as the last round, so they change nothing the pipeline follows.
    stream = [f"reset refs/heads/main\nfrom {rounds_at[-1]}\n".encode()]
    for i in range(deliveries):
        stream.append(
            f"commit refs/heads/main\nmark :{i + 1}\ncommitter Bench <b@example.com> {1_700_000_000 + i} +0000\n"
            f"data 7\nhook{i % 100:03d}\n".encode()
        )
        stream.append((f"from :{i}\n" if i else f"from {rounds_at[-1]}\n").encode())
    git(path, "fast-import", "--quiet", "--force", stdin=b"".join(stream))
    return rounds_at, git(path, "rev-list", "--reverse", f"{rounds_at[-1]}..main").split()


async def webhooks(client: httpx.AsyncClient, pushes: list[tuple[str, str]], tag: str, concurrency: int) -> list[float]:
    """Milliseconds from sending each push delivery to its answer, `concurrency` in flight at a time."""
    took: list[float] = []

    async def one(i: int, before: str, after: str) -> None:
        body = push_body(before, after, REPOSITORY)
        start = time.perf_counter()
        answer = await client.post("/webhooks/github", content=body, headers=headers(body, f"{tag}-{i}"))
        took.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 202 and not answer.json()["created"], answer.text

    for first in range(0, len(pushes), concurrency):
        wave = pushes[first : first + concurrency]
        await asyncio.gather(*(one(first + i, before, after) for i, (before, after) in enumerate(wave)))
    return took


async def rounds(url: str, rounds_at: list[str], pushes: list[tuple[str, str]], concurrency: int, deadline: float):
    """(idle latencies, busy latencies, the big jobs' ids)."""
    idle: list[float] = []
    busy: list[float] = []
    jobs: list[str] = []
    per_round = len(pushes) // (2 * len(rounds_at))
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        for r, commit in enumerate(rounds_at):
            if time.monotonic() > deadline:
                raise SystemExit(f"stopped after round {r}: past the deadline")
            mine = pushes[2 * r * per_round : 2 * (r + 1) * per_round]
            idle += await webhooks(client, mine[:per_round], f"idle-{r}", concurrency)
            request = {"repository": REPOSITORY, "pipeline": "big", "ref": commit, "request_id": f"round-{r}"}
            answer = await client.post("/api/trigger", json=request)
            assert answer.status_code == 201, answer.text
            jobs += answer.json()["created"]
            busy += await webhooks(client, mine[per_round:], f"busy-{r}", concurrency)
            while (await client.get(f"/api/jobs/{jobs[-1]}")).json()["status"] not in ("succeeded", "failed"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"job {jobs[-1]} did not end before the deadline")
                await asyncio.sleep(0.05)
    return idle, busy, jobs


def job_durations(state_dir: Path, jobs: list[str]) -> list[float]:
    """Milliseconds from each job's creation to its task's end (dispatch, tree, copy, `true`)."""
    from fasttrack_gitops.engine.state.store import Store

    with Store(state_dir) as store:
        views = [store.view(j) for j in jobs]
    return [(v.tasks["work"].attempts[-1].ended_at - v.job.created_at) * 1000 for v in views]


def write_timings(state_dir: Path, job_id: str, n: int = 200) -> dict[str, list[float]]:
    """Milliseconds per call of the writes the daemon makes on its loop, against the run's database."""
    from fasttrack_gitops.core.job import TaskState, rerun
    from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
    from fasttrack_gitops.engine.state.outbox import Outbox
    from fasttrack_gitops.engine.state.store import Store

    took: dict[str, list[float]] = {}

    def timed(name: str, write, *args, **kwargs) -> None:
        start = time.perf_counter()
        write(*args, **kwargs)
        took.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    with Store(state_dir) as store:
        ledger, outbox = Ledger(store), Outbox(store)
        old = store.job(job_id)
        for i in range(n):
            new = rerun(old, trigger={"event": "rerun", "id": f"bench-{i}", "of": old.id})
            key = JobKey(REPOSITORY, old.commit or "", old.pipeline_path, f"bench:{i}")
            timed("ledger.add_job", ledger.add_job, key, new)
            timed("outbox.mark", outbox.mark, new.id, ("github", "slack"))
            timed("ledger.set_positions", ledger.set_positions, REPOSITORY, [("refs/heads/main", old.commit)])
            timed("ledger.record_delivery", ledger.record_delivery, "github", f"w-{i}", "push", "1 job")
            timed("ledger.mark_started", ledger.mark_started, new.id)
            timed("store.set_task_state", store.set_task_state, new.id, "work", TaskState.RUNNING)
            timed("store.start_attempt", store.start_attempt, new.id, "work", 1, started_at=time.time())
            timed("ledger.mark_done", ledger.mark_done, new.id)
    return took


def line(label: str, values: list[float], digits: int = 1) -> str:
    p50, p99, top = statistics.median(values), percentile(values, 99), max(values)
    return f"   {label:<24} p50 {p50:7.{digits}f} ms  p99 {p99:7.{digits}f} ms  max {top:7.{digits}f} ms  (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=200, help="webhooks while jobs start (as many again idle)")
    parser.add_argument("--rounds", type=int, default=10, help="big jobs started")
    parser.add_argument("--concurrency", type=int, default=4, help="webhooks in flight at a time")
    parser.add_argument("--files", type=int, default=1000, help="files in the task's code folder")
    parser.add_argument("--deadline", type=float, default=600, help="seconds the whole run may take")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline
    per_round = max(1, args.deliveries // args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rounds_at, hooks = make_repo(work / "repo", args.files, args.rounds, 2 * per_round * args.rounds)
        pushes = list(zip([rounds_at[-1], *hooks[:-1]], hooks))
        port = free_port()
        proc = start_daemon(work, [(REPOSITORY, work / "repo", False)], port)  # the local executor
        try:
            idle, busy, jobs = asyncio.run(
                rounds(f"http://127.0.0.1:{port}", rounds_at, pushes, args.concurrency, deadline)
            )
        finally:
            stop(proc)
        durations = job_durations(work / "state", jobs)
        writes = write_timings(work / "state", jobs[0])
    print(
        f"webhook round trip, {len(busy)} deliveries while {len(jobs)} jobs start (a {args.files}-file code tree "
        f"each), {args.concurrency} at a time; as many with the daemon idle"
    )
    print(line("idle (reference)", idle))
    print(line("while a job starts", busy))
    print(
        f"   ratio busy/idle          p50 {statistics.median(busy) / statistics.median(idle):5.1f}x"
        f"   p99 {percentile(busy, 99) / percentile(idle, 99):5.1f}x   max {max(busy) / max(idle):5.1f}x"
    )
    print(line("big job, created -> end", durations))
    every = [v for values in writes.values() for v in values]
    print(
        f"SQLite writes the daemon makes on its loop, {len(every)} timed in this process against the run's "
        f"database; {sum(v > 1 for v in every)} took over 1 ms"
    )
    print(line("all writes", every, digits=3))
    for name, values in writes.items():
        print(line(name, values, digits=3))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
