"""The daemon on a full disk: a webhook it cannot record is answered 503 (GitHub delivers it again), its state stays
sound, and once there is room the redelivery makes its one job. The disk is a real size-limited tmpfs."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
from conftest import await_until, git
from daemon.conftest import commit_file, github_headers, load, pipeline_text, push_payload, running, write_config
from engine.disk_full_test import fill, small_disk  # noqa: F401  (small_disk is a fixture)

from fasttrack_gitops.core.job import JobStatus


def test_a_webhook_on_a_full_disk_is_503_and_its_redelivery_runs_once(tmp_path, source_repo, contracts, small_disk):  # noqa: F811
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# v2\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    small_disk(config.state_dir, "2m")
    body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()

    async def scenario():
        async with running(config) as (daemon, url):
            filler = fill(config.state_dir)
            async with httpx.AsyncClient(base_url=url) as client:
                full = await client.post("/webhooks/github", content=body, headers=github_headers(body, "push", "d-1"))
                assert full.status_code == 503, full.text
                assert "state cannot be written now; deliver again" in full.json()["error"]
                assert daemon.store.list_jobs(limit=0) == []
                filler.unlink()
                again = await client.post("/webhooks/github", content=body, headers=github_headers(body, "push", "d-1"))
                assert again.status_code == 202, again.text
                (job,) = again.json()["jobs"]
                await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED, what="the job")
                assert len(daemon.store.list_jobs(limit=0)) == 1

    asyncio.run(scenario())
    with sqlite3.connect(config.state_dir / "state.db") as cx:
        assert cx.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert cx.execute("PRAGMA foreign_key_check").fetchall() == []
