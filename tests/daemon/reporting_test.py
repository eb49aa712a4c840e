"""The daemon reporting back: a push runs a job, GitHub shows its check, Slack its message; secrets never leave.

Real daemon, real repository, real local tasks; GitHub and Slack are the
contract-checking servers of tests/reporting (every request body checked
against tests/data/contracts), so what is asserted is what a person would see.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from conftest import await_until, git
from daemon.conftest import SECRET, commit_file, deliver, pipeline_text, push_payload, running, write_config
from engine.reporters.contract_server import Answer
from engine.reporters.github_test import PLAIN_TOKEN, Clock, FakeGitHub
from engine.reporters.slack_test import TOKEN as SLACK_TOKEN
from engine.reporters.slack_test import FakeSlack

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.daemon.config_loading import load_config

CANARY = "canary-secret-7f3a9e"
PIPELINE = """\
version: "26.4.4"
name: demo
notify:
  slack: {channel: "#ml-pipelines", on: [start, failure]}
environment:
  envs: {LEAKY: "${{ secrets.CANARY }}"}
tasks:
  - name: prepare
    command: echo prepare > "$PIPELINE_OUTPUT_ROOT/out.txt"
  - name: train
    dependencies: [prepare]
    command: echo "about to print $LEAKY"; exit 3
"""


@pytest.fixture
def services(contracts):
    github = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), Clock())
    slack = FakeSlack(contracts)
    with github.server.serving(), slack.server.serving():
        yield github, slack


def config_for(tmp_path, repo, github, slack):
    path = write_config(
        tmp_path,
        repo,
        repo_extra="watch: false\n",
        extra=f"""\
        public_url: https://ftg.example.com
        slack:
          bot_token_env: FTG_TEST_SLACK_TOKEN
          default_channel: "#general"
          api_url: {slack.api_url}
        """,
    )
    text = path.read_text().replace(
        "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n",
        "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n"
        f"  token_env: FTG_TEST_GH_TOKEN\n  api_url: {github.url}\n",
    )
    path.write_text(text)
    config, diagnostics = load_config(
        path, {"FTG_TEST_WEBHOOK_SECRET": SECRET, "FTG_TEST_GH_TOKEN": PLAIN_TOKEN, "FTG_TEST_SLACK_TOKEN": SLACK_TOKEN}
    )
    assert config is not None, diagnostics
    return config


def everything_sent(*servers) -> str:
    return "\n".join(r.body.decode("utf-8", "replace") for s in servers for r in s.server.requests)


def test_a_failing_job_shows_as_a_check_and_a_slack_thread_with_its_log_masked(
    tmp_path, source_repo, contracts, services, monkeypatch
):
    github, slack = services
    monkeypatch.setenv("FTG_SECRET_CANARY", CANARY)
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", PIPELINE)
    config = config_for(tmp_path, source_repo, github, slack)

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                (job,) = (
                    await deliver(
                        client,
                        "push",
                        push_payload(contracts, ref="refs/heads/main", before=before, after=after),
                        "rep-1",
                    )
                ).json()["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.FAILED)
            await await_until(lambda: any(r.get("status") == "completed" for r in github.check_runs.values()))
            await await_until(lambda: any(m["thread_ts"] for m in slack.messages.values()))  # the log reply
            await await_until(lambda: "C0ML" in (daemon.outbox.row(job, "slack") or {}).get("state_json", ""))
            async with httpx.AsyncClient(base_url=url) as client:  # where the check's Details link leads
                page = await client.get(f"/jobs/{job}")
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                assert '<a class="node state-failed" id="node-1" data-task="train"' in page.text  # the DAG, drawn here
                assert '<span class="state state-failed" data-field="state">failed</span>' in page.text  # the table
                assert CANARY not in page.text
                assert "<dt>check run</dt>" in page.text and "<dt>Slack message</dt><dd>sent in C0ML</dd>" in page.text
                assert (await client.get("/jobs/nope")).status_code == 404
            return job

    job = asyncio.run(scenario())
    (check,) = github.check_runs.values()  # one check run for the job, updated in place
    assert check["name"] == "fasttrack/demo" and check["head_sha"] == after and check["external_id"] == job
    assert check["status"] == "completed" and check["conclusion"] == "failure"
    assert check["details_url"] == f"https://ftg.example.com/jobs/{job}"
    assert "train" in check["output"]["title"] and "about to print ***" in check["output"]["text"]
    assert "```mermaid" in check["output"]["summary"]
    assert [a["identifier"] for a in check.get("actions", [])] == ["rerun-failed"]
    assert len(github.server.calls("POST", r"/repos/.*/check-runs")) == 1
    (message,) = slack.top_level()
    assert message["channel"] == "C0ML" and "demo" in json.dumps(message["blocks"])
    replies = [m for m in slack.messages.values() if m["thread_ts"] is not None]
    assert any("about to print ***" in json.dumps(r["blocks"]) for r in replies)
    assert CANARY not in everything_sent(github, slack)


def test_a_report_that_could_not_be_sent_goes_out_after_a_restart(
    tmp_path, source_repo, contracts, services, monkeypatch
):
    github, slack = services
    monkeypatch.setenv("FTG_SECRET_CANARY", CANARY)
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", PIPELINE.replace("exit 3", "exit 0"))
    config = config_for(tmp_path, source_repo, github, slack)
    github.server.fail_next("POST", r"/repos/.*/check-runs", Answer(500, {"message": "Server Error"}), times=1000)

    async def first_life():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                (job,) = (
                    await deliver(
                        client,
                        "push",
                        push_payload(contracts, ref="refs/heads/main", before=before, after=after),
                        "rep-2",
                    )
                ).json()["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            await await_until(lambda: github.server.calls("POST", r"/repos/.*/check-runs"))
            assert daemon.outbox.pending().get("github") == 1  # owed, not lost
            return job

    job = asyncio.run(first_life())
    assert github.check_runs == {}
    github.server._faults.clear()  # GitHub is back

    async def second_life():
        async with running(config) as (daemon, url):
            await await_until(
                lambda: any(r.get("conclusion") == "success" for r in github.check_runs.values()), timeout=60
            )

    asyncio.run(second_life())
    (check,) = github.check_runs.values()
    assert check["external_id"] == job and check["status"] == "completed"


def test_a_pushed_job_runs_with_its_parameter_defaults_and_its_check_has_no_warning(
    tmp_path, source_repo, contracts, services
):
    github, slack = services
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(
        source_repo, "pipelines/demo.yaml", pipeline_text(extra="params:\n  - name: lr\n    default: 0.1\n")
    )
    config = config_for(tmp_path, source_repo, github, slack)

    daemon_jobs = []

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                push = push_payload(contracts, ref="refs/heads/main", before=before, after=after)
                (job,) = (await deliver(client, "push", push, "p-1")).json()["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            await await_until(lambda: any(r.get("conclusion") == "success" for r in github.check_runs.values()))
            daemon_jobs.append(daemon.store.view(job).job)

    asyncio.run(scenario())
    (check,) = github.check_runs.values()
    assert check.get("annotations", []) == []  # parameters are applied: nothing to warn about
    [job] = daemon_jobs
    assert [(p.name, p.value) for p in job.pipeline_model().params] == [("lr", 0.1)]
