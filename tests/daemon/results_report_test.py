"""Model results where the decision is made: a pull request's check compares with its merge base's job.

Real daemon, real repository with a branch, real local tasks; GitHub and
Slack are the contract-checking servers (every request body checked against
the published schemas). The plot is fetched from the daemon through the
signed link the check carries, without a token.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
from conftest import await_until, git
from daemon.conftest import commit_file, deliver, pr_payload, push_payload, running
from daemon.reporting_test import config_for, services  # noqa: F401 (services: a fixture)

from fasttrack_gitops.core.job import JobStatus

PIPELINE = """\
version: "26.4.4"
name: model
on:
  push: {branches: [main]}
  pull_request: {}
notify:
  slack: {channel: "#ml-pipelines", on: [always]}
tasks:
  - name: train
    code: tasks/train
    command: cp score.json "$PIPELINE_OUTPUT_ROOT/metrics.json"; mkdir -p "$PIPELINE_OUTPUT_ROOT/plots"; cp roc.svg "$PIPELINE_OUTPUT_ROOT/plots/"
    metrics:
      files: [metrics.json]
      rules:
        accuracy: {direction: higher, noise: 0.002, gate: {min: 0.90, max_regression: "1%"}}
        loss: {direction: lower}
    plots: [{path: plots/roc.svg, title: ROC curve}]
"""
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


def test_a_pull_request_that_makes_the_model_worse_gets_a_red_check_with_the_gate_in_its_title(
    tmp_path,
    source_repo,
    contracts,
    services,  # noqa: F811
):
    github, slack = services
    before = git(source_repo, "rev-parse", "HEAD").strip()
    commit_file(source_repo, "tasks/train/roc.svg", SVG)
    commit_file(source_repo, "tasks/train/score.json", json.dumps({"accuracy": 0.93, "loss": 0.3}))
    main = commit_file(source_repo, "pipelines/demo.yaml", PIPELINE)
    git(source_repo, "checkout", "-q", "-b", "feature")
    head = commit_file(source_repo, "tasks/train/score.json", json.dumps({"accuracy": 0.88, "loss": 0.25}))
    git(source_repo, "checkout", "-q", "main")
    config = config_for(tmp_path, source_repo, github, slack)

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                push = push_payload(contracts, ref="refs/heads/main", before=before, after=main)
                (first,) = (await deliver(client, "push", push, "d-1")).json()["jobs"]
                await await_until(lambda: daemon.store.view(first).status == JobStatus.SUCCEEDED)
                pr = pr_payload(contracts, number=5, head_sha=head, base_sha=main)
                (second,) = (await deliver(client, "pull_request", pr, "d-2")).json()["jobs"]
                await await_until(lambda: _check(github, second).get("status") == "completed")
                image = _check(github, second)["output"]["images"][0]["image_url"]
                link = urlsplit(image)
                signed = await client.get(f"{link.path}?{link.query}")  # no token: the signature is the key
                tampered = await client.get(f"{link.path}?{link.query.replace('expires=', 'expires=9')}")
                unsigned = await client.get(link.path)
                api = (await client.get(f"/api/jobs/{second}/metrics")).json()
                assert api["base"]["job"] == first and api["gates_failed"] == 1
                assert {m["name"]: m["verdict"] for m in api["metrics"]} == {"accuracy": "worse", "loss": "better"}
                assert (await client.get("/api/jobs/nope/metrics")).status_code == 404
                page = (await client.get(f"/jobs/{second}")).text  # where GitLab's commit status links
                assert "<h2>Model results</h2>" in page and '<td class="gate">❌ gate ≥ 0.9</td>' in page
                task_page = (await client.get(f"/jobs/{second}/tasks/train")).text  # the task's own, and its plot
                assert '<td class="gate">❌ gate ≥ 0.9</td>' in task_page and "1 gate(s) failed" in task_page
                assert f'<img src="/api/jobs/{second}/tasks/train/outputs/plots/roc.svg"' in task_page
            return first, second, image, signed, tampered, unsigned

    first, second, image, signed, tampered, unsigned = asyncio.run(scenario())
    check = _check(github, second)
    assert check["conclusion"] == "failure"  # every task exited 0: the gate decides
    assert check["output"]["title"].startswith("Gate failed: accuracy 0.93 → 0.88"), check["output"]["title"]
    summary = check["output"]["summary"]
    assert summary.startswith("### Model results"), summary[:200]
    assert f"Compared with `main@{main[:7]}`" in summary and f"/jobs/{first}" in summary
    assert image.startswith(f"https://ftg.example.com/api/jobs/{second}/tasks/train/outputs/plots/roc.svg?")
    assert signed.status_code == 200 and signed.headers["content-type"].startswith("image/svg+xml")
    assert signed.text == SVG and "default-src 'none'" in signed.headers["content-security-policy"]
    assert tampered.status_code == 403 and unsigned.status_code == 401
    # the push's own check: the first job on main has no earlier job to compare with, and passes
    assert _check(github, first)["conclusion"] == "success"
    # Slack: the job's message carries the model results headline
    blocks = json.dumps([m["blocks"] for m in slack.messages.values()], ensure_ascii=False)
    assert "*Model results*" in blocks and "accuracy 0.93 → 0.88" in blocks


def _check(github, job: str) -> dict:
    return next((c for c in github.check_runs.values() if c.get("external_id") == job), {})
