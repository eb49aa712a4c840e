"""The daemon's HTTP surface as GitHub, GitLab, Prometheus and a person at a terminal see it, bad inputs included.

Every test runs the real daemon on a real 127.0.0.1 socket over a real git
repository and talks to it with httpx; the webhooks are GitHub's and GitLab's
own example payloads (tests/data/contracts), signed the way they sign them.
What is checked is what the sender would see (the status, the JSON answer)
and what the daemon kept (jobs, delivery rows, metrics): a refused request
must leave the store as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import logging
import re
import socket
from pathlib import Path

import httpx
import pytest
from conftest import await_until, git
from daemon.conftest import (
    REPO_NAME,
    SECRET,
    commit_file,
    deliver,
    github_headers,
    load,
    pipeline_text,
    pr_payload,
    push_payload,
    running,
    signed,
    write_config,
)

from fasttrack_gitops import cli
from fasttrack_gitops.core.job import JobStatus

ZERO = "0" * 40
GITLAB_NAME = "group/sub/pipes"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def pushed(source_repo: Path) -> tuple[str, str]:
    """(before, after): main moved on by one commit, as a push reports it."""
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# v2\n")
    return before, after


def quiet_config(
    tmp_path: Path, repo: Path, *, extra: str = "", gitlab_repo: bool = False, environ: dict | None = None
):
    """The test repository, not watched (only what the test sends makes jobs); optionally also as a GitLab project."""
    path = write_config(tmp_path, repo, repo_extra="watch: false\n", extra=extra)
    if gitlab_repo:
        text = path.read_text().replace(
            "repositories:\n",
            f"repositories:\n  - name: {GITLAB_NAME}\n    url: {repo}\n    provider: gitlab\n    watch: false\n",
            1,
        )
        path.write_text(text)
    if environ is None:
        return load(path)
    from fasttrack_gitops.daemon.config_loading import load_config

    config, diagnostics = load_config(path, {"FTG_TEST_WEBHOOK_SECRET": SECRET, **environ})
    assert config is not None, diagnostics
    return config


async def burst(client, requests, *, at_once: int = 50) -> list[httpx.Response]:
    """Send the requests concurrently, at most `at_once` in flight (httpcore's pool is slow with a long queue)."""
    gate = asyncio.Semaphore(at_once)

    async def one(request):
        async with gate:
            return await request

    return await asyncio.gather(*(one(r) for r in requests))


@contextlib.asynccontextmanager
async def serving(config, **client_options):
    """The daemon, and an httpx client pointed at it."""
    async with (
        running(config) as (daemon, url),
        httpx.AsyncClient(base_url=url, timeout=60, **client_options) as client,
    ):
        yield daemon, client


def all_jobs(daemon) -> list:
    return daemon.store.list_jobs(limit=0)


def push_body(contracts: Path, before: str, after: str, **kwargs) -> bytes:
    return json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after, **kwargs)).encode()


async def post_github(client, body: bytes, *, event: str = "push", delivery: str = "d-1", **headers):
    """POST a body with GitHub's headers, signed unless the test overrides the signature header."""
    sent = {**github_headers(body, event, delivery), **headers}
    sent = {k: v for k, v in sent.items() if v is not None}
    return await client.post("/webhooks/github", content=body, headers=sent)


def gitlab_push(contracts: Path, *, before: str, after: str, name: str = GITLAB_NAME) -> dict:
    """GitLab's documented Push Hook example, pointed at the test repository's main."""
    data = copy.deepcopy(json.loads((contracts / "gitlab.json").read_text())["webhooks"]["push"]["example"])
    data.update(before=before, after=after, checkout_sha=after, ref="refs/heads/main")
    data["project"].update(path_with_namespace=name, default_branch="main")
    return data


async def post_gitlab(client, data: dict, *, token: str | None = SECRET, key: str = "idem-1"):
    headers = {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": key, "Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return await client.post("/webhooks/gitlab", content=json.dumps(data).encode(), headers=headers)


# Prometheus' text exposition format, version 0.0.4, read the way a scraper reads it.
_SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"(?:,|$)')


def parse_metrics(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset], float]]:
    """(family -> type, (sample name, labels) -> value); fails on any line a scraper would refuse."""
    assert text.endswith("\n"), "the page must end with a newline"
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"{name} has two TYPE lines"
            types[name] = kind
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or types.get(family) == "histogram", f"{name}: sample before its TYPE line"
        labels, rest = {}, match["labels"] or ""
        while rest:
            label = _LABEL.match(rest)
            assert label, f"bad labels in {line!r}"
            labels[label["key"]] = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], label["value"])
            rest = rest[label.end() :]
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"{line!r} repeats a sample"
        samples[key] = float(match["value"])
    return types, samples


