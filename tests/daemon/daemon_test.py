"""The daemon end to end: webhooks in over a real socket, jobs in the real SQLite store, tasks run locally."""

from __future__ import annotations

import asyncio
import json

import httpx
from conftest import await_until, git
from daemon.conftest import (
    REPO_NAME,
    comment_payload,
    commit_file,
    deliver,
    github_headers,
    load,
    pipeline_text,
    pr_payload,
    push_payload,
    running,
    write_config,
)

from fasttrack_gitops.core.job import JobStatus

ZERO = "0" * 40


def test_a_signed_push_webhook_makes_one_job_that_runs_to_success(tmp_path, source_repo, contracts):
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# v2\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.post(
                    "/webhooks/github", content=body, headers=github_headers(body, "push", "delivery-1")
                )
                assert answer.status_code == 202, answer.text
                jobs = answer.json()["jobs"]
                assert len(jobs) == 1
                view = await await_until(lambda: (v := daemon.store.view(jobs[0])).status == JobStatus.SUCCEEDED and v)
                assert view.job.commit == after and view.job.repository == REPO_NAME
                assert view.job.trigger["event"] == "push"
                again = await client.post(
                    "/webhooks/github", content=body, headers=github_headers(body, "push", "delivery-1")
                )
                assert again.status_code == 200 and again.json()["duplicate"] is True
                listed = (await client.get("/api/jobs")).json()
                assert [j["id"] for j in listed] == jobs
                assert (await client.get(f"/api/jobs/{jobs[0]}")).json()["status"] == "succeeded"

    asyncio.run(scenario())


def _jobs(daemon, **kwargs):
    return daemon.store.list_jobs(limit=0, **kwargs)


def test_a_pull_request_runs_the_pipelines_whose_paths_it_changed_against_the_merge_base(
    tmp_path, source_repo, contracts
):
    for name in ("a", "b"):
        commit_file(
            source_repo,
            f"pipelines/{name}.yaml",
            pipeline_text(
                name,
                f"""\
            on:
              pull_request:
                paths: ["src/{name}/**"]
            """,
            ),
        )
    base = commit_file(source_repo, "src/b/base.txt", "on main\n")
    git(source_repo, "checkout", "-q", "-b", "feature")
    head = commit_file(source_repo, "src/a/change.txt", "feature work\n")
    git(source_repo, "checkout", "-q", "main")
    commit_file(source_repo, "src/b/later.txt", "main moved on; not part of the pull request\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await deliver(
                    client, "pull_request", pr_payload(contracts, number=3, head_sha=head, base_sha=base), "pr-1"
                )
                assert answer.status_code == 202, answer.text
            (view,) = [v for v in _jobs(daemon) if v.job.pipeline != "demo"]
            assert view.job.pipeline == "a" and view.job.commit == head
            assert view.job.trigger["event"] == "pull_request" and view.job.trigger["number"] == 3
            assert view.job.ref == "refs/pull/3/head"
            assert "src/a/change.txt" in view.job.trigger["reason"]

    asyncio.run(scenario())


def test_a_pull_request_from_a_fork_waits_for_a_members_ok_to_test(tmp_path, source_repo, contracts):
    base = git(source_repo, "rev-parse", "HEAD").strip()
    commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    head = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# fork\n")
    git(source_repo, "checkout", "-q", "main")
    git(source_repo, "update-ref", "refs/pull/9/head", head)  # where GitHub keeps a fork's head in the base
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    fork = pr_payload(contracts, number=9, head_sha=head, base_sha=base, head_repo="stranger/pipes")

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                held = (await deliver(client, "pull_request", fork, "fork-1")).json()
                assert held["jobs"] == [] and "ok-to-test" in held["note"]
                assert [g.number for g in daemon.ledger.gates()] == [9]
                outsider = (
                    await deliver(
                        client,
                        "issue_comment",
                        comment_payload(
                            contracts, number=9, body="/fasttrack ok-to-test", association="NONE", author="mallory"
                        ),
                        "c-1",
                    )
                ).json()
                assert outsider["jobs"] == [] and "refused" in outsider["note"]
                assert _jobs(daemon) == []
                member = (
                    await deliver(
                        client,
                        "issue_comment",
                        comment_payload(contracts, number=9, body="Looks safe.\n/fasttrack ok-to-test", author="alice"),
                        "c-2",
                    )
                ).json()
                assert len(member["jobs"]) == 1, member
            (view,) = _jobs(daemon)
            assert view.job.commit == head and view.job.trigger["approved_by"] == "alice"
            assert view.job.trigger["fork"] is True
            assert daemon.ledger.gates() == []  # approved: nothing waits any more

    asyncio.run(scenario())


