"""Bursts of deliveries of one push (issue 16, item 3): one handling, one job, one check run, one read of the commit.

A real `fasttrack-gitops serve` process, a real repository, GitHub as the
contract-checking server (every request body checked against the published
schema). What is counted is what is observable from outside: the answers, the
real store's rows, the requests GitHub received, and the daemon's
`ftg_push_commits_read_total` (how many times git read a pushed commit).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import httpx
import pytest
from conftest import PATIENCE, git, wait_until
from daemon.conftest import REPO_NAME, SECRET, commit_file, free_port, github_headers, push_payload, write_config
from daemon.recovery_test import Served
from engine.reporters.github_test import PLAIN_TOKEN, Clock, FakeGitHub

from fasttrack_gitops.engine.state.ledger import Ledger
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="a daemon process")

OTHER_REPO = "acme/other"  # a second configured repository, read from the same clone


@pytest.fixture
def github(contracts):
    fake = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), Clock())
    with fake.server.serving():
        yield fake


@pytest.fixture
def served(tmp_path: Path, source_repo: Path, github: FakeGitHub):
    """A started daemon for source_repo (as acme/pipes and acme/other) reporting to the fake GitHub."""
    port = free_port()
    config = write_config(
        tmp_path,
        source_repo,
        repo_extra="watch: false\n",
        more_repositories=f"""\
        - name: {OTHER_REPO}
          url: {source_repo}
          provider: github
          watch: false
        """,
        listen=f"127.0.0.1:{port}",
    )
    config.write_text(
        config.read_text().replace(
            "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n",
            "github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n"
            f"  token_env: FTG_TEST_GH_TOKEN\n  api_url: {github.url}\n",
        )
    )
    env = {**os.environ, "FTG_TEST_WEBHOOK_SECRET": SECRET, "FTG_TEST_GH_TOKEN": PLAIN_TOKEN, "FTG_BWRAP": "0"}
    daemon = Served(config, port, tmp_path / "daemon.log", env)
    try:
        yield daemon.start()
    finally:
        daemon.stop()


def a_push(contracts: Path, repo: Path) -> tuple[str, str]:
    """A new commit of main: (before, after)."""
    before = git(repo, "rev-parse", "HEAD").strip()
    return before, commit_file(repo, "pipelines/demo.yaml", (repo / "pipelines/demo.yaml").read_text() + "# again\n")


def push_body(contracts: Path, before: str, after: str, name: str = REPO_NAME) -> bytes:
    """The real push payload of main moving from before to after, in repository `name`."""
    return json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after, name=name)).encode()


async def deliver_all(url: str, requests: list[tuple[bytes, dict]]) -> list[httpx.Response]:
    """Every delivery in flight at once (one connection each)."""
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=PATIENCE) as client:
        return await asyncio.gather(*(client.post("/webhooks/github", content=b, headers=h) for b, h in requests))


def commits_read(served: Served) -> dict[str, int]:
    page = httpx.get(served.url + "/metrics", timeout=PATIENCE).text
    return {r: int(n) for r, n in re.findall(r'ftg_push_commits_read_total\{repository="([^"]*)"\} (\d+)', page)}


def jobs_at(served: Served, repository: str, commit: str) -> list[str]:
    with Store(served.state) as store:
        return Ledger(store).jobs_of(repository, commit=commit)


def test_200_concurrent_duplicates_of_one_push_make_one_job_one_check_run_and_one_read(
    served, source_repo, contracts, github
):
    before, commit = a_push(contracts, source_repo)
    body = push_body(contracts, before, commit)
    same_id = [(body, github_headers(body, "push", "redelivered")) for _ in range(100)]  # GitHub's "Redeliver"
    distinct = [(body, github_headers(body, "push", f"hook-{i}")) for i in range(100)]  # two hooks, or more
    answers = asyncio.run(deliver_all(served.url, [x for pair in zip(same_id, distinct) for x in pair]))

    assert all(a.status_code in (200, 202) for a in answers), {a.status_code: a.text for a in answers}
    (job,) = jobs_at(served, REPO_NAME, commit)
    assert {tuple(a.json()["jobs"]) for a in answers} == {(job,)}  # every answer names the one job
    assert sum(len(a.json().get("created", [])) for a in answers) == 1
    assert sum(a.status_code == 202 and not a.json()["coalesced"] for a in answers) == 1  # one handling...
    assert sum(a.json().get("coalesced", False) for a in answers) == 100  # ...the other ids shared it
    assert sum(a.json().get("duplicate", False) for a in answers) == 99  # ...and the redeliveries waited for it
    assert commits_read(served) == {REPO_NAME: 1}  # git read the commit once, not 200 times

    wait_until(lambda: github.check_runs, what="the job's check run")
    served.ended(job)
    wait_until(
        lambda: [r["status"] for r in github.check_runs.values()] == ["completed"],
        what=lambda: f"the check run to complete: {github.check_runs}",
    )
    assert len(github.server.calls("POST", r"/repos/.*/check-runs")) == 1  # one check run, updated in place
    assert (github.check_runs.popitem()[1])["head_sha"] == commit
    assert github.server.violations == []

    late = asyncio.run(deliver_all(served.url, distinct[:1] + [(body, github_headers(body, "push", "late"))]))
    assert [a.json()["jobs"] for a in late] == [[job], [job]]  # a late duplicate: answered from the store
    assert late[1].json()["coalesced"] and late[0].json()["duplicate"]
    assert commits_read(served) == {REPO_NAME: 1}  # without reading the commit again
    assert len(served.jobs()) == 1


def test_a_badly_signed_copy_among_good_ones_is_refused_and_disturbs_nothing(served, source_repo, contracts):
    before, commit = a_push(contracts, source_repo)
    body = push_body(contracts, before, commit)
    forged = {**github_headers(body, "push", "forged"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
    tampered_body = body.replace(b'"sender"', b'"sender" ', 1)  # the good signature, a body it does not sign
    requests = [(body, github_headers(body, "push", f"good-{i}")) for i in range(20)]
    requests[5:5] = [(body, forged), (tampered_body, github_headers(body, "push", "good-0"))]
    answers = asyncio.run(deliver_all(served.url, requests))

    refused = [answers[5], answers[6]]
    assert [a.status_code for a in refused] == [401, 401], [a.text for a in refused]
    good = answers[:5] + answers[7:]
    assert all(a.status_code == 202 for a in good), [a.text for a in good]
    (job,) = jobs_at(served, REPO_NAME, commit)
    assert {tuple(a.json()["jobs"]) for a in good} == {(job,)}
    assert commits_read(served) == {REPO_NAME: 1}
    with Store(served.state) as store:
        assert not Ledger(store).seen_delivery("github", "forged")  # a refused delivery is not recorded


def test_the_same_commit_pushed_to_another_repository_is_not_coalesced_with_it(served, source_repo, contracts):
    before, commit = a_push(contracts, source_repo)
    body, other_body = push_body(contracts, before, commit), push_body(contracts, before, commit, OTHER_REPO)
    requests = [(body, github_headers(body, "push", f"pipes-{i}")) for i in range(10)]
    requests += [(other_body, github_headers(other_body, "push", f"other-{i}")) for i in range(10)]
    answers = asyncio.run(deliver_all(served.url, requests))

    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    (pipes_job,) = jobs_at(served, REPO_NAME, commit)
    (other_job,) = jobs_at(served, OTHER_REPO, commit)
    assert pipes_job != other_job
    assert {tuple(a.json()["jobs"]) for a in answers[:10]} == {(pipes_job,)}
    assert {tuple(a.json()["jobs"]) for a in answers[10:]} == {(other_job,)}
    assert commits_read(served) == {REPO_NAME: 1, OTHER_REPO: 1}  # each repository read its push once
