"""GitLab commit statuses, told as what a merge request's reader sees.

A ContractServer plays GitLab: every body we post is checked against the
create-commit-status schema in tests/data/contracts/gitlab.json, every answer
it gives matches that operation's responseSchema, and it keeps GitLab's
status state machine (re-posting pending or running is a 400 "Cannot
transition status via ..."), so idempotency is tested against GitLab's
rules, not against our own idea of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from urllib.parse import unquote

import httpx
import jsonschema
import pytest
from engine.reporters.contract_server import Answer, ContractServer, Request

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater, TaskRow
from fasttrack_gitops.engine.reporters.config import GitLabReporterConfig
from fasttrack_gitops.engine.reporters.gitlab import GitLabReporter

TOKEN = "glpat-s3cr3t-t0ken-value"
PROJECT = "ml-team/vision/resnet"
ENCODED = "ml-team%2Fvision%2Fresnet"
SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
STATUSES = r"/api/v4/projects/(?P<project>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})"
JOB_PAGE = "https://fasttrack.example.com/jobs/7f3a9c"

TASKS = (
    TaskRow("prepare", "succeeded", 42.0, 1),
    TaskRow("train", "succeeded", 3600.0, 1),
    TaskRow("lint", "failed", 3.0, 1, "exit 1"),
    TaskRow("evaluate", "succeeded", 120.0, 1),
)


def job(**changes) -> JobReport:
    """A push to main of ml-team/vision/resnet, queued; tests change what their story needs."""
    base = JobReport(
        job_id="j-7f3a9c",
        repository=PROJECT,
        pipeline="train-resnet",
        pipeline_path="pipelines/train.yaml",
        commit=SHA,
        ref="refs/heads/main",
        trigger={"event": "push", "sender": "alice"},
        status="queued",
        conclusion=None,
        started=False,
        title="Queued: waiting for a runner slot",
        summary="",
        text="",
        details_url=JOB_PAGE,
    )
    return dataclasses.replace(base, **changes)


RUNNING = dict(status="running", started=True, title="1 of 4 tasks succeeded; train running")
SUCCEEDED = dict(status="succeeded", started=True, conclusion="success", title="4 of 4 tasks succeeded")


class FakeGitLab:
    """GitLab's create-commit-status endpoint: token, project, commit, and the status state machine."""

    def __init__(self, contract: dict, projects=(PROJECT,)):
        self.server = ContractServer()
        self.projects = set(projects)
        self.statuses: list[dict] = []  # as GitLab answers them, newest last
        self._response_schema = contract["responseSchema"]
        self.server.route("POST", STATUSES, self._create, schema=contract["requestBody"])

    def _create(self, request: Request) -> Answer:
        if request.headers.get("private-token") != TOKEN:
            return Answer(401, {"message": "401 Unauthorized"})
        if unquote(request.match["project"]) not in self.projects:
            return Answer(404, {"message": "404 Project Not Found"})
        if request.match["sha"] != SHA:
            return Answer(404, {"message": "404 Commit Not Found"})
        body = request.json()
        name, ref = body.get("name", "default"), body.get("ref", "main")
        open_status = next(
            (
                s
                for s in reversed(self.statuses)
                if s["name"] == name and s["ref"] == ref and s["status"] in ("pending", "running")
            ),
            None,
        )
        refusal = self._refusal(open_status, body["state"])
        if refusal:
            return Answer(400, {"message": refusal})
        status = open_status or self._new(name, ref)
        status.update(status=body["state"], description=body.get("description"), target_url=body.get("target_url"))
        return Answer(201, self._checked(status))

    @staticmethod
    def _refusal(open_status: dict | None, state: str) -> str | None:
        """GitLab's InvalidTransition: pending only from a new status, running not from running."""
        if open_status is None:
            return None
        event = {"pending": "enqueue", "running": "run"}.get(state)
        if event and not (state == "running" and open_status["status"] == "pending"):
            return (
                f"Cannot transition status via :{event} from :{open_status['status']} "
                f'(Reason(s): Status cannot transition via "{event}")'
            )
        return None

    def _new(self, name: str, ref: str) -> dict:
        status = {
            "id": 93 + len(self.statuses),
            "sha": SHA,
            "ref": ref,
            "status": "pending",
            "name": name,
            "target_url": None,
            "description": None,
            "coverage": None,
            "allow_failure": False,
            "created_at": "2016-01-19T09:05:50.355Z",
            "started_at": None,
            "finished_at": None,
            "author": {"id": 28, "username": "fasttrack-bot", "name": "FastTrack", "state": "active"},
        }
        self.statuses.append(status)
        return status

    def _checked(self, status: dict) -> dict:
        """The answer, after checking it against the contract's responseSchema (a bad fake tests nothing)."""
        for error in jsonschema.Draft202012Validator(self._response_schema).iter_errors(status):
            self.server.violations.append(f"answer breaks responseSchema: {error.message}")
        return dict(status)