def test_an_ok_to_test_covers_the_head_it_was_given_and_a_new_push_to_the_fork_waits_again(
    tmp_path, source_repo, contracts
):
    base = git(source_repo, "rev-parse", "HEAD").strip()
    commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n"))
    git(source_repo, "checkout", "-q", "-b", "fork-work")
    first = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# one\n")
    second = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text(extra="on: [pull_request]\n") + "# two\n")
    git(source_repo, "checkout", "-q", "main")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    approve = comment_payload(contracts, number=9, body="/fasttrack ok-to-test", author="alice")

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            git(source_repo, "update-ref", "refs/pull/9/head", first)
            opened = pr_payload(contracts, number=9, head_sha=first, base_sha=base, head_repo="stranger/pipes")
            assert (await deliver(client, "pull_request", opened, "fork-1")).json()["jobs"] == []
            assert len((await deliver(client, "issue_comment", approve, "c-1")).json()["jobs"]) == 1
            git(source_repo, "update-ref", "refs/pull/9/head", second)  # the fork pushes again
            pushed = pr_payload(contracts, number=9, head_sha=second, base_sha=base, head_repo="stranger/pipes")
            held = (await deliver(client, "pull_request", pushed, "fork-2")).json()
            assert held["jobs"] == [] and "ok-to-test" in held["note"]
            assert [(g.number, g.head_sha) for g in daemon.ledger.gates()] == [(9, second)]
            assert [v.job.commit for v in _jobs(daemon)] == [first]  # nothing ran the new head

    asyncio.run(scenario())


