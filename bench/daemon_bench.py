"""The daemon's three speed targets (issue 5), measured on a real `fasttrack-gitops serve` process.

    python bench/daemon_bench.py [--deliveries 1000] [--commits 10] [--repositories 100]

1. Webhook received -> job recorded: p50 <= 50 ms, p99 <= 200 ms over 1,000
   deliveries. Each delivery is a signed GitHub push of a different commit
   (made with `git fast-import`), so every one reads and checks the pipeline
   at its commit and stores a new job; the daemon answers once the job is
   recorded, so the client's round trip is the latency (it includes HTTP).
   Sent one after another while the daemon runs the jobs it queued (one at
   a time), then as a burst of 50 at once. As a reference measured in the
   same run: a bare HTTP round trip to /healthz.
2. A commit to a watched local repository -> its first task started: <= 1 s.
   `git commit` returns, then the time until the attempt's recorded start.
3. Resident memory with 100 configured repositories (all watched): <= 150 MB,
   read from /proc/<pid>/status (VmRSS, VmHWM) after start-up and a job.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from benchlib import serve

PROJECT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
PIPELINE = """\
version: "26.4.4"
name: bench
tasks:
  - name: first
    command: "true"
  - name: second
    dependencies: [first]
    command: "true"
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "PATH": os.environ["PATH"],
    "HOME": "/tmp",
}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, input=stdin, check=True, capture_output=True
    ).stdout.decode()