@pytest.fixture
def gitlab(contracts):
    fake = FakeGitLab(json.loads((contracts / "gitlab.json").read_text())["create-commit-status"])
    with fake.server.serving():
        yield fake


def reporter_for(gitlab: FakeGitLab, token: str | None = TOKEN, **kwargs) -> GitLabReporter:
    return GitLabReporter(
        GitLabReporterConfig(token=token, url=gitlab.server.url + "/"), repositories=[PROJECT], **kwargs
    )


async def send_each(reporter: GitLabReporter, *reports: JobReport, state: dict | None = None) -> dict:
    """Send reports in order the way the deliverer does: each with the state the previous send returned."""
    state = dict(state or {})
    try:
        for report in reports:
            state = await reporter.send(report, state)
    finally:
        await reporter.aclose()
    return state


def posted(gitlab: FakeGitLab) -> list[dict]:
    return [r.json() for r in gitlab.server.calls("POST", STATUSES)]


def refused(gitlab: FakeGitLab, status: int, body: dict, headers: dict | None = None) -> None:
    gitlab.server.fail_next("POST", STATUSES, Answer(status, body, headers or {}))


# ---------------------------------------------------------------- what people see


def test_a_push_job_goes_pending_running_success_on_its_commit(gitlab):
    state = asyncio.run(send_each(reporter_for(gitlab), job(), job(**RUNNING), job(**SUCCEEDED)))

    common = {"name": "fasttrack/train-resnet", "ref": "main", "target_url": JOB_PAGE}
    assert posted(gitlab) == [
        {"state": "pending", "description": "Queued: waiting for a runner slot", **common},
        {"state": "running", "description": "1 of 4 tasks succeeded; train running", **common},
        {"state": "success", "description": "4 of 4 tasks succeeded", **common},
    ]
    assert [s["status"] for s in gitlab.statuses] == ["success"]  # one status, moved along, as GitLab shows it
    assert state == {"state": "success", "description": "4 of 4 tasks succeeded", "id": 93}


def test_the_project_path_with_subgroups_is_url_encoded_whole_and_the_token_sent_as_private_token(gitlab):
    asyncio.run(send_each(reporter_for(gitlab), job()))

    (call,) = gitlab.server.calls("POST", STATUSES)
    assert call.path == f"/api/v4/projects/{ENCODED}/statuses/{SHA}"
    assert call.headers["private-token"] == TOKEN
    assert "authorization" not in call.headers


def test_a_failed_or_timed_out_job_is_failed_with_its_title(gitlab):
    failed = job(
        status="failed", started=True, conclusion="failure", title="3 of 4 tasks succeeded; train failed (exit 3)"
    )
    late = job(
        pipeline="nightly", status="failed", started=True, conclusion="timed_out", title="train timed out after 2h"
    )
    asyncio.run(send_each(reporter_for(gitlab), failed))
    asyncio.run(send_each(reporter_for(gitlab), late))

    assert [(b["name"], b["state"], b["description"]) for b in posted(gitlab)] == [
        ("fasttrack/train-resnet", "failed", "3 of 4 tasks succeeded; train failed (exit 3)"),
        ("fasttrack/nightly", "failed", "train timed out after 2h"),
    ]


def test_a_cancelled_job_is_canceled_in_gitlabs_spelling(gitlab):
    asyncio.run(
        send_each(
            reporter_for(gitlab),
            job(**RUNNING),
            job(status="cancelled", started=True, conclusion="cancelled", title="Cancelled by bob (/fasttrack cancel)"),
        )
    )

    assert [(b["state"], b["description"]) for b in posted(gitlab)][-1] == (
        "canceled",
        "Cancelled by bob (/fasttrack cancel)",
    )


def test_a_job_where_only_allowed_tasks_failed_is_green_and_says_which(gitlab):
    neutral = job(
        status="succeeded",
        started=True,
        conclusion="neutral",
        tasks=TASKS,
        title="Succeeded with tolerated failures: lint (exit 1); 3 of 4 tasks succeeded",
    )
    asyncio.run(send_each(reporter_for(gitlab), neutral))

    (body,) = posted(gitlab)
    assert body["state"] == "success"
    assert body["description"] == "Succeeded with tolerated failures: lint (exit 1); 3 of 4 tasks succeeded"


