"""Webhook bursts (issue 16, item 3), measured on a real `fasttrack-gitops serve` process.

    python bench/burst_bench.py [--bursts 10] [--duplicates 1000] [--connections 100]

1. 50 deliveries in flight: signed GitHub pushes of 50 different commits
   sent at once, `--bursts` times; each answer comes once its job is
   recorded (target p99 <= 200 ms). Reference, same run: 50 GET /healthz
   in flight, as many times.
2. 1,000 duplicate deliveries of ONE push, all in flight over
   `--connections` keep-alive connections: once with distinct
   X-GitHub-Delivery ids (two hooks), once with one id (GitHub's
   "Redeliver"), each for a commit not seen before. Wall time from the first
   request sent to the last answer (target <= 1 s), the jobs the store holds
   for that commit (target: exactly one), and how many times the daemon read
   a pushed commit (its ftg_push_commits_read_total).

The client is a small HTTP/1.1 keep-alive client on asyncio streams, so
that on a small machine the load generator costs less than what it measures
(httpx spends about a millisecond of CPU per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from daemon_bench import free_port, headers, make_repo, percentile, push_body, start_daemon, stop

REPOSITORY = "bench/repo"


class Connection:
    """One keep-alive HTTP/1.1 connection to the daemon; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, path: str, body: bytes = b"", extra: dict | None = None) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        return status, await self.reader.readexactly(int(length.group(1)) if length else 0)

    def close(self) -> None:
        self.writer.close()


async def in_flight(port: int, requests: list[tuple[str, str, bytes, dict]], connections: int) -> tuple[list, float]:
    """Send every request, `connections` at a time: ([(status, body, milliseconds)], wall seconds)."""
    pool = [await Connection.open(port) for _ in range(min(connections, len(requests)))]
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    results: list[tuple[int, bytes, float]] = []

    async def worker(conn: Connection) -> None:
        while not queue.empty():
            method, path, body, extra = queue.get_nowait()
            start = time.perf_counter()
            status, answer = await conn.request(method, path, body, extra)
            results.append((status, answer, (time.perf_counter() - start) * 1000))

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in pool))
    wall = time.perf_counter() - start
    for conn in pool:
        conn.close()
    return results, wall


def push_request(before: str, after: str, delivery: str) -> tuple[str, str, bytes, dict]:
    body = push_body(before, after, REPOSITORY)
    return "POST", "/webhooks/github", body, headers(body, delivery)


def jobs_at(db: Path, commit: str) -> int:
    with sqlite3.connect(db) as cx:
        return cx.execute("SELECT count(*) FROM job_keys WHERE commit_id = ?", (commit,)).fetchone()[0]


async def commits_read(port: int) -> int:
    conn = await Connection.open(port)
    _, page = await conn.request("GET", "/metrics")
    conn.close()
    found = re.search(rb'ftg_push_commits_read_total\{repository="[^"]*"\} (\d+)', page)
    return int(found.group(1)) if found else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(label: str, took: list[float]) -> str:
    return (
        f"   {label:<28}: p50 {statistics.median(took):6.1f} ms  p99 {percentile(took, 99):6.1f} ms"
        f"  max {max(took):6.1f} ms  (n={len(took)})"
    )


async def measure(
    pid: int, port: int, db: Path, commits: list[str], bursts: int, duplicates: int, connections: int
) -> None:
    took, reference, cpu = [], [], 0.0
    for b in range(bursts):
        pushes = [
            push_request(commits[i - 1], commits[i], f"burst-{b}-{i}") for i in range(1 + 50 * b, 1 + 50 * (b + 1))
        ]
        used = cpu_seconds(pid)
        results, _ = await in_flight(port, pushes, 50)
        cpu += cpu_seconds(pid) - used
        assert all(status == 202 for status, _, _ in results), results[:3]
        took += [ms for _, _, ms in results]
        health, _ = await in_flight(port, [("GET", "/healthz", b"", {})] * 50, 50)
        reference += [ms for _, _, ms in health]
    print("1. 50 webhook deliveries in flight, distinct commits, answered once the job is recorded (p99 <= 200 ms)")
    print(summary(f"pushes, {bursts} bursts of 50", took))
    print(f"   daemon CPU while a burst was answered: {cpu / len(took) * 1000:.1f} ms per delivery (its jobs' too)")
    print(summary("reference GET /healthz", reference))

    print(f"2. {duplicates} duplicate deliveries of one push, {connections} connections (<= 1 s, exactly one job)")
    next_commit = 1 + 50 * bursts
    for label, same_id in (("distinct delivery ids", False), ("one delivery id", True)):
        before, after = commits[next_commit - 1], commits[next_commit]
        next_commit += 1
        read_before = await commits_read(port)
        copies = [push_request(before, after, "dup" if same_id else f"dup-{after[:8]}-{i}") for i in range(duplicates)]
        used = cpu_seconds(pid)
        results, wall = await in_flight(port, copies, connections)
        used = cpu_seconds(pid) - used
        statuses = Counter(status for status, _, _ in results)
        print(
            f"   {label:<28}: {wall * 1000:6.0f} ms wall, p99 {percentile([ms for *_, ms in results], 99):6.1f} ms;"
            f" jobs for the commit {jobs_at(db, after)}; commit read {await commits_read(port) - read_before}x;"
            f" answers {dict(sorted(statuses.items()))}; daemon CPU {used * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--duplicates", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        commits = make_repo(workdir / "repo", 50 * args.bursts + 3)
        port = free_port()
        proc = start_daemon(workdir, [(REPOSITORY, workdir / "repo", False)], port)
        try:
            asyncio.run(
                measure(
                    proc.pid,
                    port,
                    workdir / "state" / "state.db",
                    commits,
                    args.bursts,
                    args.duplicates,
                    args.connections,
                )
            )
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