def sample(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(client) -> tuple[dict, dict]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(answer.text)


async def deliveries(client, provider: str = "github") -> dict[str, float]:
    """ftg_webhook_deliveries_total by result."""
    _, samples = await scrape(client)
    return {
        dict(labels)["result"]: value
        for (name, labels), value in samples.items()
        if name == "ftg_webhook_deliveries_total" and dict(labels)["provider"] == provider
    }


# ---------------------------------------------------------------- GitHub: bad bodies


def test_a_body_that_is_not_a_json_object_is_refused_and_changes_nothing(tmp_path, source_repo, contracts):
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            for i, body in enumerate([b'{"ref": "refs/heads/main", ', b"[1, 2, 3]", b"", b'"push"', b"\xff\xfe{}"]):
                answer = await post_github(client, body, delivery=f"bad-{i}")
                assert answer.status_code == 400, (body, answer.text)
                assert answer.headers["content-type"] == "application/json"
                assert answer.json()["error"], body
                assert not daemon.ledger.seen_delivery("github", f"bad-{i}")
            assert "must be a JSON object, not an array" in (await post_github(client, b"[]")).json()["error"]
            assert "is not valid JSON" in (await post_github(client, b"[" * 100_000)).json()["error"]
            good = push_body(contracts, ZERO, ZERO)
            for header in ("X-GitHub-Event", "X-GitHub-Delivery"):
                answer = await post_github(client, good, **{header: None})
                assert answer.status_code == 400 and f"the {header} header is missing" in answer.json()["error"]
            assert all_jobs(daemon) == []
            assert await deliveries(client) == {"malformed": 9}

    asyncio.run(scenario())


def test_an_event_the_daemon_does_not_handle_is_acknowledged_as_ignored(tmp_path, source_repo, contracts):
    config = quiet_config(tmp_path, source_repo)
    star = json.dumps(
        {
            "action": "created",
            "starred_at": "2026-01-01T00:00:00Z",
            "repository": {"full_name": REPO_NAME},
            "sender": {"login": "octocat"},
        }
    ).encode()

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await post_github(client, star, event="star", delivery="star-1")
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"delivery": "star-1", "ignored": "unsupported event 'star'"}
            ping = await post_github(client, json.dumps({"zen": "Keep it simple."}).encode(), event="ping")
            assert ping.status_code == 202 and ping.json()["ignored"] == "ping"
            assert all_jobs(daemon) == []
            assert await deliveries(client) == {"ignored": 2}

    asyncio.run(scenario())


def test_a_pull_request_action_no_pipeline_listens_for_is_accepted_and_runs_nothing(tmp_path, source_repo, contracts):
    base = git(source_repo, "rev-parse", "HEAD").strip()
    head = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await deliver(
                client,
                "pull_request",
                pr_payload(contracts, number=5, head_sha=head, base_sha=base, action="labeled"),
                "labeled-1",
            )
            assert answer.status_code == 202, answer.text
            assert answer.json()["jobs"] == [] and "pull request #5 (labeled)" in answer.json()["note"]
            assert all_jobs(daemon) == []
            assert daemon.ledger.seen_delivery("github", "labeled-1")
            opened = await deliver(
                client, "pull_request", pr_payload(contracts, number=5, head_sha=head, base_sha=base), "opened-1"
            )
            assert len(opened.json()["jobs"]) == 1, opened.text  # the same pull request does run when opened

    asyncio.run(scenario())


def test_a_body_over_the_limit_is_refused_with_413_with_or_without_a_content_length(
    tmp_path, source_repo, contracts, pushed
):
    config = quiet_config(tmp_path, source_repo, extra="webhook_max_body: 1k\n")
    assert config.webhook_max_body == 1024
    big = push_body(contracts, *pushed)
    assert len(big) > 1024  # GitHub's push example is a few kilobytes

    async def chunked():
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    async def scenario():
        async with serving(config) as (daemon, client):
            with_length = await post_github(client, big, delivery="big-1")
            assert with_length.status_code == 413, with_length.text
            assert "limit is 1024" in with_length.json()["error"]
            without = await client.post(
                "/webhooks/github", content=chunked(), headers=github_headers(big, "push", "big-2")
            )
            assert "content-length" not in without.request.headers
            assert without.request.headers["transfer-encoding"] == "chunked"
            assert without.status_code == 413, without.text
            assert "1024 bytes" in without.json()["error"]
            assert all_jobs(daemon) == []
            assert not daemon.ledger.seen_delivery("github", "big-1")
            assert not daemon.ledger.seen_delivery("github", "big-2")
            assert (await client.get("/healthz")).status_code == 200
            assert await deliveries(client) == {"too_large": 2}

    asyncio.run(scenario())


