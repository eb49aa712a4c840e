"""The console's speed targets (issue 15), measured on a real `fasttrack-gitops serve` process.

    python bench/console_bench.py [--tasks 200] [--requests 50] [--jobs 20] [--browser]

1. GET /jobs/{id} of a job with 200 tasks (a root, a 198-task fan, a join; run
   to its end): <= 100 ms server-side. The client's round trip on 127.0.0.1
   with a kept-alive connection is what is timed, an upper bound of the
   server's time. GET /jobs (the list) and GET /api/jobs/{id} as references.
2. SSE latency: a task's state change -> its event received by a follower of
   /api/events. For each of --jobs one-task jobs, the attempt's start time the
   runner recorded (the event carries it) against the moment the client read
   the `running` event: <= 1 s.
3. With --browser: time-to-usable of the 200-task page in headless Chromium
   (Debian's, via Playwright): navigation start until the last task of the
   graph is drawn: <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import serve  # noqa: E402
from daemon_bench import free_port, git, percentile, stop  # noqa: E402  (the bench folder is no package)

TOKEN = "console-bench-token-0123456789"
ONE = 'version: "26.4.4"\nname: one\ntasks:\n  - name: only\n    command: "true"\n'


def sweep(n: int) -> str:
    lines = ['version: "26.4.4"', "name: sweep", "tasks:", "  - name: root", '    command: "true"']
    for i in range(n - 2):
        lines += [f"  - name: trial-{i:03d}", "    dependencies: [root]", '    command: "true"']
    lines += ["  - name: join", f"    dependencies: [{', '.join(f'trial-{i:03d}' for i in range(n - 2))}]"]
    return "\n".join(lines) + '\n    command: "true"\n'


def start(workdir: Path, repo: Path, port: int) -> subprocess.Popen:
    config = workdir / "ftg.yaml"
    config.write_text(
        f"state_dir: {workdir / 'state'}\nlisten: 127.0.0.1:{port}\napi_token_env: BENCH_TOKEN\n"
        f"repositories:\n  - name: bench/console\n    url: {repo}\n    provider: none\n    watch: false\n"
    )
    return serve(config, port, {"BENCH_TOKEN": TOKEN})


async def trigger(client: httpx.AsyncClient, pipeline: str) -> str:
    answer = await client.post("/api/trigger", json={"repository": "bench/console", "pipeline": pipeline})
    answer.raise_for_status()
    return answer.json()["jobs"][0]


async def finished(client: httpx.AsyncClient, job: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await client.get(f"/api/jobs/{job}")).json()["status"]
        if status in ("succeeded", "failed", "cancelled", "invalid"):  # "interrupted" shows while a runner starts
            return status
        await asyncio.sleep(0.2)
    raise SystemExit(f"job {job} did not end")


async def timed(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    await client.get(path)  # warm: templates compiled, connection open
    out = []
    for _ in range(n):
        started = time.perf_counter()
        answer = await client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return out


async def sse_latencies(client: httpx.AsyncClient, jobs: int) -> list[float]:
    out: list[float] = []
    async with client.stream("GET", "/api/events", timeout=None) as stream:
        lines = stream.aiter_lines()
        for _ in range(jobs):
            job = await trigger(client, "one")
            kind = ""
            while True:
                line = await asyncio.wait_for(lines.__anext__(), 30)
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "task":
                    data = json.loads(line[6:])
                    if data["job"] == job and data["state"] == "running":
                        out.append((time.time() - data["started_at"]) * 1000)
                        break
            await finished(client, job)
    return out


async def browser_usable(url: str, job: str, runs: int = 5) -> list[float]:
    from playwright.async_api import async_playwright

    out = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{url}/login")
        await page.fill("#token", TOKEN)
        await page.press("#token", "Enter")
        await page.wait_for_url("**/")
        for _ in range(runs):
            started = time.perf_counter()
            await page.goto(f"{url}/jobs/{job}", wait_until="commit")
            await page.locator(".dag .node").nth(-1).wait_for()
            out.append((time.perf_counter() - started) * 1000)
        await browser.close()
    return out


def summary(name: str, values: list[float], target: float | None = None) -> None:
    verdict = ""
    if target is not None:
        verdict = f"  target <= {target:g} ms: {'met' if percentile(values, 95) <= target else 'NOT met'} at p95"
    print(
        f"{name}: n={len(values)} p50 {statistics.median(values):.1f} ms, p95 {percentile(values, 95):.1f} ms, "
        f"max {max(values):.1f} ms{verdict}"
    )


async def run(args: argparse.Namespace, workdir: Path) -> None:
    repo = workdir / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pipelines").mkdir()
    (repo / "pipelines" / "sweep.yaml").write_text(sweep(args.tasks))
    (repo / "pipelines" / "one.yaml").write_text(ONE)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "bench")
    port = free_port()
    proc = start(workdir, repo, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
            job = await trigger(client, "sweep")
            print(f"{args.tasks}-task job {job}: {await finished(client, job)}")
            summary(f"GET /jobs/{{id}} ({args.tasks} tasks)", await timed(client, f"/jobs/{job}", args.requests), 100)
            summary("GET /jobs (the list)", await timed(client, "/jobs", args.requests))
            summary(
                f"GET /api/jobs/{{id}} ({args.tasks} tasks, JSON)",
                await timed(client, f"/api/jobs/{job}", args.requests),
            )
            summary("SSE: attempt started -> event read by the client", await sse_latencies(client, args.jobs), 1000)
            if args.browser:
                summary(f"browser: /jobs/{{id}} ({args.tasks} tasks) usable", await browser_usable(url, job), 1000)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftg-console-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
