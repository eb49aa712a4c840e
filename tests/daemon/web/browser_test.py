"""The console in a real browser (Debian's Chromium, driven by Playwright) against a real daemon running real jobs.

A person's path: log in, the list, a job, a task whose log grows while they
watch; a task changes state and the page shows it without a reload; Cancel
stops a running job; a 200-task job's page renders. Every request the
browser makes to another origin is blocked and recorded (there must be
none: the console is for air-gapped clusters), and so is every console
error (there must be none). Screenshots of the three main pages are taken;
with FTG_SCREENSHOTS=DIR they are also written there (docs/screenshots for
the README).

Playwright's own browser download cannot work on these machines: the test
launches the system's `chromium` (.ci/run installs it). Where it or
Playwright is missing the test cannot run, which under CI=true is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import await_until, cannot_run, required_module
from daemon.conftest import REPO_NAME, running
from daemon.web.console_helpers import WRITE, add_pipeline, bearer, tokens_config

from fasttrack_gitops.core.job import JobStatus, TaskState

pytestmark = pytest.mark.timeout(240)
expect = None  # playwright's, imported when a test runs (it may be missing: chromium_path says so)

TALKY = """\
version: "26.4.4"
name: talky
tasks:
  - name: warmup
    command: echo warm
  - name: talk
    dependencies: [warmup]
    command: >-
      for i in $(seq 1 40); do printf '\\033[32mline %s\\033[0m\\n' "$i"; sleep 0.1; done;
      while [ ! -f {gate} ]; do sleep 0.05; done; echo finished talking
  - name: after
    dependencies: [talk]
    command: echo after