def test_a_form_encoded_delivery_is_read_like_a_json_one(tmp_path, source_repo, contracts, pushed):
    """GitHub's other content type: the JSON in a payload= form field, signed as sent."""
    from urllib.parse import urlencode

    config = quiet_config(tmp_path, source_repo)
    form = urlencode({"payload": push_body(contracts, *pushed).decode()}).encode()

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await post_github(
                client, form, delivery="form-1", **{"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code == 202 and len(answer.json()["jobs"]) == 1, answer.text
            empty = urlencode({"other": "x"}).encode()
            refused = await post_github(
                client, empty, delivery="form-2", **{"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert refused.status_code == 400 and "no 'payload' field" in refused.json()["error"]
            assert len(all_jobs(daemon)) == 1

    asyncio.run(scenario())


# ---------------------------------------------------------------- GitHub: signatures


def test_an_unsigned_or_wrongly_signed_delivery_is_refused_with_401_and_leaves_no_trace(
    tmp_path, source_repo, contracts, pushed
):
    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)
    other = push_body(contracts, pushed[1], pushed[0])
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    wrong = {
        "another secret": signed(body, "not-the-secret"),
        "no signature": None,
        "an empty signature": "",
        "the signature of another body": signed(other),
        "a sha1= signature (X-Hub-Signature's form)": sha1,
        "a sha256= prefix on the sha1 digest": "sha256=" + sha1.split("=", 1)[1],
        "no digest": "sha256=",
        "not hex": "sha256=" + "zz" * 32,
    }

    async def scenario():
        async with serving(config) as (daemon, client):
            for why, signature in wrong.items():
                answer = await post_github(client, body, delivery="signed-1", **{"X-Hub-Signature-256": signature})
                assert answer.status_code == 401, (why, answer.text)
                assert "X-Hub-Signature-256" in answer.json()["error"], why
                assert all_jobs(daemon) == [], why
                assert not daemon.ledger.seen_delivery("github", "signed-1"), why
            assert await deliveries(client) == {"unauthorized": len(wrong)}
            # the refusals did not spend the delivery id: GitHub's redelivery, once the secret is fixed, runs
            answer = await post_github(client, body, delivery="signed-1")
            assert answer.status_code == 202 and len(answer.json()["jobs"]) == 1, answer.text

    asyncio.run(scenario())


def test_github_webhooks_are_refused_when_no_secret_is_configured(tmp_path, source_repo, contracts, pushed):
    path = write_config(tmp_path, source_repo, repo_extra="watch: false\n")
    path.write_text(path.read_text().replace("github:\n  webhook_secret_env: FTG_TEST_WEBHOOK_SECRET\n", ""))
    config = load(path)
    assert config.github is None
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await post_github(client, body)
            assert answer.status_code == 401 and "webhook_secret_env" in answer.json()["error"]
            assert all_jobs(daemon) == []

    asyncio.run(scenario())


# ---------------------------------------------------------------- GitHub: what a push means


def test_a_replayed_delivery_is_answered_duplicate_and_makes_no_second_job(tmp_path, source_repo, contracts, pushed):
    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config) as (daemon, client):
            first = await post_github(client, body, delivery="replay-1")
            assert first.status_code == 202 and len(first.json()["jobs"]) == 1, first.text
            again = await post_github(client, body, delivery="replay-1")
            assert again.status_code == 200, again.text
            assert again.json()["duplicate"] is True and again.json()["delivery"] == "replay-1"
            assert [v.job.id for v in all_jobs(daemon)] == first.json()["jobs"]
            assert await deliveries(client) == {"accepted": 1, "duplicate": 1}

    asyncio.run(scenario())


def test_a_push_that_deletes_the_branch_runs_nothing(tmp_path, source_repo, contracts, pushed):
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await post_github(client, push_body(contracts, pushed[1], ZERO), delivery="delete-1")
            assert answer.status_code == 202, answer.text
            assert answer.json()["jobs"] == [] and "deleted" in answer.json()["note"]
            assert all_jobs(daemon) == []

    asyncio.run(scenario())


def test_a_push_of_a_commit_the_repository_does_not_have_is_noted_and_runs_nothing(
    tmp_path, source_repo, contracts, pushed
):
    config = quiet_config(tmp_path, source_repo)
    gone = hashlib.sha1(b"force-pushed away").hexdigest()

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await post_github(client, push_body(contracts, pushed[1], gone), delivery="gone-1")
            assert answer.status_code == 202, answer.text
            assert answer.json()["jobs"] == []
            assert f"commit {gone[:12]}" in answer.json()["note"]
            assert "not in the repository" in answer.json()["note"]
            assert all_jobs(daemon) == []
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            fine = await post_github(client, push_body(contracts, *pushed), delivery="fine-1")
            assert len(fine.json()["jobs"]) == 1  # and it still takes the next push

    asyncio.run(scenario())


def test_a_delivery_the_daemon_failed_to_handle_runs_when_it_is_redelivered(tmp_path, source_repo, contracts, pushed):
    """The state database held by another process past its busy timeout: an error, and the redelivery runs."""
    import sqlite3
    import threading

    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config) as (daemon, client):
            locked, release = threading.Event(), threading.Event()

            def hold_the_database() -> None:  # another process's long write transaction
                cx = sqlite3.connect(config.state_dir / "state.db", isolation_level=None)
                cx.execute("BEGIN EXCLUSIVE")
                locked.set()
                release.wait(30)
                cx.execute("ROLLBACK")
                cx.close()

            holder = threading.Thread(target=hold_the_database, daemon=True)
            holder.start()
            assert await asyncio.to_thread(locked.wait, 10)
            try:
                first = await post_github(client, body, delivery="flaky-1")
            finally:
                release.set()
                await asyncio.to_thread(holder.join, 10)
            assert first.status_code == 503 and "deliver again" in first.text, first.text
            assert daemon.store.list_jobs() == []
            again = await post_github(client, body, delivery="flaky-1")  # GitHub's "Redeliver"
            assert again.status_code == 202 and len(again.json()["jobs"]) == 1, again.text

    asyncio.run(scenario())


def test_a_burst_of_a_thousand_deliveries_of_one_push_makes_one_job(tmp_path, source_repo, contracts, pushed):
    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config, limits=httpx.Limits(max_connections=50)) as (daemon, client):
            answers = await burst(client, (post_github(client, body, delivery=f"burst-{i}") for i in range(1000)))
            assert {a.status_code for a in answers} == {202}
            made = {tuple(a.json()["jobs"]) for a in answers}
            assert len(made) == 1 and len(next(iter(made))) == 1, made
            assert sum(len(a.json()["created"]) for a in answers) == 1
            (view,) = all_jobs(daemon)
            assert view.job.commit == pushed[1] and view.job.pipeline == "demo"
            assert await deliveries(client) == {"accepted": 1, "coalesced": 999}  # one handling, shared
            assert daemon.metrics.commits_read == {REPO_NAME: 1}  # git read the commit once, not 1,000 times

    asyncio.run(scenario())