def test_comment_commands_run_retest_and_cancel(tmp_path, source_repo, contracts):
    base = git(source_repo, "rev-parse", "HEAD").strip()
    flaky = pipeline_text("flaky", "on: [pull_request]\n").replace(
        'cat "$PIPELINE_INPUT1/out.txt"', f"test -f {tmp_path}/fixed"
    )
    commit_file(source_repo, "pipelines/flaky.yaml", flaky)
    git(source_repo, "checkout", "-q", "-b", "feature")
    head = commit_file(source_repo, "notes.txt", "work\n")
    git(source_repo, "update-ref", "refs/pull/4/head", head)
    git(source_repo, "checkout", "-q", "main")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            first = (
                await deliver(
                    client, "pull_request", pr_payload(contracts, number=4, head_sha=head, base_sha=base), "p-1"
                )
            ).json()
            (job,) = first["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.FAILED)
            (tmp_path / "fixed").write_text("")
            retest = (
                await deliver(
                    client, "issue_comment", comment_payload(contracts, number=4, body="/fasttrack retest"), "c-retest"
                )
            ).json()
            (again,) = retest["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(again)).status == JobStatus.SUCCEEDED and v)
            assert view.job.rerun_of == job and view.job.trigger["by"] == "octocat"
            run = (
                await deliver(
                    client, "issue_comment", comment_payload(contracts, number=4, body="/fasttrack run demo"), "c-run"
                )
            ).json()
            (manual,) = run["jobs"]
            assert daemon.store.view(manual).job.pipeline == "demo"
            unknown = (
                await deliver(
                    client,
                    "issue_comment",
                    comment_payload(contracts, number=4, body="/fasttrack run nosuch"),
                    "c-run-2",
                )
            ).json()
            assert unknown["jobs"] == [] and "demo" in unknown["note"]
            given = (
                await deliver(
                    client,
                    "issue_comment",
                    comment_payload(contracts, number=4, body="/fasttrack run demo greeting='hi there'"),
                    "c-run-3",
                )
            ).json()
            assert given["jobs"] == [] and "pipeline 'demo' has no parameter 'greeting'" in given["note"]
            outsider = (
                await deliver(
                    client,
                    "issue_comment",
                    comment_payload(contracts, number=4, body="/fasttrack run flaky x=1", association="NONE"),
                    "c-run-4",
                )
            ).json()
            assert outsider["jobs"] == [] and "refused" in outsider["note"]
            await await_until(lambda: daemon.store.view(manual).status == JobStatus.SUCCEEDED)

    asyncio.run(scenario())


def test_a_newer_commit_cancels_the_superseded_job_of_its_concurrency_group(tmp_path, source_repo, contracts):
    slow = pipeline_text(
        "deploy",
        """\
        concurrency:
          group: deploy-${{ branch }}
          cancel_in_progress: true
        """,
    ).replace("echo prepare >", "sleep 30; echo prepare >")
    first = commit_file(source_repo, "pipelines/demo.yaml", slow)
    second = commit_file(source_repo, "pipelines/demo.yaml", slow + "# v2\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                (old,) = (
                    await deliver(
                        client, "push", push_payload(contracts, ref="refs/heads/main", before=ZERO, after=first), "d-1"
                    )
                ).json()["jobs"]
                await await_until(lambda: daemon.store.view(old).status == JobStatus.RUNNING)
                (new,) = (
                    await deliver(
                        client,
                        "push",
                        push_payload(contracts, ref="refs/heads/main", before=first, after=second),
                        "d-2",
                    )
                ).json()["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(old)).status == JobStatus.CANCELLED and v)
            assert view.job.id in {v.job.id for v in _jobs(daemon)}  # cancelled, not deleted
            await await_until(lambda: daemon.store.view(new).status == JobStatus.RUNNING)
            daemon.store.request_cancel(new)

    asyncio.run(scenario())


def test_jobs_beyond_the_global_limit_queue_and_start_in_order(tmp_path, source_repo, contracts):
    for name in ("one", "two", "three"):
        commit_file(
            source_repo,
            f"pipelines/{name}.yaml",
            pipeline_text(name).replace("echo prepare >", "sleep 0.5; echo prepare >"),
        )
    after = git(source_repo, "rev-parse", "HEAD").strip()
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n", extra="max_running_jobs: 1\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                jobs = (
                    await deliver(
                        client, "push", push_payload(contracts, ref="refs/heads/main", before=ZERO, after=after), "q-1"
                    )
                ).json()["jobs"]
            assert len(jobs) == 4
            statuses = {daemon.store.view(j).status for j in jobs}
            assert JobStatus.QUEUED in statuses
            assert sum(daemon.store.view(j).status == JobStatus.RUNNING for j in jobs) <= 1
            await await_until(lambda: all(daemon.store.view(j).status == JobStatus.SUCCEEDED for j in jobs), timeout=60)
            starts = sorted((daemon.store.view(j).tasks["prepare"].attempts[0].started_at, j) for j in jobs)
            ends = [daemon.store.view(j).tasks["train"].attempts[0].ended_at for _, j in starts]
            for (start, _), previous_end in zip(starts[1:], ends):
                assert start >= previous_end  # one at a time

    asyncio.run(scenario())


def test_a_commit_to_a_watched_repository_starts_its_job_without_any_webhook(tmp_path, source_repo):
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: true\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            await await_until(lambda: daemon.ledger.positions(REPO_NAME))  # the first scan recorded where main is
            assert _jobs(daemon) == []  # the past is not run
            after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# watched\n")
            (view,) = await await_until(lambda: _jobs(daemon))
            assert view.job.commit == after and view.job.trigger["sender"] == "watch"
            await await_until(lambda: daemon.store.view(view.job.id).status == JobStatus.SUCCEEDED)
            git(source_repo, "checkout", "-q", "-b", "elsewhere")  # a branch not followed: nothing runs
            ignored = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# not followed\n")
            git(source_repo, "checkout", "-q", "main")
            followed = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# followed again\n")
            # Changes are scanned in order, and a scan handles the refs that moved by name ("elsewhere" before
            # "main"): once main's new position is recorded, the commit to elsewhere was looked at too.
            await await_until(lambda: daemon.ledger.positions(REPO_NAME).get("refs/heads/main") == followed)
            jobs = {v.job.commit: v.job.id for v in _jobs(daemon)}
            assert ignored not in jobs and sorted(jobs) == sorted([after, followed])
            await await_until(lambda: daemon.store.view(jobs[followed]).status == JobStatus.SUCCEEDED)

    asyncio.run(scenario())


def test_a_remote_repository_is_polled_into_a_mirror_and_an_unreachable_one_never_stops_the_daemon(
    tmp_path, source_repo
):
    config = load(
        write_config(
            tmp_path,
            source_repo,
            url=f"file://{source_repo}",
            repo_extra="watch: false\npoll_interval: 1s\n",
            more_repositories="""\
          - name: acme/gone
            url: https://127.0.0.1:9/gone.git
            provider: github
            poll_interval: 1s
        """,
        )
    )
    assert config.repositories[0].local_path is not None  # file:// reads the repository in place

    async def scenario():
        async with running(config) as (daemon, url):
            await await_until(lambda: daemon.ledger.positions(REPO_NAME))
            after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# polled\n")
            (view,) = await await_until(lambda: _jobs(daemon))
            assert view.job.commit == after and view.job.trigger["sender"] == "poll"
            await await_until(lambda: daemon.metrics.fetch_errors["acme/gone"] >= 1)
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/healthz")).status_code == 200
                assert (
                    'ftg_repository_fetch_errors_total{repository="acme/gone"}' in (await client.get("/metrics")).text
                )

    asyncio.run(scenario())


def test_a_pipeline_that_is_invalid_at_the_commit_becomes_an_invalid_job_with_its_diagnostics(
    tmp_path, source_repo, contracts
):
    before = git(source_repo, "rev-parse", "HEAD").strip()
    after = commit_file(source_repo, "pipelines/broken.yaml", "version: 1\nname: broken\ntasks:\n  - nme: x\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            async with httpx.AsyncClient(base_url=url) as client:
                answer = (
                    await deliver(
                        client,
                        "push",
                        push_payload(contracts, ref="refs/heads/main", before=before, after=after),
                        "inv-1",
                    )
                ).json()
                assert len(answer["jobs"]) == 2 and "1 invalid pipeline file" in answer["note"]
                records = {r["pipeline"]: r for r in (await client.get("/api/jobs")).json()}
            broken = records["broken"]
            assert broken["status"] == "invalid" and broken["tasks"] == []
            assert broken["diagnostics"][0]["file"] == "pipelines/broken.yaml"
            assert broken["diagnostics"][0]["line"] == 4 and "nme" in broken["diagnostics"][0]["message"]
            await await_until(lambda: daemon.store.view(records["demo"]["id"]).status == JobStatus.SUCCEEDED)

    asyncio.run(scenario())


def test_a_schedule_runs_once_per_tick_and_once_after_downtime(tmp_path, source_repo):
    from fasttrack_gitops.daemon import follow
    from fasttrack_gitops.daemon.service import Daemon
    from fasttrack_gitops.engine.executors import get_executor

    commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline_text(
            extra="""\
        on:
          schedule:
            - cron: "0 * * * *"
        """
        ),
    )
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    repo = config.repositories[0]
    hour = 3600.0
    start = 1_800_000_000.0 - 1_800_000_000.0 % hour + 60  # one minute past an hour

    async def scenario():
        daemon = Daemon(config, executor=get_executor("local"))
        try:
            await follow._due_ticks(daemon, repo, start)  # first sight: counts from now, runs nothing
            assert _jobs(daemon) == []
            await follow._due_ticks(daemon, repo, start + hour)  # the next hour's tick
            (first,) = _jobs(daemon)
            assert first.job.trigger["event"] == "schedule" and first.job.trigger["at"] == start - 60 + hour
            await follow._due_ticks(daemon, repo, start + hour)  # the same tick again: nothing new
            assert len(_jobs(daemon)) == 1
            await follow._due_ticks(daemon, repo, start + 7 * 24 * hour)  # a week down: one run, not 167
            assert len(_jobs(daemon)) == 2
        finally:
            daemon.close()

    asyncio.run(scenario())


def test_a_push_to_a_remote_repository_is_fetched_into_the_daemons_mirror(tmp_path, source_repo, contracts):
    from daemon.conftest import http_git_server

    before = git(source_repo, "rev-parse", "HEAD").strip()
    with http_git_server(source_repo) as remote:
        config = load(write_config(tmp_path, source_repo, url=remote, repo_extra="poll_interval: 1h\n"))
        assert config.repositories[0].local_path is None

        async def scenario():
            async with running(config) as (daemon, url):
                await await_until(lambda: daemon.ledger.positions(REPO_NAME))  # the first poll fetched
                after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# remote\n")
                async with httpx.AsyncClient(base_url=url) as client:  # the webhook comes before the next poll
                    answer = (
                        await deliver(
                            client,
                            "push",
                            push_payload(contracts, ref="refs/heads/main", before=before, after=after),
                            "r-1",
                        )
                    ).json()
                (job,) = answer["jobs"]
                view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.SUCCEEDED and v)
                assert view.job.commit == after
                mirror = daemon.repositories.sources[REPO_NAME].top
                assert mirror.is_relative_to(config.state_dir) and (mirror / "objects").is_dir()

        asyncio.run(scenario())


def test_the_checks_rerun_buttons_make_new_jobs_from_the_same_frozen_spec(tmp_path, source_repo, contracts):
    import copy

    from daemon.conftest import payload

    before = git(source_repo, "rev-parse", "HEAD").strip()
    flaky = pipeline_text().replace('cat "$PIPELINE_INPUT1/out.txt"', f"test -f {tmp_path}/fixed")
    after = commit_file(source_repo, "pipelines/demo.yaml", flaky)
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    def check_event(name: str, job: str, **action) -> dict:
        data = copy.deepcopy(payload(contracts, name))
        data["repository"]["full_name"] = REPO_NAME
        data["check_run"].update(name="fasttrack/demo", external_id=job, head_sha=after)
        if action:
            data["requested_action"] = action
        return data

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            (job,) = (
                await deliver(
                    client, "push", push_payload(contracts, ref="refs/heads/main", before=before, after=after), "k-1"
                )
            ).json()["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.FAILED)
            (tmp_path / "fixed").write_text("")
            failed_only = (
                await deliver(
                    client,
                    "check_run",
                    check_event("check_run.requested_action.payload.json", job, identifier="rerun-failed"),
                    "k-2",
                )
            ).json()
            (again,) = failed_only["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(again)).status == JobStatus.SUCCEEDED and v)
            assert view.job.rerun_of == job and view.job.spec_id == daemon.store.job(job).spec_id
            assert view.tasks["prepare"].reason == f"reused from job {job}"  # not run again
            assert not view.tasks["prepare"].attempts and view.tasks["train"].attempts
            whole = (
                await deliver(client, "check_run", check_event("check_run.rerequested.payload.json", job), "k-3")
            ).json()
            (third,) = whole["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(third)).status == JobStatus.SUCCEEDED and v)
            assert view.tasks["prepare"].attempts  # a whole re-run runs every task
            other_app = check_event("check_run.rerequested.payload.json", job)
            other_app["check_run"]["name"] = "ci/build"
            assert (await deliver(client, "check_run", other_app, "k-4")).json()["jobs"] == []

    asyncio.run(scenario())


def test_the_installation_a_webhook_names_is_recorded_on_each_job_it_makes_but_keys_none(
    tmp_path, source_repo, contracts
):
    """The GitHub App installation of a delivery goes into every job's trigger (the reporters act as it),
    valid, invalid and re-run; the same push without it (as a poll reports it) is the same job."""
    import copy

    from daemon.conftest import payload

    before = git(source_repo, "rev-parse", "HEAD").strip()
    commit_file(source_repo, "pipelines/broken.yaml", "version: 1\nname: broken\ntasks:\n  - nme: x\n")
    after = commit_file(source_repo, "pipelines/demo.yaml", pipeline_text() + "# v2\n")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    push = push_payload(contracts, ref="refs/heads/main", before=before, after=after)

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            jobs = (await deliver(client, "push", {**push, "installation": {"id": 4242}}, "inst-1")).json()["jobs"]
            assert len(jobs) == 2
            triggers = {daemon.store.job(j).pipeline: daemon.store.job(j).trigger for j in jobs}
            assert triggers["demo"]["installation"] == triggers["broken"]["installation"] == 4242
            assert triggers["demo"]["ref"] == "refs/heads/main"
            polled = (await deliver(client, "push", push, "inst-2")).json()
            assert polled["jobs"] == jobs  # one job per pipeline and push, whoever reported it
            demo = next(j for j in jobs if daemon.store.job(j).pipeline == "demo")
            await await_until(lambda: daemon.store.view(demo).status == JobStatus.SUCCEEDED)
            rerequest = copy.deepcopy(payload(contracts, "check_run.rerequested.payload.json"))
            rerequest["repository"]["full_name"] = REPO_NAME
            rerequest["check_run"].update(name="fasttrack/demo", external_id=demo, head_sha=after)
            (again,) = (await deliver(client, "check_run", rerequest, "inst-3")).json()["jobs"]
            rerun = daemon.store.job(again)
            assert rerun.rerun_of == demo
            assert rerun.trigger["installation"] == rerequest["installation"]["id"]
            assert rerun.trigger["event"] == "rerun" and rerun.trigger["of"] == demo
            await await_until(lambda: daemon.store.view(again).status == JobStatus.SUCCEEDED)

    asyncio.run(scenario())


def test_a_members_run_comment_gives_the_job_parameter_values(tmp_path, source_repo, contracts):
    tuned = pipeline_text(
        "tuned", "params:\n  - {name: lr, type: number, default: 0.1}\n  - {name: note, default: ''}\n"
    )
    commit_file(source_repo, "pipelines/tuned.yaml", tuned)
    git(source_repo, "checkout", "-q", "-b", "feature")
    head = commit_file(source_repo, "notes.txt", "work\n")
    git(source_repo, "update-ref", "refs/pull/4/head", head)
    git(source_repo, "checkout", "-q", "main")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    body = "/fasttrack run tuned lr=0.25 note='a; b && $(c)'"

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            run = (
                await deliver(client, "issue_comment", comment_payload(contracts, number=4, body=body), "c-1")
            ).json()
            (job,) = run["jobs"]
            view = await await_until(lambda: (v := daemon.store.view(job)).status == JobStatus.SUCCEEDED and v)
            assert view.job.trigger["params"] == {"lr": "0.25", "note": "a; b && $(c)"}
            assert [(p.name, p.value) for p in view.job.pipeline_model().params] == [
                ("lr", 0.25),
                ("note", "a; b && $(c)"),
            ]
            wrong = comment_payload(contracts, number=4, body="/fasttrack run tuned lr=high")
            refused = (await deliver(client, "issue_comment", wrong, "c-2")).json()
            assert refused["jobs"] == [] and "parameter 'lr' is a number: 'high' is not" in refused["note"]

    asyncio.run(scenario())
