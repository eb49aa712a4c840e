"""The console's pages over a real daemon and real jobs: the list and its filters, a job, a task and its log, the
repositories; and the bad inputs: ids and task names with markup, quotes and path segments, terminal escapes,
a 1 MB log line."""

from __future__ import annotations

import asyncio
import re

from conftest import await_until
from daemon.http_test import serving
from daemon.web.console_helpers import READ, add_pipeline, bearer, tokens_config, trigger

from fasttrack_gitops.core.job import JobStatus

NOISY = r"""version: "26.4.4"
name: noisy
tasks:
  - name: shout
    command: >-
      printf '\033[1;31mred alert\033[0m plain \033[2J\033]0;evil title\007<script>alert(1)</script>\n' &&
      head -c 1048576 /dev/zero | tr '\0' 'x' && printf '\nthe end\n'
"""


def test_the_list_shows_each_job_with_its_facts_and_filters_and_pages(tmp_path, source_repo):
    add_pipeline(source_repo, "noisy", NOISY)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            demo = await trigger(client, "demo")
            noisy = await trigger(client, "noisy")
            await await_until(lambda: all(daemon.store.view(j).status == JobStatus.SUCCEEDED for j in (demo, noisy)))
            page = (await client.get("/jobs")).text
            rows = re.findall(r'<tr data-job="([^"]+)">', page)
            assert rows == [noisy, demo]  # newest first
            assert "manual by api" in page and "2 / 0" in page and "1 / 0" in page  # trigger, ran / reused
            assert (await client.get("/")).text.count("<tr data-job=") == 2
            only = (await client.get("/jobs", params={"pipeline": "demo"})).text
            assert re.findall(r'<tr data-job="([^"]+)">', only) == [demo]
            assert "Clear" in only
            for params in (
                {"status": "failed"},
                {"trigger": "push"},
                {"branch": "nope"},
                {"repository": "other/repo"},
            ):
                assert "<tr data-job=" not in (await client.get("/jobs", params=params)).text, params
            for params in (
                {"status": "succeeded"},
                {"trigger": "manual"},
                {"branch": "main"},
                {"repository": "acme/pipes"},
            ):
                assert len(re.findall("<tr data-job=", (await client.get("/jobs", params=params)).text)) == 2, params
            bad = await client.get("/jobs", params={"status": "<script>"})
            assert bad.status_code == 400 and "&lt;script&gt;" in bad.text and "<script>" not in bad.text
            second = (await client.get("/jobs", params={"page": "2"})).text
            assert "<tr data-job=" not in second and 'rel="prev"' in second

    asyncio.run(scenario())


def test_the_job_page_shows_the_dag_the_tasks_and_the_spec_and_the_task_page_the_log(tmp_path, source_repo):
    add_pipeline(source_repo, "noisy", NOISY)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            page = (await client.get(f"/jobs/{job}")).text
            assert '<svg class="dag"' in page and page.count('<a class="node state-succeeded"') == 2
            assert f'href="/jobs/{job}/tasks/train"' in page
            assert '<span class="state state-succeeded" data-field="state">succeeded</span>' in page
            assert "Frozen spec" in page and "&#34;name&#34;: &#34;prepare&#34;" in page
            task = (await client.get(f"/jobs/{job}/tasks/train")).text
            assert "prepare" in task and 'class="log"' in task and "data-follow" not in task  # ended: nothing to follow
            assert "/outputs/" not in task  # train writes nothing; prepare does
            outputs = (await client.get(f"/jobs/{job}/tasks/prepare")).text
            assert f"/api/jobs/{job}/tasks/prepare/outputs/out.txt" in outputs

            noisy = await trigger(client, "noisy")
            await await_until(lambda: daemon.store.view(noisy).status == JobStatus.SUCCEEDED)
            answer = await client.get(f"/jobs/{noisy}/tasks/shout")
            text = answer.text
            assert answer.status_code == 200
            assert "the end" in text and len(text) < 300_000  # the tail of a 1 MB line, not all of it
            assert "The start of this log is not shown" in text and "\x1b" not in text
            follow = await client.get(f"/jobs/{noisy}/tasks/shout/log", params={"attempt": 1, "offset": 0})
            chunk = follow.json()
            assert chunk["ended"] and chunk["offset"] == 256 * 1024
            shown = chunk["html"]
            assert '<span class="ansi-31 ansi-bold">red alert</span> plain' in shown  # colours kept, as classes
            assert "\x1b" not in shown and "\x07" not in shown and "evil title" not in shown  # other escapes dropped
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert" not in shown

    asyncio.run(scenario())


def test_ids_and_task_names_with_markup_quotes_or_path_segments_are_404_and_escaped(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            for path in (
                "/jobs/<script>alert(1)</script>",
                '/jobs/"onmouseover="alert(1)',
                "/jobs/'><img src=x>",
                f"/jobs/{job}/tasks/<script>alert(1)</script>",
                f"/jobs/{job}/tasks/\"'><svg onload=x>",
                "/jobs/..%2F..%2Fetc%2Fpasswd",
                f"/jobs/{job}/tasks/..%2F..%2Fetc",
                f"/jobs/{job}/tasks/train/log?attempt=1&offset=0&x=<script>",
                f"/jobs/{job}/tasks/train/log?attempt=%C2%B2&offset=0",  # '²' is a digit to str.isdigit
                f"/jobs/{job}/tasks/train/log?attempt=1&offset={'9' * 5000}",
                f"/jobs/{job}/tasks/train?attempt={'9' * 5000}",
                f"/jobs?page={'9' * 5000}",
                "/api/jobs/<script>",
                f"/api/jobs/{job}/tasks/<script>/outputs",
            ):
                answer = await client.get(path)
                assert answer.status_code in (404, 400, 200), (path, answer.status_code)
                assert answer.status_code != 200 or path.endswith("<script>") or "9999" in path, path
                for raw in ("<script>alert", "<img src=x>", "<svg onload", 'onmouseover="alert'):
                    assert raw not in answer.text, (path, answer.text[:400])
                assert "root:" not in answer.text and str(tmp_path) not in answer.text

    asyncio.run(scenario())


def test_the_repositories_page_shows_positions_queue_and_held_fork_pull_requests(tmp_path, source_repo, contracts):
    from conftest import git
    from daemon.conftest import deliver, pr_payload
    from daemon.http_test import quiet_config

    config = quiet_config(tmp_path, source_repo)
    main = git(source_repo, "rev-parse", "HEAD").strip()

    async def scenario():
        async with serving(config) as (daemon, client):
            fork = pr_payload(contracts, number=9, head_sha=main, base_sha=main, head_repo="stranger/pipes")
            await deliver(client, "pull_request", fork, "fork-1")
            page = (await client.get("/repos")).text
            assert "acme/pipes" in page and "#9" in page and main[:12] in page
            assert "Approve and run" in page  # a credential-less daemon's own machine may press it

    asyncio.run(scenario())