def test_a_thousand_copies_of_one_delivery_make_one_job_and_999_duplicates(tmp_path, source_repo, contracts, pushed):
    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config, limits=httpx.Limits(max_connections=50)) as (daemon, client):
            answers = await burst(client, (post_github(client, body, delivery="same") for _ in range(1000)))
            statuses = [a.status_code for a in answers]
            assert statuses.count(202) == 1 and statuses.count(200) == 999
            assert all(a.json()["duplicate"] is True for a in answers if a.status_code == 200)
            (view,) = all_jobs(daemon)
            assert {tuple(a.json()["jobs"]) for a in answers} == {(view.job.id,)}  # each answer names the job
            assert await deliveries(client) == {"accepted": 1, "duplicate": 999}

    asyncio.run(scenario())


# ---------------------------------------------------------------- GitLab


def test_a_gitlab_push_with_the_right_token_makes_a_job_and_without_it_nothing(
    tmp_path, source_repo, contracts, pushed
):
    config = quiet_config(tmp_path, source_repo, gitlab_repo=True)
    data = gitlab_push(contracts, before=pushed[0], after=pushed[1])

    async def scenario():
        async with serving(config) as (daemon, client):
            for token in ("not-the-token", None, ""):
                refused = await post_gitlab(client, data, token=token)
                assert refused.status_code == 401, (token, refused.text)
                assert "X-Gitlab-Token" in refused.json()["error"]
            assert all_jobs(daemon) == []
            assert not daemon.ledger.seen_delivery("gitlab", "idem-1")
            assert await deliveries(client, "gitlab") == {"unauthorized": 3}
            answer = await post_gitlab(client, data)
            assert answer.status_code == 202, answer.text
            (job,) = answer.json()["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.SUCCEEDED and v)
            assert view.job.repository == GITLAB_NAME and view.job.commit == pushed[1]
            assert view.job.trigger["event"] == "push" and view.job.trigger["sender"] == "jsmith"
            again = await post_gitlab(client, data)  # GitLab's retry keeps its Idempotency-Key
            assert again.status_code == 200 and again.json()["duplicate"] is True
            assert len(all_jobs(daemon)) == 1

    asyncio.run(scenario())


def test_a_webhook_runs_only_the_repositories_of_its_own_provider(tmp_path, source_repo, contracts, pushed):
    """The GitLab token is not a key to the GitHub repositories (nor the GitHub secret to the GitLab ones)."""
    config = quiet_config(tmp_path, source_repo, gitlab_repo=True)

    async def scenario():
        async with serving(config) as (daemon, client):
            from_gitlab = await post_gitlab(
                client, gitlab_push(contracts, before=pushed[0], after=pushed[1], name=REPO_NAME)
            )
            assert from_gitlab.status_code == 202, from_gitlab.text
            assert from_gitlab.json().get("jobs", []) == []
            assert "github" in (from_gitlab.json().get("ignored") or from_gitlab.json().get("note"))
            from_github = await post_github(client, push_body(contracts, *pushed, name=GITLAB_NAME))
            assert from_github.status_code == 202 and from_github.json().get("jobs", []) == []
            assert all_jobs(daemon) == []

    asyncio.run(scenario())


# ---------------------------------------------------------------- status endpoints


def test_healthz_and_metrics_say_what_the_daemon_did(tmp_path, source_repo, contracts, pushed):
    config = quiet_config(tmp_path, source_repo)
    body = push_body(contracts, *pushed)

    async def scenario():
        async with serving(config) as (daemon, client):
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.headers["content-type"] == "application/json"
            assert health.json() == {"status": "ok", "queued": 0, "running": 0}
            head = await client.head("/healthz")
            assert head.status_code == 200 and head.content == b""

            types, samples = await scrape(client)
            assert types["ftg_jobs"] == "gauge" and types["ftg_queue_depth"] == "gauge"
            assert types["ftg_webhook_deliveries_total"] == "counter"
            assert types["ftg_executor_errors_total"] == "counter"
            assert types["ftg_task_duration_seconds"] == "histogram"
            assert sample(samples, "ftg_jobs", status="queued") == 0
            assert sample(samples, "ftg_jobs", status="running") == 0
            assert sample(samples, "ftg_queue_depth") == 0
            assert sample(samples, "ftg_executor_errors_total", executor="local") == 0  # a series from the start

            (job,) = (await post_github(client, body, delivery="m-1")).json()["jobs"]
            await post_github(client, body, delivery="m-1")
            await post_github(client, body, delivery="m-2", **{"X-Hub-Signature-256": signed(body, "wrong")})
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            await await_until(lambda: daemon.pool.jobs_by_status() == {"queued": 0, "running": 0})

            types, samples = await scrape(client)
            assert await deliveries(client) == {"accepted": 1, "duplicate": 1, "unauthorized": 1}
            assert sample(samples, "ftg_jobs_created_total", trigger="push") == 1
            assert sample(samples, "ftg_jobs_finished_total", status="succeeded") == 1
            assert sample(samples, "ftg_executor_errors_total", executor="local") == 0
            buckets = sorted(
                (float(dict(labels)["le"]), value)
                for (name, labels), value in samples.items()
                if name == "ftg_task_duration_seconds_bucket"
            )
            assert buckets[-1] == (float("inf"), 2)  # prepare and train
            assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
            assert sample(samples, "ftg_task_duration_seconds_count", executor="local") == 2
            assert sample(samples, "ftg_task_duration_seconds_sum", executor="local") >= 0

    asyncio.run(scenario())


def test_the_metrics_page_escapes_label_values():
    from fasttrack_gitops.daemon.metrics import Metrics

    metrics = Metrics()
    metrics.fetch_errors['we"ird\\name\nx'] += 1
    _, samples = parse_metrics(metrics.render(jobs={"queued": 1}, queue_depth=1))
    assert sample(samples, "ftg_repository_fetch_errors_total", repository='we"ird\\name\nx') == 1


def test_the_jobs_api_lists_and_shows_what_the_jobs_command_prints(tmp_path, source_repo, contracts, pushed, capsys):
    config = quiet_config(tmp_path, source_repo)
    broken = commit_file(
        source_repo, "pipelines/other.yaml", pipeline_text("other").replace("echo prepare >", "exit 3; echo >")
    )

    async def scenario():
        async with serving(config) as (daemon, client):
            first = (await post_github(client, push_body(contracts, *pushed), delivery="j-1")).json()["jobs"]
            second = (await post_github(client, push_body(contracts, pushed[1], broken), delivery="j-2")).json()
            assert len(first) == 1 and len(second["jobs"]) == 2, second
            everything = first + second["jobs"]
            ended = (JobStatus.SUCCEEDED, JobStatus.FAILED)
            await await_until(lambda: all(daemon.store.view(j).status in ended for j in everything))
            await await_until(lambda: daemon.pool.jobs_by_status() == {"queued": 0, "running": 0})

            listed = await client.get("/api/jobs")
            assert listed.status_code == 200
            assert sorted(j["id"] for j in listed.json()) == sorted(everything)
            assert [j["created_at"] for j in listed.json()] == sorted(
                (j["created_at"] for j in listed.json()), reverse=True
            )
            code = await asyncio.to_thread(
                cli.main, ["jobs", "list", "--format", "json", "--state-dir", str(config.state_dir)]
            )
            assert code == 0
            assert listed.json() == json.loads(capsys.readouterr().out)

            demo = (await client.get("/api/jobs", params={"pipeline": "demo"})).json()
            assert {j["pipeline"] for j in demo} == {"demo"} and len(demo) == 2
            failed = (await client.get("/api/jobs", params={"status": "failed"})).json()
            assert [j["pipeline"] for j in failed] == ["other"]
            succeeded = (await client.get("/api/jobs", params={"status": "succeeded"})).json()
            assert {j["status"] for j in succeeded} == {"succeeded"} and len(succeeded) == 2
            newest = (await client.get("/api/jobs", params={"limit": "1"})).json()
            assert newest == listed.json()[:1]
            assert len((await client.get("/api/jobs", params={"limit": "9" * 5000})).json()) == 3
            for bad in (
                {"status": "nope"},
                {"limit": "x"},
                {"limit": "0"},
                {"limit": "-1"},
                {"limit": "\u00b2"},
                {"limit": "1.5"},
            ):
                answer = await client.get("/api/jobs", params=bad)
                assert answer.status_code == 400, (bad, answer.text)
                assert "error" in answer.json()

            job = first[0]
            shown = await client.get(f"/api/jobs/{job}")
            assert shown.status_code == 200
            code = await asyncio.to_thread(
                cli.main, ["jobs", "show", job, "--format", "json", "--state-dir", str(config.state_dir)]
            )
            assert code == 0 and shown.json() == json.loads(capsys.readouterr().out)
            prefix = next(job[:n] for n in range(1, len(job)) if sum(j.startswith(job[:n]) for j in everything) == 1)
            assert (await client.get(f"/api/jobs/{prefix}")).json() == shown.json()
            for unknown in ("no-such-job", "", "zzzz"):
                answer = await client.get(f"/api/jobs/{unknown}")
                assert answer.status_code == 404, (unknown, answer.text)
                assert answer.json()["error"]
                assert str(config.state_dir) not in answer.text  # no server paths to the outside

    asyncio.run(scenario())


def test_a_wrong_method_is_405_and_an_unknown_path_404(tmp_path, source_repo):
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            for method, path, allowed in (
                ("GET", "/webhooks/github", "POST"),
                ("PUT", "/webhooks/gitlab", "POST"),
                ("POST", "/healthz", "GET, HEAD"),
                ("DELETE", "/metrics", "GET, HEAD"),
                ("POST", "/api/jobs", "GET, HEAD"),
                ("DELETE", "/api/jobs/abc", "GET, HEAD"),
                ("DELETE", "/jobs/abc", "GET, HEAD"),
                ("GET", "/api/trigger", "POST"),
            ):
                answer = await client.request(method, path)
                assert answer.status_code == 405, (method, path, answer.text)
                assert answer.headers["allow"] == allowed
                assert allowed.split(",")[0] in answer.json()["error"]
            for path in ("/webhooks", "/webhooks/bitbucket", "/api", "/api/jobsx", "/metrics/x"):
                answer = await client.get(path)
                assert answer.status_code == 404, (path, answer.text)
                assert answer.json()["error"].startswith("no such endpoint")
            assert all_jobs(daemon) == []

    asyncio.run(scenario())


# ---------------------------------------------------------------- manual runs


def test_post_api_trigger_makes_a_job_that_runs(tmp_path, source_repo):
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await client.post(
                "/api/trigger", json={"repository": REPO_NAME, "pipeline": "demo", "ref": "main", "request_id": "r-1"}
            )
            assert answer.status_code == 201, answer.text
            (job,) = answer.json()["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.SUCCEEDED and v)
            assert view.job.trigger["event"] == "manual"
            assert view.job.commit == git(source_repo, "rev-parse", "main").strip()
            again = await client.post(
                "/api/trigger", json={"repository": REPO_NAME, "pipeline": "demo", "ref": "main", "request_id": "r-1"}
            )
            assert again.status_code == 201 and again.json()["jobs"] == [job] and again.json()["created"] == []

            for body, status in (
                (b"not json", 400),
                (b"[]", 400),
                (b'{"repository": "acme/pipes"}', 400),
                (json.dumps({"repository": "no/such", "pipeline": "demo"}).encode(), 404),
                (json.dumps({"repository": REPO_NAME, "pipeline": "nope"}).encode(), 422),
                (json.dumps({"repository": REPO_NAME, "pipeline": "demo", "ref": "no-such-branch"}).encode(), 422),
                (b"[" * 60_000, 400),
                (b"{" + b" " * (64 * 1024) + b"}", 413),
            ):
                answer = await client.post("/api/trigger", content=body)
                assert answer.status_code == status, (body[:40], answer.text)
                assert answer.json().get("error") or answer.json().get("note")
            assert len(all_jobs(daemon)) == 1

    asyncio.run(scenario())


def trigger_cli(*args: str) -> list[str]:
    return ["trigger", *args, "--format", "json"]


def test_the_trigger_command_runs_a_pipeline_through_the_daemon(tmp_path, source_repo, capsys, monkeypatch):
    monkeypatch.delenv("FTG_API_TOKEN", raising=False)
    monkeypatch.delenv("FTG_DAEMON_URL", raising=False)
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            url = str(client.base_url).rstrip("/")
            argv = trigger_cli(REPO_NAME, "demo", "--ref", "main", "--daemon", url, "--request-id", "cli-1")
            assert await asyncio.to_thread(cli.main, argv) == 0
            out = capsys.readouterr()
            (job,) = json.loads(out.out)["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            assert await asyncio.to_thread(cli.main, argv) == 0  # the same request id: the same job
            assert json.loads(capsys.readouterr().out)["jobs"] == [job]
            assert [v.job.id for v in all_jobs(daemon)] == [job]

            code = await asyncio.to_thread(cli.main, ["trigger", "no/such", "demo", "--daemon", url])
            err = capsys.readouterr().err
            assert code == 2
            assert err.count("\n") == 1 and err.startswith("error: ") and "no/such is not configured" in err

            code = await asyncio.to_thread(cli.main, ["trigger", REPO_NAME, "nope", "--ref", "main", "--daemon", url])
            err = capsys.readouterr().err
            assert code == 1
            assert err.count("\n") == 1 and "no valid pipeline nope" in err and "demo" in err
            assert len(all_jobs(daemon)) == 1

    asyncio.run(scenario())


def test_the_trigger_command_says_so_when_no_daemon_listens(capsys, monkeypatch):
    monkeypatch.delenv("FTG_API_TOKEN", raising=False)
    with socket.socket() as s:  # a port that was free a moment ago, and nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = cli.main(["trigger", REPO_NAME, "demo", "--daemon", f"http://127.0.0.1:{port}"])
    out = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out.err and out.err.count("\n") == 1
    assert out.err.startswith(f"error: cannot reach the daemon at http://127.0.0.1:{port}")


def test_the_trigger_command_needs_the_api_token_when_one_is_configured(tmp_path, source_repo, capsys, monkeypatch):
    token = "api-token-for-the-test-0123456789"
    config = quiet_config(
        tmp_path, source_repo, extra="api_token_env: FTG_TEST_API_TOKEN\n", environ={"FTG_TEST_API_TOKEN": token}
    )
    assert config.api_token == token

    async def scenario():
        async with serving(config) as (daemon, client):
            url = str(client.base_url).rstrip("/")
            argv = trigger_cli(REPO_NAME, "demo", "--ref", "main", "--daemon", url)
            monkeypatch.delenv("FTG_API_TOKEN", raising=False)
            assert await asyncio.to_thread(cli.main, argv) == 2
            err = capsys.readouterr().err
            assert "(401)" in err and "Bearer" in err and "FTG_API_TOKEN" in err and token not in err
            monkeypatch.setenv("FTG_API_TOKEN", "wrong")
            assert await asyncio.to_thread(cli.main, argv) == 2
            assert "(401)" in capsys.readouterr().err
            assert all_jobs(daemon) == []
            monkeypatch.setenv("FTG_API_TOKEN", token)
            assert await asyncio.to_thread(cli.main, argv) == 0
            (job,) = json.loads(capsys.readouterr().out)["jobs"]
            assert [v.job.id for v in all_jobs(daemon)] == [job]
            # with a token configured the read API wants a credential too (issue 15); the API token reads
            assert (await client.get("/api/jobs")).status_code == 401
            assert (await client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    asyncio.run(scenario())


# ---------------------------------------------------------------- secrets


def test_the_webhook_secret_never_appears_in_an_answer_or_the_log(tmp_path, source_repo, contracts, pushed, caplog):
    config = quiet_config(tmp_path, source_repo, gitlab_repo=True)
    body = push_body(contracts, *pushed)
    caplog.set_level(logging.DEBUG, logger="fasttrack_gitops")

    async def scenario():
        answers = []
        async with serving(config) as (daemon, client):
            answers.append(await post_github(client, body, delivery="s-1"))
            answers.append(await post_github(client, body, delivery="s-1"))
            answers.append(
                await post_github(client, body, delivery="s-2", **{"X-Hub-Signature-256": signed(body, SECRET + "x")})
            )
            answers.append(await post_github(client, body, delivery="s-3", **{"X-Hub-Signature-256": SECRET}))
            answers.append(await post_gitlab(client, gitlab_push(contracts, before=pushed[0], after=pushed[1])))
            answers.append(
                await post_gitlab(
                    client, gitlab_push(contracts, before=pushed[0], after=pushed[1]), token=SECRET + "x", key="idem-2"
                )
            )
            answers.append(await post_gitlab(client, {"object_kind": "push"}, key="idem-3"))
            made = {j for a in answers if a.status_code == 202 for j in a.json().get("jobs", [])}
            assert len(made) == 2  # the GitHub repository's and the GitLab project's
            await await_until(lambda: all(daemon.store.view(j).status == JobStatus.SUCCEEDED for j in made))
            for path in ("/healthz", "/metrics", "/api/jobs"):
                answers.append(await client.get(path))
            answers.append(await client.post("/api/trigger", json={"repository": REPO_NAME, "pipeline": "nope"}))
        return answers

    answers = asyncio.run(scenario())
    assert {a.status_code for a in answers} >= {200, 202, 400, 401}
    for answer in answers:
        assert SECRET not in answer.text, (answer.request.url, answer.text)
        assert SECRET not in str(answer.headers)
    assert caplog.records, "the daemon logs what it does"
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text


@contextlib.asynccontextmanager
async def impostor(status_line: str, content_type: str, body: bytes):
    """A server on 127.0.0.1 that answers every request the same, as a proxy or another service would."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status_line}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(
    "status_line, content_type, body",
    [
        (
            "404 Not Found",
            "text/html",
            b"<html>\n<head><title>404 Not Found</title></head>\n<body>nginx</body>\n</html>\n",
        ),
        ("502 Bad Gateway", "text/plain", b""),
        ("200 OK", "application/json", b'["not", "the", "daemon"]'),
        ("201 Created", "application/json", b'"created"'),
    ],
)
def test_the_trigger_command_explains_an_answer_that_is_not_the_daemons_in_one_line(
    status_line, content_type, body, capsys, monkeypatch
):
    monkeypatch.delenv("FTG_API_TOKEN", raising=False)

    async def scenario():
        async with impostor(status_line, content_type, body) as url:
            return await asyncio.to_thread(cli.main, ["trigger", REPO_NAME, "demo", "--daemon", url]), url

    code, url = asyncio.run(scenario())
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err and "internal" not in err
    assert url in err or status_line.split()[0] in err


TUNED = "params:\n  - {name: lr, type: number, default: 0.1}\n"


def test_post_api_trigger_gives_the_job_the_parameter_values_and_refuses_bad_ones(tmp_path, source_repo):
    commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra=TUNED))
    config = quiet_config(tmp_path, source_repo)
    request = {"repository": REPO_NAME, "pipeline": "demo", "ref": "main"}

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await client.post("/api/trigger", json={**request, "request_id": "p-1", "params": {"lr": "0.5"}})
            assert answer.status_code == 201, answer.text
            (job,) = answer.json()["jobs"]
            view = daemon.store.view(job)
            assert view.job.trigger["params"] == {"lr": "0.5"}
            assert [(p.name, p.value) for p in view.job.pipeline_model().params] == [("lr", 0.5)]
            for params, says in (
                ({"epochs": 3}, "pipeline 'demo' has no parameter 'epochs'; its parameters: lr"),
                ({"lr": "fast"}, "parameter 'lr' is a number: 'fast' is not"),
                ({"lr": [1]}, "params.lr: give a string, a number or a boolean"),
                ("lr=1", "params must be an object"),
            ):
                answer = await client.post("/api/trigger", json={**request, "params": params})
                assert answer.status_code == 400, answer.text
                assert says in (answer.json().get("error") or answer.json()["note"])
            assert [v.job.id for v in all_jobs(daemon)] == [job]  # no job for a refused request

    asyncio.run(scenario())


def test_the_trigger_command_passes_params_and_exits_2_when_the_daemon_refuses_them(
    tmp_path, source_repo, capsys, monkeypatch
):
    monkeypatch.delenv("FTG_API_TOKEN", raising=False)
    commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra=TUNED))
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            url = str(client.base_url).rstrip("/")
            argv = trigger_cli(REPO_NAME, "demo", "--ref", "main", "--daemon", url, "--param", "lr=2")
            assert await asyncio.to_thread(cli.main, argv) == 0
            (job,) = json.loads(capsys.readouterr().out)["jobs"]
            assert daemon.store.view(job).job.pipeline_model().params[0].value == 2
            bad = trigger_cli(REPO_NAME, "demo", "--daemon", url, "--param", "lr=two")
            assert await asyncio.to_thread(cli.main, bad) == 2
            assert "parameter 'lr' is a number: 'two' is not" in capsys.readouterr().err
            malformed = trigger_cli(REPO_NAME, "demo", "--daemon", url, "--param", "lr")
            assert await asyncio.to_thread(cli.main, malformed) == 2
            assert "write NAME=VALUE" in capsys.readouterr().err
            assert len(all_jobs(daemon)) == 1

    asyncio.run(scenario())
