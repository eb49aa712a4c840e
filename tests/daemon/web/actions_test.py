"""The console's buttons as a person presses them (logged in, from the page's own form) and as an attacker tries
them: without the write level, without or with a forged CSRF token, from another origin."""

from __future__ import annotations

import asyncio

import httpx
from conftest import await_until
from daemon.conftest import REPO_NAME, commit_file, deliver, pipeline_text, pr_payload
from daemon.http_test import serving
from daemon.web.console_helpers import SLOW, WRITE, add_pipeline, csrf_of, log_in, tokens_config, trigger

from fasttrack_gitops.core.job import JobStatus, TaskState


def test_cancel_from_the_page_stops_the_running_job(tmp_path, source_repo):
    add_pipeline(source_repo, "slow", SLOW)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            await log_in(client, WRITE)
            job = await trigger(client, "slow")
            await await_until(lambda: daemon.store.view(job).tasks["wait"].state == TaskState.RUNNING)
            page = (await client.get(f"/jobs/{job}")).text
            assert "Cancel job" in page
            pressed = await client.post(f"/jobs/{job}/cancel", data={"csrf": csrf_of(page)})
            assert pressed.status_code == 303 and pressed.headers["location"] == f"/jobs/{job}"
            view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.CANCELLED and v)
            assert view.tasks["wait"].state == TaskState.CANCELLED
            again = await client.post(f"/jobs/{job}/cancel", data={"csrf": csrf_of(page)})
            assert again.status_code == 409 and "nothing to cancel" in again.text

    asyncio.run(scenario())


def test_a_forged_or_missing_csrf_token_a_cross_origin_post_or_no_write_login_change_nothing(tmp_path, source_repo):
    add_pipeline(source_repo, "slow", SLOW)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            job = await trigger(client, "slow")
            await await_until(lambda: daemon.store.view(job).tasks["wait"].state == TaskState.RUNNING)
            cancel = f"/jobs/{job}/cancel"
            # no login at all
            assert (await client.post(cancel, data={"csrf": "x"})).status_code == 401
            csrf = await log_in(client, WRITE)
            forged = csrf[:-2] + ("AA" if not csrf.endswith("AA") else "BB")
            for data, headers, status in (
                ({}, {}, 403),  # no token
                ({"csrf": forged}, {}, 403),  # a forged one
                ({"csrf": csrf}, {"Origin": "https://evil.example"}, 403),  # the right token, from another site
                ({"csrf": csrf}, {"Referer": "http://127.0.0.2:1/attack.html"}, 403),
                ({"csrf": csrf}, {"Origin": "null"}, 403),  # a sandboxed frame
            ):
                refused = await client.post(cancel, data=data, headers=headers)
                assert refused.status_code == status, (data, headers, refused.text[:300])
            # another browser's CSRF token does not fit this browser's cookie
            async with httpx.AsyncClient(base_url=client.base_url) as another_browser:
                other = await another_browser.get("/login")
            refused = await client.post(cancel, data={"csrf": csrf_of(other.text)})
            assert refused.status_code == 403
            # the rerun and approve buttons refuse the same way
            assert (await client.post(f"/jobs/{job}/rerun", data={"csrf": forged})).status_code == 403
            assert (
                await client.post("/repos/approve", data={"csrf": forged, "repository": REPO_NAME, "number": "1"})
            ).status_code == 403
            assert daemon.store.view(job).status == JobStatus.RUNNING and not daemon.store.view(job).cancel_requested
            assert len(daemon.store.list_jobs(limit=0)) == 1
            daemon.cancel_job(job, "the test")

    asyncio.run(scenario())


def test_rerun_all_or_failed_only_makes_a_new_job_once_per_press(tmp_path, source_repo):
    failing = 'version: "26.4.4"\nname: flaky\ntasks:\n  - name: ok\n    command: "true"\n  - name: bad\n    command: exit 3\n'
    add_pipeline(source_repo, "flaky", failing)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            csrf = await log_in(client, WRITE)
            job = await trigger(client, "flaky")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.FAILED)
            page = (await client.get(f"/jobs/{job}")).text
            assert "Re-run all" in page and "Re-run failed" in page and ">3<" in page  # the exit code
            form = {"csrf": csrf_of(page), "failed_only": "1", "request": "press-1"}
            pressed = await client.post(f"/jobs/{job}/rerun", data=form)
            assert pressed.status_code == 303
            new = pressed.headers["location"].rsplit("/", 1)[1]
            assert new != job
            twice = await client.post(f"/jobs/{job}/rerun", data=form)  # a double click
            assert twice.headers["location"] == pressed.headers["location"]
            rerun = daemon.store.view(new).job
            assert rerun.rerun_of == job and rerun.trigger["failed_only"] is True and rerun.trigger["event"] == "rerun"
            await await_until(lambda: daemon.store.view(new).status == JobStatus.FAILED)
            assert (
                daemon.store.view(new).tasks["ok"].state == TaskState.REUSED
                or daemon.store.view(new).tasks["ok"].attempts == ()
            )
            everything = await client.post(
                f"/jobs/{job}/rerun", data={**form, "failed_only": "0", "request": "press-2"}
            )
            assert everything.status_code == 303 and len(daemon.store.list_jobs(limit=0)) == 3
            assert csrf

    asyncio.run(scenario())


def test_approve_from_the_repositories_page_runs_a_held_fork_pull_request(tmp_path, source_repo, contracts):
    config = tokens_config(tmp_path, source_repo)
    main = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    head = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# fork\n")

    async def scenario():
        async with serving(config) as (daemon, client):
            fork = pr_payload(contracts, number=7, head_sha=head, base_sha=main, head_repo="stranger/pipes")
            held = await deliver(client, "pull_request", fork, "fork-7")
            assert held.json()["jobs"] == []
            await log_in(client, WRITE)
            page = (await client.get("/repos")).text
            assert "#7" in page and "Approve and run" in page
            pressed = await client.post(
                "/repos/approve", data={"csrf": csrf_of(page), "repository": REPO_NAME, "number": "7"}
            )
            assert pressed.status_code == 303, pressed.text
            (job,) = [v.job for v in daemon.store.list_jobs(limit=0)]
            assert job.trigger["approved_by"] == "the console (API token)" and job.trigger["number"] == 7
            assert "None is waiting" in (await client.get("/repos")).text
            for number in ("²", "9" * 5000, "-1", ""):
                bad = await client.post(
                    "/repos/approve", data={"csrf": csrf_of(page), "repository": REPO_NAME, "number": number}
                )
                assert bad.status_code == 400, number
            again = await client.post(
                "/repos/approve", data={"csrf": csrf_of(page), "repository": REPO_NAME, "number": "7"}
            )
            assert again.status_code == 303 and len(daemon.store.list_jobs(limit=0)) == 1  # idempotent, as the comment

    asyncio.run(scenario())
