"""SECURITY.md "Pull requests from forks": before a member's `/fasttrack ok-to-test` nothing of a fork runs.

Real daemon, real repository (the fork's head where GitHub keeps it, refs/pull/N/head), real local tasks, GitHub
as the contract-checking server of tests/engine/reporters. The fork rewrites the pipeline and adds one, each
writing the secret it references and the whole environment it was given to a file outside its folders: before the
approval no such file appears, no job exists and nothing GitHub received holds a secret; after it, the head's
pipelines run with the secrets they reference, and never with the daemon's own credentials.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os

import httpx
from conftest import await_until, git
from daemon.conftest import (
    SECRET,
    comment_payload,
    commit_file,
    deliver,
    payload,
    pipeline_text,
    pr_payload,
    running,
    write_config,
)
from daemon.http_test import GITLAB_NAME, quiet_config
from engine.reporters.github_test import PLAIN_TOKEN

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.daemon.config_loading import load_config

CANARY = "canary-secret-for-the-fork-test-5c1e"
API_TOKEN = "api-token-of-the-daemon-9d0b7a"
READ_TOKEN = "read-token-of-the-daemon-41f2e6"
ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
STEALER = """\
version: "26.4.4"
name: {name}
on: [pull_request]
environment:
  envs: {{LEAKY: "${{{{ secrets.CANARY }}}}"}}
tasks:
  - name: steal
    command: echo "$LEAKY" > {out}/{name}-secret; env > {out}/{name}-env