def make_repo(path: Path, commits: int = 1) -> list[str]:
    """A repository whose main has `commits` commits, each changing the pipeline; their ids, oldest first."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    stream = []
    for i in range(commits):
        text = (PIPELINE + f"# {i}\n").encode()
        stream.append(
            f"commit refs/heads/main\nmark :{i + 1}\ncommitter Bench <b@example.com> {1_700_000_000 + i} +0000\n"
            f"data 3\nc{i % 10}\n".encode()
        )
        if i:
            stream.append(f"from :{i}\n".encode())
        stream.append(f"M 100644 inline pipelines/bench.yaml\ndata {len(text)}\n".encode() + text + b"\n")
    git(path, "fast-import", "--quiet", stdin=b"".join(stream))
    git(path, "checkout", "-q", "main")
    return git(path, "rev-list", "--reverse", "main").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(workdir: Path, repositories: list[tuple[str, Path, bool]], port: int) -> subprocess.Popen:
    lines = [
        f"state_dir: {workdir / 'state'}",
        f"listen: 127.0.0.1:{port}",
        "max_running_jobs: 1",
        "github:",
        "  webhook_secret_env: BENCH_SECRET",
        "repositories:",
    ]
    for name, path, watch in repositories:
        lines += [f"  - name: {name}", f"    url: {path}", "    provider: github", f"    watch: {str(watch).lower()}"]
    config = workdir / "ftg.yaml"
    config.write_text("\n".join(lines) + "\n")
    return serve(config, port, {"BENCH_SECRET": SECRET})


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def push_body(before: str, after: str, name: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "forced": False,
            "repository": {"full_name": name, "default_branch": "main"},
            "sender": {"login": "bench"},
        }
    ).encode()


def headers(body: bytes, delivery: str) -> dict:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }


async def deliveries(url: str, commits: list[str], *, burst: int) -> list[float]:
    """Milliseconds from sending each delivery to its answer (the job is recorded by then)."""
    took: list[float] = []
    limits = httpx.Limits(max_connections=burst)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one(i: int) -> None:
            body = push_body(commits[i - 1] if i else "0" * 40, commits[i], "bench/repo")
            start = time.perf_counter()
            answer = await client.post("/webhooks/github", content=body, headers=headers(body, f"d-{burst}-{i}"))
            took.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 202 and answer.json()["created"], answer.text

        for first in range(0, len(commits), burst):
            await asyncio.gather(*(one(i) for i in range(first, min(first + burst, len(commits)))))
    return took


async def health_round_trips(url: str, n: int = 200) -> list[float]:
    took = []
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(n):
            start = time.perf_counter()
            await client.get("/healthz")
            took.append((time.perf_counter() - start) * 1000)
    return took


def bench_webhooks(workdir: Path, n: int) -> None:
    commits = make_repo(workdir / "repo", 2 * n)
    port = free_port()
    proc = start_daemon(workdir, [("bench/repo", workdir / "repo", False)], port)
    url = f"http://127.0.0.1:{port}"
    try:
        reference = asyncio.run(health_round_trips(url))
        one_by_one = asyncio.run(deliveries(url, commits[:n], burst=1))
        burst = asyncio.run(deliveries(url, commits[n:], burst=50))
    finally:
        stop(proc)
    print(f"1. webhook -> job recorded, {n} deliveries of distinct commits (target p50 <= 50 ms, p99 <= 200 ms)")
    print(
        f"   one at a time : p50 {statistics.median(one_by_one):6.1f} ms  p99 {percentile(one_by_one, 99):6.1f} ms"
        f"  max {max(one_by_one):6.1f} ms"
    )
    print(
        f"   bursts of 50  : p50 {statistics.median(burst):6.1f} ms  p99 {percentile(burst, 99):6.1f} ms"
        f"  max {max(burst):6.1f} ms"
    )
    print(
        f"   reference GET /healthz round trip: p50 {statistics.median(reference):.1f} ms; "
        f"ratio p50 {statistics.median(one_by_one) / statistics.median(reference):.1f}x"
    )


def bench_watch(workdir: Path, commits: int) -> None:
    repo = workdir / "watched"
    make_repo(repo)
    port = free_port()
    proc = start_daemon(workdir, [("bench/watched", repo, True)], port)
    db = workdir / "state" / "state.db"
    took = []
    try:
        time.sleep(1.0)  # the first scan records where main is
        for i in range(commits):
            (repo / "pipelines" / "bench.yaml").write_text(PIPELINE + f"# watched {i}\n")
            git(repo, "commit", "-q", "-am", f"watched {i}")
            committed = time.time()
            took.append(first_start_after(db, committed) - committed)
            time.sleep(0.3)
    finally:
        stop(proc)
    print(f"2. commit to a watched repository -> first task started, {commits} commits (target <= 1 s)")
    print(f"   median {statistics.median(took) * 1000:.0f} ms  max {max(took) * 1000:.0f} ms")


def first_start_after(db: Path, since: float, timeout: float = 30) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with sqlite3.connect(db) as cx:
            row = cx.execute("SELECT min(started_at) FROM attempts WHERE started_at >= ?", (since - 0.001,)).fetchone()
        if row[0] is not None:
            return row[0]
        time.sleep(0.01)
    raise SystemExit("no task started within 30 s of the commit")


def bench_memory(workdir: Path, count: int) -> None:
    repositories = []
    for i in range(count):
        path = workdir / f"repo{i:03d}"
        make_repo(path)
        repositories.append((f"bench/repo{i:03d}", path, True))
    port = free_port()
    proc = start_daemon(workdir, repositories, port)
    try:
        time.sleep(3.0)  # every watcher's first scan
        path = workdir / "repo000"
        (path / "pipelines" / "bench.yaml").write_text(PIPELINE + "# one job\n")
        git(path, "commit", "-q", "-am", "one job")
        first_start_after(workdir / "state" / "state.db", 0)
        time.sleep(1.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
    finally:
        stop(proc)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss, hwm = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    print(f"3. resident memory with {count} watched repositories (target <= 150 MB)")
    print(f"   VmRSS {rss:.0f} MB  peak VmHWM {hwm:.0f} MB  threads {fields['Threads'].strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--repositories", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_webhooks(Path(tmp) / "webhooks", args.deliveries)
    with tempfile.TemporaryDirectory() as tmp:
        bench_watch(Path(tmp) / "watch", args.commits)
    with tempfile.TemporaryDirectory() as tmp:
        bench_memory(Path(tmp) / "memory", args.repositories)


if __name__ == "__main__":
    main()