"""


def wide(n: int = 200) -> str:
    """A pipeline of n tasks: a root, a fan of n-2, and a join (what a hyper-parameter sweep looks like)."""
    lines = ['version: "26.4.4"', "name: sweep", "tasks:", "  - name: root", '    command: "true"']
    for i in range(n - 2):
        lines += [f"  - name: trial-{i:03d}", "    dependencies: [root]", '    command: "true"']
    lines += [
        "  - name: join",
        f"    dependencies: [{', '.join(f'trial-{i:03d}' for i in range(n - 2))}]",
        '    command: "true"',
    ]
    return "\n".join(lines) + "\n"


def chromium_path() -> str:
    required_module("playwright.async_api", "playwright")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        cannot_run("the chromium browser is not installed (apt-get install chromium; .ci/run does)")
    return found


class Watch:
    """What the browser did that it must not: requests to another origin, console errors, page errors."""

    def __init__(self, origin: str):
        self.origin = origin
        self.foreign: list[str] = []
        self.errors: list[str] = []

    async def attach(self, context) -> None:
        async def route(r):
            url = r.request.url
            if url.startswith(self.origin + "/") or url == self.origin or url.startswith("data:"):
                await r.continue_()
            else:
                self.foreign.append(url)
                await r.abort()

        await context.route("**/*", route)
        context.on("page", self.page)

    def page(self, page) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))


async def browse(config, scenario):
    # Waits go through locators, never wait_for_function: that evaluates a string, which the console's CSP
    # (no unsafe-eval) refuses, as it should.
    """Run `scenario(daemon, client, page, watch)` with the daemon and a logged-in browser page."""
    import httpx
    from playwright.async_api import async_playwright

    global expect
    from playwright.async_api import expect

    expect.set_options(timeout=20_000)

    executable = chromium_path()
    async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 860})
                context.set_default_timeout(20_000)
                watch = Watch(url)
                await watch.attach(context)
                page = await context.new_page()
                await page.goto(url + "/jobs")
                assert await page.title() == "Log in · fasttrack-gitops"  # the console wants a credential
                await page.fill("#token", WRITE)
                await page.press("#token", "Enter")  # the keyboard is enough
                await page.wait_for_selector("h1:text('Jobs')")
                await scenario(daemon, client, page, watch)
                assert watch.foreign == [], watch.foreign
                assert watch.errors == [], watch.errors
            finally:
                await browser.close()


async def start(client, pipeline: str) -> str:
    answer = await client.post(
        "/api/trigger", json={"repository": REPO_NAME, "pipeline": pipeline, "ref": "main"}, headers=bearer(WRITE)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["jobs"][0]


def _states(view) -> str:
    from collections import Counter

    reasons = {i.reason for i in view.tasks.values() if i.reason}
    return f"{view.status}, tasks {dict(Counter(str(i.state) for i in view.tasks.values()))}, reasons {sorted(reasons)[:3]}"


def shots_dir(tmp_path: Path) -> list[Path]:
    out = [tmp_path / "screenshots"]
    if os.environ.get("FTG_SCREENSHOTS"):
        out.append(Path(os.environ["FTG_SCREENSHOTS"]))
    for d in out:
        d.mkdir(parents=True, exist_ok=True)
    return out


async def shoot(page, dirs: list[Path], name: str) -> None:
    for d in dirs:
        await page.screenshot(path=str(d / name), full_page=False)
        assert (d / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_list_then_job_then_a_task_log_followed_live_and_the_state_changing_without_a_reload(tmp_path, source_repo):
    gate = tmp_path / "go"
    add_pipeline(source_repo, "talky", TALKY.replace("{gate}", str(gate)))
    config = tokens_config(tmp_path, source_repo)
    dirs = shots_dir(tmp_path)

    async def scenario(daemon, client, page, watch):
        done = await start(client, "demo")
        await await_until(lambda: daemon.store.view(done).status == JobStatus.SUCCEEDED)
        job = await start(client, "talky")
        await page.reload()
        row = page.locator(f'tr[data-job="{job}"]')
        await row.wait_for()
        assert await page.locator("tr[data-job]").count() == 2
        await row.locator("a").click()  # list -> job
        await page.wait_for_url(f"**/jobs/{job}")
        await page.wait_for_selector("#live:text('live')")  # the event stream is open
        await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        talk = page.locator('.dag .node[data-task="talk"]')
        await talk.wait_for()
        await expect(page.locator('.dag .node.state-running[data-task="talk"]')).to_have_count(1)
        await shoot(page, dirs, "job.png")
        await talk.focus()  # job -> task, from the graph, by keyboard: every node is a link
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/jobs/{job}/tasks/talk")
        await page.wait_for_selector("#follow:text('following')")
        first = await page.inner_text("#log")
        await expect(page.locator("#log")).to_contain_text("line 30")
        later = await page.inner_text("#log")
        assert len(later) > len(first) and "line 30" in later  # it grew while we looked
        assert await page.locator("#log span.ansi-32").count() >= 30  # colours as classes
        await page.evaluate("window.__sameDocument = true")
        gate.touch()  # let the task finish: its state changes, the page follows without a reload
        await expect(page.locator("#task-state")).to_have_text("succeeded")
        await expect(page.locator("#task-exit-code")).to_have_text("0")
        await expect(page.locator("#log")).to_contain_text("finished talking")
        assert await page.evaluate("window.__sameDocument === true")
        await shoot(page, dirs, "task.png")
        await page.go_back()
        await expect(page.locator("#job-status")).to_have_text("succeeded")
        await page.goto(page.url.split("/jobs/")[0] + "/jobs")
        await page.wait_for_selector(f'tr[data-job="{job}"] [data-status]:text("succeeded")')
        await shoot(page, dirs, "jobs.png")

    asyncio.run(browse(config, scenario))


def test_cancel_from_the_page_stops_the_job(tmp_path, source_repo):
    gate = tmp_path / "never"
    add_pipeline(source_repo, "talky", TALKY.replace("{gate}", str(gate)))
    config = tokens_config(tmp_path, source_repo)

    async def scenario(daemon, client, page, watch):
        job = await start(client, "talky")
        await await_until(lambda: daemon.store.view(job).tasks["talk"].state == TaskState.RUNNING)
        await page.goto(f"{page.url.split('/jobs')[0]}/jobs/{job}")
        await page.click("#cancel-form button")
        await page.wait_for_url(f"**/jobs/{job}")
        view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.CANCELLED and v)
        assert view.tasks["talk"].state == TaskState.CANCELLED and view.tasks["after"].state != TaskState.SUCCEEDED
        await page.wait_for_selector("#job-status:text('cancelled')")

    asyncio.run(browse(config, scenario))


def test_a_two_hundred_task_job_page_renders(tmp_path, source_repo):
    add_pipeline(source_repo, "sweep", wide(200))
    config = tokens_config(tmp_path, source_repo)

    async def scenario(daemon, client, page, watch):
        job = await start(client, "sweep")
        started = time.perf_counter()
        await page.goto(f"{page.url.split('/jobs')[0]}/jobs/{job}")
        await page.wait_for_selector(".dag .node >> nth=199")
        usable = time.perf_counter() - started
        assert await page.locator(".dag .node").count() == 200
        assert await page.locator("#tasks tr[data-task]").count() == 200
        await await_until(
            lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED,
            timeout=120,
            what=lambda: f"the job to succeed: {_states(daemon.store.view(job))}",
        )
        await expect(page.locator("#job-status")).to_have_text("succeeded")
        await expect(page.locator(".dag .node.state-succeeded")).to_have_count(200)  # every change arrived, live
        print(f"200-task job page usable in {usable * 1000:.0f} ms")

    asyncio.run(browse(config, scenario))
