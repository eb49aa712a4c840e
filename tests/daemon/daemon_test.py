"""The daemon end to end: webhooks in over a real socket, jobs in the real SQLite store, tasks run locally."""

from __future__ import annotations

import asyncio
import json

import httpx

from conftest import git
from daemon.conftest import (
    REPO_NAME, commit_file, github_headers, load, pipeline_text, push_payload, running, wait_for, write_config,
)
from fasttrack_gitops.job import JobStatus

ZERO = "0" * 40


def test_a_signed_push_webhook_makes_one_job_that_runs_to_success(tmp_path, source_repo, contracts):
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# v2\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.post("/webhooks/github", content=body,
                                           headers=github_headers(body, "push", "delivery-1"))
                assert answer.status_code == 202, answer.text
                jobs = answer.json()["jobs"]
                assert len(jobs) == 1
                view = await wait_for(lambda: (v := daemon.store.view(jobs[0])).status == JobStatus.SUCCEEDED and v)
                assert view.job.commit == after and view.job.repository == REPO_NAME
                assert view.job.trigger["event"] == "push"
                again = await client.post("/webhooks/github", content=body,
                                          headers=github_headers(body, "push", "delivery-1"))
                assert again.status_code == 200 and again.json()["duplicate"] is True
                listed = (await client.get("/api/jobs")).json()
                assert [j["id"] for j in listed] == jobs
                assert (await client.get(f"/api/jobs/{jobs[0]}")).json()["status"] == "succeeded"

    asyncio.run(scenario())