"""


def fork_config(tmp_path, repo, github, monkeypatch):
    """The daemon's credentials in its own environment, as a deployment sets them (the tasks inherit the rest)."""
    environ = {
        "FTG_TEST_WEBHOOK_SECRET": SECRET,
        "FTG_TEST_GH_TOKEN": PLAIN_TOKEN,
        "FTG_TEST_API_TOKEN": API_TOKEN,
        "FTG_TEST_READ_TOKEN": READ_TOKEN,
        "FTG_SECRET_CANARY": CANARY,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    path = write_config(
        tmp_path,
        repo,
        repo_extra="watch: false\n",
        extra="api_token_env: FTG_TEST_API_TOKEN\nread_token_env: FTG_TEST_READ_TOKEN\n",
    )
    path.write_text(
        path.read_text().replace(
            "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n",
            "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n"
            f"  token_env: FTG_TEST_GH_TOKEN\n  api_url: {github.url}\n",
        )
    )
    config, diagnostics = load_config(path, dict(os.environ))
    assert config is not None, diagnostics
    return config


def rerequested(contracts, head_sha: str) -> dict:
    data = copy.deepcopy(payload(contracts, "check_suite.rerequested.payload.json"))
    data["check_suite"]["head_sha"] = head_sha
    data["repository"]["full_name"] = "acme/pipes"
    return data


def test_a_fork_changes_neither_the_pipeline_that_runs_nor_the_secrets_it_sees_before_ok_to_test(
    tmp_path, source_repo, contracts, github, monkeypatch
):
    loot = tmp_path / "loot"
    loot.mkdir()
    base = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    commit_file(source_repo, "pipelines/demo.yaml", STEALER.format(name="demo", out=loot))
    head = commit_file(source_repo, "pipelines/evil.yaml", STEALER.format(name="evil", out=loot))
    git(source_repo, "checkout", "-q", "main")
    git(source_repo, "update-ref", "refs/pull/9/head", head)  # where GitHub keeps a fork's head in the base
    config = fork_config(tmp_path, source_repo, github, monkeypatch)

    def fork_event(action: str) -> dict:
        return pr_payload(contracts, number=9, head_sha=head, base_sha=base, head_repo="mallory/pipes", action=action)

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            answers = []
            for n, action in enumerate(("opened", "synchronize", "reopened", "edited", "ready_for_review")):
                answers.append((await deliver(client, "pull_request", fork_event(action), f"pr-{n}")).json())
            # the fork's author and other outsiders try every command; their association is GitHub's, signed
            for n, (association, command) in enumerate(
                (a, c)
                for a in ("NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN")
                for c in ("ok-to-test", "run", "run evil", "retest")
            ):
                comment = comment_payload(
                    contracts, number=9, body=f"/fasttrack {command}", association=association, author="mallory"
                )
                answers.append((await deliver(client, "issue_comment", comment, f"c-{n}")).json())
            answers.append((await deliver(client, "check_suite", rerequested(contracts, head), "rr-1")).json())
            assert all(a["jobs"] == [] for a in answers), answers
            await await_until(lambda: not daemon.outbox.pending())  # the held pull request's check was sent
            held_checks = copy.deepcopy(github.check_runs)
            nothing_ran = (daemon.store.list_jobs(limit=0), sorted(p.name for p in loot.iterdir()))
            # a member approves: the fork's head runs, its pipelines as the head has them
            approval = comment_payload(contracts, number=9, body="/fasttrack ok-to-test", author="alice")
            approved = (await deliver(client, "issue_comment", approval, "c-member")).json()
            await await_until(
                lambda: all(v.status in ENDED for v in daemon.store.list_jobs(limit=0)) and not daemon.outbox.pending()
            )
            return held_checks, nothing_ran, approved, daemon.store.list_jobs(limit=0)

    held_checks, (jobs_before, loot_before), approved, views = asyncio.run(scenario())
    assert jobs_before == [] and loot_before == []  # no job, no process: nothing of the fork ran
    assert [(c["name"], c["head_sha"], c.get("conclusion")) for c in held_checks.values()] == [
        ("fasttrack/ok-to-test", head, "action_required")
    ], held_checks
    assert len(approved["jobs"]) == 2, approved
    assert sorted(v.job.pipeline for v in views) == ["demo", "evil"]
    assert all(v.job.commit == head and v.job.trigger["approved_by"] == "alice" for v in views)
    assert all(v.status == JobStatus.SUCCEEDED for v in views), [(v.job.pipeline, v.status) for v in views]
    # after the approval the head's pipelines see the secrets they reference (what ok-to-test vouches for) ...
    assert (loot / "evil-secret").read_text().strip() == CANARY
    # ... and never the daemon's own credentials, though the daemon holds them in its environment
    for name in ("demo-env", "evil-env"):
        dumped = (loot / name).read_text()
        assert "FTG_TEST_WEBHOOK_SECRET" in dumped or SECRET not in dumped
        for value in config.secret_values():
            assert value not in dumped, (name, [k for k, v in os.environ.items() if v == value])
        assert "FTG_SECRET_CANARY" not in dumped
    sent = "\n".join(r.body.decode("utf-8", "replace") for r in github.server.requests)
    for value in (CANARY, *config.secret_values()):
        assert value not in sent


def gitlab_fork_merge_request(contracts, head: str) -> dict:
    data = copy.deepcopy(json.loads((contracts / "gitlab.json").read_text())["webhooks"]["merge_request"]["example"])
    data["project"].update(path_with_namespace=GITLAB_NAME, default_branch="main")
    attributes = data["object_attributes"]
    attributes.update(iid=9, target_branch="main", action="open")
    attributes["last_commit"]["id"] = head
    attributes["source"]["path_with_namespace"] = "mallory/pipes"  # another project: a fork
    attributes["target"]["path_with_namespace"] = GITLAB_NAME
    return data


def test_a_gitlab_fork_merge_request_is_held_and_no_comment_can_release_it(tmp_path, source_repo, contracts):
    """GitLab's note hook names no membership, so on GitLab no comment command is taken from anyone: a fork's
    merge request runs only when someone with the API token approves it on the console (web/actions.py)."""
    loot = tmp_path / "loot"
    loot.mkdir()
    commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    head = commit_file(source_repo, "pipelines/demo.yaml", STEALER.format(name="demo", out=loot))
    git(source_repo, "checkout", "-q", "main")
    git(source_repo, "update-ref", "refs/merge-requests/9/head", head)
    config = quiet_config(tmp_path, source_repo, gitlab_repo=True)
    note = {
        "object_kind": "note",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project": {"id": 5, "path_with_namespace": GITLAB_NAME, "default_branch": "main"},
        "object_attributes": {"id": 1, "note": "/fasttrack ok-to-test", "noteable_type": "MergeRequest"},
        "merge_request": {"id": 7, "iid": 9, "source_branch": "fork-work", "target_branch": "main"},
    }

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            headers = {"X-Gitlab-Token": SECRET, "Content-Type": "application/json"}
            opened = await client.post(
                "/webhooks/gitlab",
                content=json.dumps(gitlab_fork_merge_request(contracts, head)).encode(),
                headers={**headers, "X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "mr-1"},
            )
            assert opened.status_code == 202 and opened.json()["jobs"] == [], opened.text
            assert "ok-to-test" in opened.json()["note"]
            commented = await client.post(
                "/webhooks/gitlab",
                content=json.dumps(note).encode(),
                headers={**headers, "X-Gitlab-Event": "Note Hook", "Idempotency-Key": "note-1"},
            )
            assert commented.json()["jobs"] == [] and "refused" in commented.json()["note"], commented.text
            await asyncio.sleep(0.5)  # a job started by mistake would have run its one echo by now
            return daemon.store.list_jobs(limit=0), [g.number for g in daemon.ledger.gates()]

    jobs, waiting = asyncio.run(scenario())
    assert jobs == [] and waiting == [9] and list(loot.iterdir()) == []


def test_an_approval_naming_the_head_it_reviewed_does_not_cover_a_commit_pushed_meanwhile(
    tmp_path, source_repo, contracts
):
    """The fork pushes B while a member reviews A: `/fasttrack ok-to-test A` and the console's button for A run
    nothing (the plain `/fasttrack ok-to-test` would approve the newest head, B); approving B runs B."""
    from daemon.web.console_helpers import ENVIRON, WRITE, bearer, csrf_of

    base = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    reviewed = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# A\n")
    pushed = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# B\n")
    git(source_repo, "checkout", "-q", "main")
    config = quiet_config(tmp_path, source_repo, extra="api_token_env: FTG_TEST_API_TOKEN\n", environ={**ENVIRON})

    def opened(head: str, action: str) -> dict:
        return pr_payload(contracts, number=9, head_sha=head, base_sha=base, head_repo="mallory/pipes", action=action)

    def ok_to_test(head: str) -> dict:
        return comment_payload(contracts, number=9, body=f"/fasttrack ok-to-test {head}", author="alice")

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            git(source_repo, "update-ref", "refs/pull/9/head", reviewed)
            assert (await deliver(client, "pull_request", opened(reviewed, "opened"), "pr-1")).json()["jobs"] == []
            git(source_repo, "update-ref", "refs/pull/9/head", pushed)  # the fork pushes during the review
            assert (await deliver(client, "pull_request", opened(pushed, "synchronize"), "pr-2")).json()["jobs"] == []
            stale = (await deliver(client, "issue_comment", ok_to_test(reviewed[:10]), "c-1")).json()
            assert stale["jobs"] == [] and pushed[:12] in stale["note"], stale
            junk = (await deliver(client, "issue_comment", ok_to_test("not-a-sha;rm"), "c-2")).json()
            assert junk["jobs"] == [] and "commit id" in junk["note"], junk
            page = await client.get("/repos", headers=bearer(WRITE))
            assert f'name="head" value="{pushed[:12]}"' in page.text
            button = await client.post(
                "/repos/approve",
                data={"csrf": csrf_of(page.text), "repository": "acme/pipes", "number": "9", "head": reviewed[:12]},
                headers=bearer(WRITE),
            )
            assert button.status_code == 409 and pushed[:12] in button.text, button.text
            assert daemon.store.list_jobs(limit=0) == []
            approved = (await deliver(client, "issue_comment", ok_to_test(pushed), "c-3")).json()
            return approved, daemon.store.list_jobs(limit=0)

    approved, views = asyncio.run(scenario())
    assert len(approved["jobs"]) == 1 and [v.job.commit for v in views] == [pushed]


def test_a_members_run_comment_on_a_fork_runs_its_head_at_once(tmp_path, source_repo, contracts):
    """`/fasttrack run` from a member is an approval too (SECURITY.md): the fork's head runs, no gate asked."""
    base = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    head = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# fork\n")
    git(source_repo, "checkout", "-q", "main")
    git(source_repo, "update-ref", "refs/pull/9/head", head)
    config = quiet_config(tmp_path, source_repo)
    fork = pr_payload(contracts, number=9, head_sha=head, base_sha=base, head_repo="mallory/pipes")

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            assert (await deliver(client, "pull_request", fork, "pr-1")).json()["jobs"] == []
            run = comment_payload(contracts, number=9, body="/fasttrack run demo", author="alice")
            return (await deliver(client, "issue_comment", run, "c-1")).json(), daemon.store.list_jobs(limit=0)

    answer, views = asyncio.run(scenario())
    assert len(answer["jobs"]) == 1 and [(v.job.commit, v.job.trigger["by"]) for v in views] == [(head, "alice")]