def test_a_green_status_names_the_allowed_failures_even_when_the_title_does_not(gitlab):
    neutral = job(status="succeeded", started=True, conclusion="neutral", tasks=TASKS, title="Succeeded")
    asyncio.run(send_each(reporter_for(gitlab), neutral))

    (body,) = posted(gitlab)
    assert body["state"] == "success"
    assert body["description"] == "Passed; lint failed but is allowed to (continue_on_failure)"


def test_an_invalid_pipeline_file_fails_and_says_where(gitlab):
    warning = {
        "path": "pipelines/train.yaml",
        "line": 3,
        "column": 1,
        "level": "warning",
        "message": "description is empty",
        "title": "style",
    }
    error = {
        "path": "pipelines/train.yaml",
        "line": 12,
        "column": 5,
        "level": "failure",
        "message": "unknown key 'dependecies' (did you mean 'dependencies'?)",
        "title": "schema",
    }
    invalid = job(
        status="invalid",
        conclusion="failure",
        title="Invalid pipeline file: 1 error, 1 warning",
        annotations=(warning, error),
    )
    asyncio.run(send_each(reporter_for(gitlab), invalid))

    (body,) = posted(gitlab)
    assert body["state"] == "failed"
    assert body["description"] == (
        "Invalid pipeline file: 1 error, 1 warning (pipelines/train.yaml:12:5: "
        "unknown key 'dependecies' (did you mean 'dependencies'?))"
    )


def test_a_merge_request_from_a_fork_waits_pending_for_a_maintainer(gitlab):
    held = job(
        job_id=f"gate:{PROJECT}#17@{SHA}",
        ref="refs/pull/17/head",
        status="action_required",
        conclusion="action_required",
        title="Waiting for a member's /fasttrack ok-to-test",
        trigger={"event": "pull_request", "number": 17, "fork": True},
        details_url=None,
    )
    asyncio.run(send_each(reporter_for(gitlab), held))

    (body,) = posted(gitlab)
    assert body["state"] == "pending"
    assert "a maintainer must approve" in body["description"]
    assert "/fasttrack ok-to-test" in body["description"]
    assert "ref" not in body  # not a branch: GitLab finds the merge request's pipeline by the commit
    assert "target_url" not in body


def test_long_text_is_cut_to_gitlabs_limit_and_a_link_too_long_to_work_is_left_out(gitlab):
    long_title = "train failed: " + "CUDA out of memory; " * 30
    asyncio.run(
        send_each(
            reporter_for(gitlab),
            job(
                status="failed",
                started=True,
                conclusion="failure",
                title=long_title,
                details_url="https://fasttrack.example.com/jobs/" + "x" * 300,
            ),
        )
    )

    (body,) = posted(gitlab)
    assert len(body["description"]) <= 255 and body["description"].endswith("…")
    assert body["description"].startswith("train failed: CUDA out of memory;")
    assert "target_url" not in body


def test_a_tag_is_sent_as_its_name(gitlab):
    asyncio.run(send_each(reporter_for(gitlab), job(ref="refs/tags/v1.2.0")))
    assert posted(gitlab)[0]["ref"] == "v1.2.0"


# ---------------------------------------------------------------- no duplicates


def test_sending_the_same_report_again_posts_nothing(gitlab):
    reporter = reporter_for(gitlab)

    async def story():
        first = await reporter.send(job(**SUCCEEDED), {})
        again = await reporter.send(job(**SUCCEEDED), first)
        await reporter.aclose()
        return first, again

    first, again = asyncio.run(story())
    assert len(posted(gitlab)) == 1
    assert again == first


def test_progress_text_while_running_is_not_reposted_because_gitlab_would_refuse_it(gitlab):
    later = job(status="running", started=True, title="3 of 4 tasks succeeded; evaluate running")
    state = asyncio.run(send_each(reporter_for(gitlab), job(**RUNNING), later))

    assert [b["state"] for b in posted(gitlab)] == ["running"]
    assert state["description"] == "1 of 4 tasks succeeded; train running"  # what GitLab still shows


def test_a_changed_final_description_is_posted_and_replaces_the_shown_status(gitlab):
    final = job(**SUCCEEDED)
    amended = dataclasses.replace(final, title="4 of 4 tasks succeeded in 1h 2m")
    asyncio.run(send_each(reporter_for(gitlab), final, amended))

    assert [b["description"] for b in posted(gitlab)] == ["4 of 4 tasks succeeded", "4 of 4 tasks succeeded in 1h 2m"]


