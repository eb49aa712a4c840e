"""The plan in the check run: a queued job's check says what will run and be reused, and why; it stays, folded.

Real daemon, real repository and commits, real local tasks; GitHub is the
contract-checking server of tests/reporting.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from conftest import await_until, git
from daemon.conftest import commit_file, deliver, push_payload, running
from daemon.reporting_test import config_for, services  # noqa: F401 (services: a fixture)

from fasttrack_gitops.core.job import JobStatus

PIPELINE = """\
version: "26.4.4"
name: cached
cache: true
notify:
  slack: {channel: "#ml-pipelines", on: [success]}
tasks:
  - name: prepare
    code: tasks/prepare
    command: echo prepared > "$PIPELINE_OUTPUT_ROOT/data.txt"
  - name: train
    code: tasks/train
    dependencies: [prepare]
    command: cat "$PIPELINE_INPUT1/data.txt" > "$PIPELINE_OUTPUT_ROOT/model.txt"
"""


def test_the_check_run_shows_the_plan_and_why_each_task_runs_or_is_reused(
    tmp_path,
    source_repo,
    contracts,
    services,  # noqa: F811
):
    github, slack = services
    commit_file(source_repo, "tasks/prepare/run.txt", "prepare v1\n")
    commit_file(source_repo, "tasks/train/run.txt", "train v1\n")
    before = git(source_repo, "rev-parse", "HEAD").strip()
    first = commit_file(source_repo, "pipelines/demo.yaml", PIPELINE)
    second = commit_file(source_repo, "tasks/train/run.txt", "train v2\n")  # only train's code changes
    third = commit_file(source_repo, "README.md", "docs only\n")  # nothing a task reads changes
    config = config_for(tmp_path, source_repo, github, slack)

    async def push(client, daemon, old, new, delivery):
        payload = push_payload(contracts, ref="refs/heads/main", before=old, after=new)
        (job,) = (await deliver(client, "push", payload, delivery)).json()["jobs"]
        await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
        await await_until(lambda: _check(github, job).get("status") == "completed")
        await await_until(lambda: "The plan before the run" in _check(github, job)["output"]["summary"])
        return job

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                return [
                    await push(client, daemon, before, first, "d-1"),
                    await push(client, daemon, first, second, "d-2"),
                    await push(client, daemon, second, third, "d-3"),
                ]

    jobs = asyncio.run(scenario())
    summaries = [_check(github, job)["output"]["summary"] for job in jobs]
    plan = [s.split("<summary>The plan before the run</summary>", 1)[1] for s in summaries]
    assert "will run 2 · reuse 0 of 2 tasks" in plan[0]
    assert "no earlier run with this key" in _row(plan[0], "prepare")
    assert "input 'prepare' will run" in _row(plan[0], "train")
    assert "reuse" in _row(plan[1], "prepare") and f"reused from job {jobs[0]}" in _row(plan[1], "prepare")
    assert "code of tasks/train changed" in _row(plan[1], "train")
    for task in ("prepare", "train"):
        assert "reuse" in _row(plan[2], task), plan[2]
    # the title says what the cache saved, on GitHub and in Slack
    titles = [_check(github, job)["output"]["title"] for job in jobs]
    assert "ran 1 · reused 1 of 2 tasks" in titles[1] and "ran 0 · reused 2 of 2 tasks" in titles[2], titles
    slack_text = json.dumps([m["blocks"] for m in slack.messages.values()], ensure_ascii=False)
    assert "ran 1 · reused 1" in slack_text and "ran 0 · reused 2" in slack_text
    # the task table above the plan says what happened: reused tasks as such
    assert "reused" in _row(summaries[2].split("<details>", 1)[0], "train")


def _check(github, job: str) -> dict:
    return next((c for c in github.check_runs.values() if c.get("external_id") == job), {})


def _row(markdown: str, task: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| `{task}`"))