def test_gitlab_refusing_to_repeat_a_state_counts_as_done(gitlab):
    # the state was lost (or another job of this commit set it): GitLab already shows running
    async def story():
        await send_each(reporter_for(gitlab), job(**RUNNING))
        return await send_each(reporter_for(gitlab), job(**RUNNING))

    state = asyncio.run(story())
    assert len(gitlab.server.calls("POST", STATUSES)) == 2
    assert [s["status"] for s in gitlab.statuses] == ["running"]  # the second post changed nothing
    assert state == {"state": "running", "description": "1 of 4 tasks succeeded; train running"}


# ---------------------------------------------------------------- failures


def test_a_bad_token_gives_up_without_showing_it(gitlab):
    with pytest.raises(GiveUp) as caught:
        asyncio.run(send_each(reporter_for(gitlab, token="glpat-revoked-one"), job()))

    assert "401" in str(caught.value) and "gitlab.token" in str(caught.value)
    assert "glpat-revoked-one" not in str(caught.value)


def test_a_token_without_rights_gives_up_saying_which_role_it_needs(gitlab):
    refused(gitlab, 403, {"message": "403 Forbidden"})
    with pytest.raises(GiveUp) as caught:
        asyncio.run(send_each(reporter_for(gitlab), job()))

    assert PROJECT in str(caught.value) and "Developer" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_an_unknown_project_gives_up_naming_it(gitlab):
    gitlab.projects = {"ml-team/resnet"}
    with pytest.raises(GiveUp) as caught:
        asyncio.run(send_each(reporter_for(gitlab), job()))

    assert f"project {PROJECT} was not found" in str(caught.value)
    assert "group/subgroup/project" in str(caught.value)


def test_an_unknown_commit_gives_up_naming_it(gitlab):
    with pytest.raises(GiveUp) as caught:
        asyncio.run(send_each(reporter_for(gitlab), job(commit="0" * 40)))
    assert "commit 000000000000" in str(caught.value)


def test_a_rate_limit_retries_after_what_gitlab_says(gitlab):
    refused(gitlab, 429, {"message": "Retry later"}, {"Retry-After": "7"})
    with pytest.raises(RetryLater) as caught:
        asyncio.run(send_each(reporter_for(gitlab), job()))
    assert caught.value.after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_retries_and_the_next_try_posts(gitlab, status):
    refused(gitlab, status, {"message": "Internal Server Error"})
    reporter = reporter_for(gitlab)

    async def story():
        with pytest.raises(RetryLater) as caught:
            await reporter.send(job(), {})
        state = await reporter.send(job(), {})
        await reporter.aclose()
        return caught.value, state

    error, state = asyncio.run(story())
    assert error.after is None
    assert state["state"] == "pending"
    assert [s["status"] for s in gitlab.statuses] == ["pending"]


def test_another_bad_request_gives_up_with_gitlabs_words(gitlab):
    refused(gitlab, 400, {"message": {"target_url": ["is blocked: Only allowed schemes are http, https"]}})
    with pytest.raises(GiveUp) as caught:
        asyncio.run(send_each(reporter_for(gitlab), job()))
    assert "target_url is blocked: Only allowed schemes are http, https" in str(caught.value)


def test_gitlab_out_of_reach_retries():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reporter = GitLabReporter(GitLabReporterConfig(token=TOKEN, url=f"http://127.0.0.1:{port}"), repositories=[PROJECT])
    with pytest.raises(RetryLater) as caught:
        asyncio.run(send_each(reporter, job()))
    assert TOKEN not in str(caught.value)


def test_no_token_configured_gives_up_before_any_request(gitlab):
    with pytest.raises(GiveUp, match="gitlab.token_env"):
        asyncio.run(send_each(reporter_for(gitlab, token=None), job()))
    assert gitlab.server.requests == []


# ---------------------------------------------------------------- the reporter's edges


def test_it_wants_only_configured_gitlab_projects_in_any_case():
    reporter = GitLabReporter(GitLabReporterConfig(token=TOKEN), repositories=["ML-Team/Vision/ResNet"])
    assert reporter.wants(job())
    assert not reporter.wants(job(repository="octo-org/resnet"))
    asyncio.run(reporter.aclose())


def test_a_given_client_is_used_and_left_open(gitlab):
    async def story():
        async with httpx.AsyncClient() as client:
            await send_each(reporter_for(gitlab, client=client), job())
            return client.is_closed

    assert asyncio.run(story()) is False
    assert len(posted(gitlab)) == 1
