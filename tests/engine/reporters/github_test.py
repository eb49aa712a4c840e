"""The GitHub reporter as GitHub sees it: one check run per job, updated in place, and every body within the contract.

A ContractServer plays GitHub on 127.0.0.1: it keeps check runs (their
annotations appended as GitHub appends them), commit statuses, installation
tokens it issued, and checks every request body against the published
schema of its operation (tests/data/contracts/github-rest.json); a body that
breaks it fails the test. A GitHub App's JWT is verified with the public
half of a key made for the test. Time is a fake clock, so token expiry and
rate-limit resets are exact.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from engine.reporters.contract_server import Answer, ContractServer, Request

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater, TaskRow
from fasttrack_gitops.core.webhooks.github import RERUN_FAILED as WEBHOOK_RERUN_IDENTIFIER
from fasttrack_gitops.engine.reporters.config import GitHubReporterConfig
from fasttrack_gitops.engine.reporters.github import GitHubReporter, web_url
from fasttrack_gitops.engine.reporters.github_auth import installation_of
from fasttrack_gitops.engine.reporters.github_bodies import (
    RERUN_FAILED,
    annotation,
    check_run,
    clip_markdown,
    commit_status,
    one_line,
)

REPO = "lablup/mnist-pipelines"
SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
APP_ID = 4242
INSTALLATION = 77
PLAIN_TOKEN = "ghp_plainTokenThatMustNeverBeShown0001"
JOB_PAGE = "https://fasttrack.example.com/jobs/j-20240921-0007"
START = 1_726_900_000.0  # 2024-09-21T06:26:40Z

CHECK_RUNS = r"/repos/[^/]+/[^/]+/check-runs"
CHECK_RUN = r"/repos/[^/]+/[^/]+/check-runs/\d+"
STATUSES = r"/repos/[^/]+/[^/]+/statuses/[0-9a-f]{40}"
ACCESS_TOKENS = r"/app/installations/\d+/access_tokens"
INSTALLATION_LOOKUP = r"/repos/[^/]+/[^/]+/installation"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


# ---------------------------------------------------------------- GitHub, played by a contract server


class Clock:
    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeGitHub:
    """Check runs, commit statuses, installations and their tokens, as far as the reporter can tell."""

    def __init__(self, rest: dict, clock: Clock, public_key=None):
        self.rest = rest
        self.clock = clock
        self.public_key = public_key
        self.server = ContractServer()
        self.check_runs: dict[int, dict] = {}
        self.statuses: list[dict] = []
        self.issued: list[str] = []  # installation tokens, oldest first
        self.revoked: set[str] = set()
        self.jwt_claims: list[dict] = []
        self._next_id = 4
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.server.route("POST", repo + "/check-runs", self._create_check_run, schema=self._schema("create-check-run"))
        self.server.route(
            "PATCH", repo + r"/check-runs/(?P<id>\d+)", self._update_check_run, schema=self._schema("update-check-run")
        )
        self.server.route(
            "POST",
            repo + r"/statuses/(?P<sha>[0-9a-f]{40})",
            self._create_status,
            schema=self._schema("create-commit-status"),
        )
        self.server.route(
            "POST",
            r"/app/installations/(?P<id>\d+)/access_tokens",
            self._access_token,
            schema=self._schema("create-installation-access-token"),
        )
        self.server.route("GET", repo + "/installation", self._installation)
        self.server.route("GET", repo + r"/commits/(?P<ref>[^/]+)/check-runs", self._list_check_runs)

    @property
    def url(self) -> str:
        return self.server.url

    def _schema(self, operation: str) -> dict:
        return self.rest[operation]["requestBody"]

    def _example(self, operation: str) -> dict:
        return copy.deepcopy(next(iter(self.rest[operation]["responseExamples"].values())))

    # -------------------------------------------------------- authentication

    def _token_ok(self, request: Request) -> bool:
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        return kind == "Bearer" and token not in self.revoked and (token == PLAIN_TOKEN or token in self.issued)

    def _jwt_ok(self, request: Request) -> bool:
        """The App's JWT: signed with the App's key (RS256), iss the app id, iat now-60 and exp now+9min."""
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind != "Bearer" or self.public_key is None:
            return False
        try:
            claims = jwt.decode(
                token, self.public_key, algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
            )  # checked on our clock below
        except jwt.InvalidTokenError:
            return False
        self.jwt_claims.append(claims)
        now = int(self.clock())
        return claims == {"iss": str(APP_ID), "iat": now - 60, "exp": now + 540}

    def _refused(self) -> Answer:
        return Answer(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})

    # -------------------------------------------------------- handlers

    def _create_check_run(self, request: Request) -> Answer:
        if not self._token_ok(request):
            return self._refused()
        body = request.json()
        run_id, self._next_id = self._next_id, self._next_id + 1
        self.check_runs[run_id] = {**body, "annotations": list(body.get("output", {}).get("annotations", []))}
        return Answer(201, self._check_run_answer(run_id))

    def _update_check_run(self, request: Request) -> Answer:
        if not self._token_ok(request):
            return self._refused()
        run = self.check_runs.get(int(request.match["id"]))
        if run is None:
            return Answer(404, {"message": "Not Found"})
        body = request.json()
        run["annotations"] += body.get("output", {}).get("annotations", [])  # GitHub appends them
        run.update(dict(body.items()))
        return Answer(200, self._check_run_answer(int(request.match["id"])))

    def _list_check_runs(self, request: Request) -> Answer:
        """GET /repos/{owner}/{repo}/commits/{ref}/check-runs (ref a sha here), `check_name` filtering, newest first:
        {"total_count", "check_runs"} as GitHub's "List check runs for a Git reference" answers."""
        if not self._token_ok(request):
            return self._refused()
        name = request.query.get("check_name", [None])[-1]
        found = [
            self._check_run_answer(run_id)
            for run_id, run in sorted(self.check_runs.items(), reverse=True)
            if run.get("head_sha") == request.match["ref"] and name in (None, run.get("name"))
        ]
        return Answer(200, {"total_count": len(found), "check_runs": found})

    def _check_run_answer(self, run_id: int) -> dict:
        run = self.check_runs[run_id]
        answer = self._example("create-check-run")
        answer.update({k: run[k] for k in ("name", "head_sha", "status", "external_id", "details_url") if k in run})
        answer.update(id=run_id, conclusion=run.get("conclusion"))
        return answer

    def _create_status(self, request: Request) -> Answer:
        if not self._token_ok(request):
            return self._refused()
        self.statuses.append({**request.json(), "sha": request.match["sha"]})
        return Answer(201, {**self._example("create-commit-status"), **request.json()})

    def _access_token(self, request: Request) -> Answer:
        if not self._jwt_ok(request):
            return Answer(401, {"message": "A JSON web token could not be decoded"})
        token = f"ghs_installation{int(request.match['id'])}x{len(self.issued) + 1:03d}"
        self.issued.append(token)
        expires = datetime.fromtimestamp(self.clock() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Answer(201, {**self._example("create-installation-access-token"), "token": token, "expires_at": expires})

    def _installation(self, request: Request) -> Answer:
        if not self._jwt_ok(request):
            return Answer(401, {"message": "A JSON web token could not be decoded"})
        if f"{request.match['owner']}/{request.match['repo']}" != REPO:
            return Answer(404, {"message": "Not Found"})
        return Answer(
            200,
            {
                "id": INSTALLATION,
                "app_id": APP_ID,
                "target_type": "Organization",
                "account": {"login": "lablup", "id": 1},
            },
        )

    # -------------------------------------------------------- what the tests read

    def bodies(self, method: str, pattern: str) -> list[dict]:
        return [r.json() for r in self.server.calls(method, pattern)]

    def tokens_used(self) -> list[str]:
        return [
            r.headers["authorization"].partition(" ")[2]
            for r in self.server.requests
            if r.path.startswith("/repos/") and not r.path.endswith("/installation")
        ]


@pytest.fixture(scope="session")
def github_app_key():
    """A GitHub App's key pair: the private key as the PEM text GitHub hands out, and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


@pytest.fixture
def github_rest(contracts) -> dict:
    return json.loads((contracts / "github-rest.json").read_text())


@pytest.fixture
def github(github_rest, github_app_key):
    fake = FakeGitHub(github_rest, Clock(), public_key=github_app_key[1])
    with fake.server.serving():
        yield fake


def token_reporter(fake: FakeGitHub, **config) -> GitHubReporter:
    settings = dict(token=PLAIN_TOKEN, api_url=fake.url)
    return GitHubReporter(GitHubReporterConfig(**{**settings, **config}), repositories=[REPO], clock=fake.clock)


def app_reporter(fake: FakeGitHub, pem: str) -> GitHubReporter:
    config = GitHubReporterConfig(app_id=APP_ID, private_key=pem, api_url=fake.url)
    return GitHubReporter(config, repositories=[REPO], clock=fake.clock)


async def send_all(
    reporter: GitHubReporter, *reports: JobReport, state: dict | None = None, clock: Clock | None = None
) -> dict:
    """Send each report in turn, as the deliverer does (a minute apart), keeping the state; closes the reporter."""
    state = dict(state or {})
    try:
        for report in reports:
            state = await reporter.send(report, state)
            if clock:
                clock.advance(60)
    finally:
        await reporter.aclose()
    return state


def refused(reporter: GitHubReporter, *reports: JobReport, state: dict | None = None) -> BaseException:
    """The exception the last report's send raises (the ones before it must succeed)."""

    async def scenario():
        progress = dict(state or {})
        try:
            for report in reports[:-1]:
                progress = await reporter.send(report, progress)
            with pytest.raises((RetryLater, GiveUp)) as caught:
                await reporter.send(reports[-1], progress)
            return caught.value
        finally:
            await reporter.aclose()

    error = asyncio.run(scenario())
    assert PLAIN_TOKEN not in str(error) and "ghs_" not in str(error)
    return error


# ---------------------------------------------------------------- job reports, as report.py builds them

SUMMARY = """\
| task | state | duration | attempts |
|---|---|---|---|
| prepare | succeeded | 1m 12s | 1 |
| train | {train} | {duration} | 1 |
| evaluate | {after} | | 0 |
| publish | {after} | | 0 |

```mermaid
flowchart LR
  prepare --> train --> evaluate --> publish
```

Commit `6dcb09b5b578`, spec `sha256:1f2e3d`.
"""
FAILED_LOG = """\
### train (exit 3)
```
Epoch 3/10: loss=0.412
Traceback (most recent call last):
  File "/pipeline/code/train.py", line 88, in <module>
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB
```
"""
STAGES = {
    "queued": dict(
        status="pending",
        conclusion=None,
        started=False,
        title="4 tasks waiting to start",
        summary=SUMMARY.format(train="pending", duration="", after="pending"),
    ),
    "running": dict(
        status="running",
        conclusion=None,
        started=True,
        title="prepare succeeded; train running",
        summary=SUMMARY.format(train="running", duration="", after="pending"),
    ),
    "succeeded": dict(
        status="succeeded",
        conclusion="success",
        started=True,
        title="4 of 4 tasks succeeded in 14m 2s",
        summary=SUMMARY.format(train="succeeded", duration="11m 40s", after="succeeded"),
    ),
    "failed": dict(
        status="failed",
        conclusion="failure",
        started=True,
        title="1 of 4 tasks succeeded; train failed (exit 3)",
        text=FAILED_LOG,
        failed_logs={"train": FAILED_LOG},
        summary=SUMMARY.format(train="failed", duration="3m 5s", after="cancelled"),
    ),
    "cancelled": dict(
        status="cancelled",
        conclusion="cancelled",
        started=True,
        title="cancelled by octocat",
        summary=SUMMARY.format(train="cancelled", duration="", after="cancelled"),
    ),
    "invalid": dict(
        status="invalid",
        conclusion="failure",
        started=False,
        title="pipelines/train-mnist.yaml has 120 problems",
        summary="The pipeline file is invalid.",
        annotations=tuple(
            {
                "path": "pipelines/train-mnist.yaml",
                "line": 10 + i,
                "column": 5,
                "level": "error",
                "message": f"unknown key 'comand{i}'; did you mean 'command'?",
                "title": "FT101",
            }
            for i in range(120)
        ),
    ),
    "action_required": dict(
        job_id=f"gate:{REPO}#42@{SHA}",
        status="action_required",
        started=False,
        conclusion="action_required",
        details_url=None,
        title="waiting for a member to comment /fasttrack ok-to-test",
        summary="Pull request #42 comes from the fork octocat/mnist-pipelines.",
    ),
}


def job_report(stage: str = "queued", **changes) -> JobReport:
    fields = dict(
        job_id="j-20240921-0007",
        repository=REPO,
        pipeline="train-mnist",
        pipeline_path="pipelines/train-mnist.yaml",
        commit=SHA,
        ref="refs/heads/main",
        trigger={"event": "push", "ref": "refs/heads/main", "sender": "octocat", "installation": INSTALLATION},
        text="",
        tasks=(TaskRow("prepare", "succeeded", 72.0, 1), TaskRow("train", "running", None, 1)),
        details_url=JOB_PAGE,
        created_at=START,
    )
    if stage == "action_required":
        fields["trigger"] = {
            "event": "pull_request",
            "number": 42,
            "action": "opened",
            "fork": True,
            "installation": INSTALLATION,
        }
    return JobReport(**{**fields, **STAGES[stage], **changes})


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- a job's life: one check run


def test_a_job_is_one_check_run_created_queued_then_updated_in_place(github):
    state = asyncio.run(
        send_all(
            token_reporter(github),
            job_report("queued"),
            job_report("running"),
            job_report("failed"),
            clock=github.clock,
        )
    )

    created = github.bodies("POST", CHECK_RUNS)
    assert len(created) == 1
    assert created[0] == {
        "name": "fasttrack/train-mnist",
        "head_sha": SHA,
        "external_id": "j-20240921-0007",
        "status": "queued",
        "details_url": JOB_PAGE,
        "output": {"title": "4 tasks waiting to start", "summary": STAGES["queued"]["summary"]},
    }
    running, failed = github.bodies("PATCH", CHECK_RUN)
    assert running["status"] == "in_progress" and running["started_at"] == iso(START + 60)
    assert "conclusion" not in running and "actions" not in running and "head_sha" not in running
    assert failed["status"] == "completed" and failed["conclusion"] == "failure"
    assert failed["started_at"] == iso(START + 60), "the start shown first stays"
    assert failed["completed_at"] == iso(START + 120)
    assert failed["output"] == {
        "title": "1 of 4 tasks succeeded; train failed (exit 3)",
        "summary": STAGES["failed"]["summary"],
        "text": FAILED_LOG,
    }
    assert failed["actions"] == [
        {"label": "Re-run failed tasks", "identifier": "rerun-failed", "description": "Run the failed tasks again"}
    ]
    ((run_id, run),) = github.check_runs.items()
    assert state["check_run_id"] == run_id and state["mode"] == "checks" and state["annotations_sent"] == 0
    assert run["status"] == "completed" and run["external_id"] == "j-20240921-0007"


def test_the_rerun_button_is_the_one_the_daemon_answers():
    assert RERUN_FAILED["identifier"] == WEBHOOK_RERUN_IDENTIFIER
    assert len(RERUN_FAILED["label"]) <= 20 and len(RERUN_FAILED["identifier"]) <= 20
    assert len(RERUN_FAILED["description"]) <= 40


def test_a_job_that_succeeds_ends_green_without_a_button(github):
    asyncio.run(send_all(token_reporter(github), job_report("running"), job_report("succeeded")))
    (created,) = github.bodies("POST", CHECK_RUNS)
    assert created["status"] == "in_progress" and ISO.match(created["started_at"])
    (done,) = github.bodies("PATCH", CHECK_RUN)
    assert done["conclusion"] == "success" and "actions" not in done and "text" not in done["output"]


def test_every_request_speaks_the_pinned_api_version_with_a_bearer_token(github):
    asyncio.run(send_all(token_reporter(github), job_report("queued"), job_report("succeeded")))
    for request in github.server.requests:
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["authorization"] == f"Bearer {PLAIN_TOKEN}"
        assert request.headers["user-agent"].startswith("fasttrack-gitops/")


def test_sending_the_same_report_again_makes_no_request(github):
    async def scenario():
        reporter = token_reporter(github)
        state = await reporter.send(job_report("running"), {})
        before = len(github.server.requests)
        github.clock.advance(600)  # time alone changes nothing a person sees
        again = await reporter.send(job_report("running"), state)
        await reporter.aclose()
        return state, again, before

    state, again, before = asyncio.run(scenario())
    assert len(github.server.requests) == before == 1
    assert again == state


# ---------------------------------------------------------------- annotations


def test_120_annotations_go_in_requests_of_50_50_and_20_and_never_again(github):
    async def scenario():
        reporter = token_reporter(github)
        state = await reporter.send(job_report("invalid"), {})
        first = len(github.server.requests)
        state = await reporter.send(job_report("invalid"), state)
        same = len(github.server.requests)
        state = await reporter.send(job_report("invalid", title="pipelines/train-mnist.yaml: 120 problems"), state)
        await reporter.aclose()
        return state, first, same

    state, first, same = asyncio.run(scenario())
    assert first == same == 3
    (created,) = github.bodies("POST", CHECK_RUNS)
    patches = github.bodies("PATCH", CHECK_RUN)
    assert [len(b["output"].get("annotations", [])) for b in [created] + patches] == [50, 50, 20, 0]
    assert created["conclusion"] == "failure" and created["status"] == "completed"
    assert patches[-1]["output"]["title"] == "pipelines/train-mnist.yaml: 120 problems"
    (run,) = github.check_runs.values()
    assert [a["start_line"] for a in run["annotations"]] == list(range(10, 130)), "each once, in order"
    assert state["annotations_sent"] == 120


def test_a_send_that_fails_half_way_hands_back_its_progress_and_resumes_there(github):
    github.server.fail_next("PATCH", CHECK_RUN, Answer(502, {"message": "Server Error"}))
    error = refused(token_reporter(github), job_report("invalid"))
    assert isinstance(error, RetryLater) and error.after is None
    assert error.state["annotations_sent"] == 50 and "last" not in error.state

    state = asyncio.run(send_all(token_reporter(github), job_report("invalid"), state=error.state))
    assert len(github.server.calls("POST", CHECK_RUNS)) == 1, "no second check run"
    (run,) = github.check_runs.values()
    assert len(run["annotations"]) == 120 and state["annotations_sent"] == 120


def test_a_diagnostic_becomes_an_annotation_in_githubs_shape():
    one_line_problem = {
        "path": "pipelines/train-mnist.yaml",
        "line": 7,
        "column": 5,
        "level": "error",
        "message": "unknown key 'comand'; did you mean 'command'?",
        "title": "FT101",
    }
    assert annotation(one_line_problem, "ignored.yaml") == {
        "path": "pipelines/train-mnist.yaml",
        "start_line": 7,
        "end_line": 7,
        "start_column": 5,
        "end_column": 5,
        "annotation_level": "failure",
        "message": "unknown key 'comand'; did you mean 'command'?",
        "title": "FT101",
    }

    spans_lines = {"line": 3, "end_line": 9, "column": 1, "end_column": 4, "level": "warning", "message": "m"}
    shaped = annotation(spans_lines, "pipelines/x.yaml")
    assert shaped["path"] == "pipelines/x.yaml" and (shaped["start_line"], shaped["end_line"]) == (3, 9)
    assert "start_column" not in shaped and "end_column" not in shaped, "columns only within one line"
    assert shaped["annotation_level"] == "warning"

    nowhere = annotation({"level": "info", "message": "", "title": "x" * 300}, "p.yaml")
    assert nowhere["start_line"] == nowhere["end_line"] == 1 and nowhere["annotation_level"] == "notice"
    assert nowhere["message"] and len(nowhere["title"]) <= 255


# ---------------------------------------------------------------- what the check says


def test_a_summary_of_65535_characters_is_sent_whole_and_a_longer_one_is_cut(github):
    exact = "s" * 65_535
    asyncio.run(send_all(token_reporter(github), job_report("succeeded", summary=exact)))
    assert github.bodies("POST", CHECK_RUNS)[0]["output"]["summary"] == exact

    for long in ("x" * 70_000, "日本語\n" * 30_000, "```\n" + "log line\n" * 10_000):
        cut = clip_markdown(long)
        assert len(cut.encode()) <= 65_535 and cut.endswith(
            "*(cut: longer than GitHub shows; the rest is on the job's page)*"
        )
        assert cut.count("```") % 2 == 0, "an open code fence is closed"


def test_the_title_is_one_line_that_github_shows_whole():
    report = job_report("failed", title="train failed (exit 3)\nsecond line")
    assert check_run(report)["output"]["title"] == "train failed (exit 3)"
    assert len(one_line("t" * 5000, 1000)) == 1000
    assert check_run(job_report("queued", title=""))["output"]["title"] == "train-mnist: pending"
    assert check_run(job_report("queued", summary=" "))["output"]["summary"] == "4 tasks waiting to start"


def test_a_held_fork_pull_request_asks_for_action_on_the_pull_request(github):
    asyncio.run(send_all(token_reporter(github), job_report("action_required")))
    (created,) = github.bodies("POST", CHECK_RUNS)
    assert created["status"] == "completed" and created["conclusion"] == "action_required"
    assert created["external_id"] == f"gate:{REPO}#42@{SHA}"
    assert created["details_url"] == f"{github.url}/{REPO}/pull/42", "GitHub needs a page for the action"
    assert "actions" not in created
    with_page = check_run(job_report("action_required", details_url=JOB_PAGE), details_url=JOB_PAGE)
    assert with_page["details_url"] == JOB_PAGE


def test_the_web_address_follows_the_api_address():
    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com"


# ---------------------------------------------------------------- a GitHub App


def test_an_app_signs_a_jwt_buys_one_installation_token_and_reuses_it(github, github_app_key):
    asyncio.run(
        send_all(
            app_reporter(github, github_app_key[0]),
            job_report("queued"),
            job_report("running"),
            job_report("succeeded"),
            clock=github.clock,
        )
    )
    (exchange,) = github.server.calls("POST", ACCESS_TOKENS)
    assert exchange.path == f"/app/installations/{INSTALLATION}/access_tokens"
    assert github.jwt_claims == [{"iss": str(APP_ID), "iat": int(START) - 60, "exp": int(START) + 540}]
    assert github.tokens_used() == [github.issued[0]] * 3
    assert not github.server.calls("GET", INSTALLATION_LOOKUP), "the webhook named the installation"


def test_an_app_token_is_renewed_five_minutes_before_it_expires(github, github_app_key):
    async def scenario():
        reporter = app_reporter(github, github_app_key[0])
        state = await reporter.send(job_report("queued"), {})
        github.clock.advance(3600 - 301)
        state = await reporter.send(job_report("running"), state)
        github.clock.advance(2)
        await reporter.send(job_report("succeeded"), state)
        await reporter.aclose()

    asyncio.run(scenario())
    assert len(github.issued) == 2
    assert github.tokens_used() == [github.issued[0], github.issued[0], github.issued[1]]
    assert github.jwt_claims[1]["iat"] == int(START + 3600 - 299) - 60


def test_a_refused_app_token_is_renewed_once(github, github_app_key):
    async def scenario():
        reporter = app_reporter(github, github_app_key[0])
        state = await reporter.send(job_report("queued"), {})
        github.revoked.add(github.issued[0])
        state = await reporter.send(job_report("running"), state)
        await reporter.aclose()
        return state

    state = asyncio.run(scenario())
    assert len(github.issued) == 2
    assert github.tokens_used() == [github.issued[0], github.issued[0], github.issued[1]]
    assert github.check_runs[state["check_run_id"]]["status"] == "in_progress"


def test_a_token_refused_twice_is_given_up(github, github_app_key):
    github.server.fail_next("PATCH", CHECK_RUN, Answer(401, {"message": "Bad credentials"}), times=2)
    error = refused(app_reporter(github, github_app_key[0]), job_report("queued"), job_report("running"))
    assert isinstance(error, GiveUp) and "the GitHub token was refused" in str(error)
    assert len(github.issued) == 2 and len(github.server.calls("PATCH", CHECK_RUN)) == 2


def test_a_plain_token_refused_is_given_up_at_once(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(401, {"message": "Bad credentials"}))
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, GiveUp) and "the GitHub token was refused" in str(error)
    assert len(github.server.requests) == 1


def test_the_installation_is_looked_up_once_when_the_webhook_did_not_name_it(github, github_app_key):
    trigger = {"event": "push", "ref": "refs/heads/main", "sender": "octocat"}  # from a poll, not a webhook
    asyncio.run(
        send_all(
            app_reporter(github, github_app_key[0]),
            job_report("queued", trigger=trigger),
            job_report("running", trigger=trigger),
        )
    )
    (lookup,) = github.server.calls("GET", INSTALLATION_LOOKUP)
    assert lookup.path == f"/repos/{REPO}/installation" and lookup.body == b""
    (exchange,) = github.server.calls("POST", ACCESS_TOKENS)
    assert exchange.path == f"/app/installations/{INSTALLATION}/access_tokens"


def test_an_app_that_is_not_installed_is_given_up(github, github_app_key):
    trigger = {"event": "push"}
    config = GitHubReporterConfig(app_id=APP_ID, private_key=github_app_key[0], api_url=github.url)
    reporter = GitHubReporter(config, repositories=["lablup/elsewhere"], clock=github.clock)
    error = refused(reporter, job_report("queued", repository="lablup/elsewhere", trigger=trigger))
    assert isinstance(error, GiveUp) and "not installed on lablup/elsewhere" in str(error)


def test_a_private_key_that_is_no_key_is_given_up_without_showing_it(github):
    pem = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n"
    error = refused(app_reporter(github, pem), job_report("queued"))
    assert isinstance(error, GiveUp) and "private key" in str(error)
    assert "c2VjcmV0" not in str(error) and not github.server.requests


def test_the_installation_comes_from_the_trigger_record_in_either_shape():
    assert installation_of({"installation": 77}) == 77
    assert installation_of({"installation": {"id": 77}}) == 77
    assert installation_of({"installation": "77"}) == 77
    assert installation_of({}) is None and installation_of({"installation": True}) is None


# ---------------------------------------------------------------- commit statuses when checks are refused


def test_a_token_that_cannot_write_checks_reports_commit_statuses(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(403, {"message": "Resource not accessible by integration"}))
    state = asyncio.run(
        send_all(token_reporter(github), job_report("queued"), job_report("running"), job_report("failed"))
    )
    assert len(github.server.calls("POST", CHECK_RUNS)) == 1, "asked once, then statuses only"
    assert [s["state"] for s in github.statuses] == ["pending", "pending", "failure"]
    assert github.statuses[-1] == {
        "state": "failure",
        "context": "fasttrack/train-mnist",
        "sha": SHA,
        "description": "1 of 4 tasks succeeded; train failed (exit 3)",
        "target_url": JOB_PAGE,
    }
    assert state["mode"] == "statuses" and "check_run_id" not in state


def test_the_next_job_of_that_repository_goes_straight_to_statuses(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(404, {"message": "Not Found"}))

    async def scenario():
        reporter = token_reporter(github)
        await reporter.send(job_report("queued"), {})
        await reporter.send(job_report("queued", job_id="j-20240921-0008"), {})
        await reporter.aclose()

    asyncio.run(scenario())
    assert len(github.server.calls("POST", CHECK_RUNS)) == 1 and len(github.statuses) == 2


@pytest.mark.parametrize(
    ("conclusion", "state"),
    [
        (None, "pending"),
        ("success", "success"),
        ("neutral", "success"),
        ("failure", "failure"),
        ("timed_out", "failure"),
        ("cancelled", "error"),
        ("action_required", "pending"),
    ],
)
def test_a_commit_status_says_what_github_users_expect(conclusion, state):
    report = job_report("running", conclusion=conclusion, title="x" * 200)
    body = commit_status(report, details_url=JOB_PAGE)
    assert body["state"] == state and body["context"] == "fasttrack/train-mnist"
    assert len(body["description"]) <= 140 and body["target_url"] == JOB_PAGE


# ---------------------------------------------------------------- GitHub's refusals


def test_a_deleted_check_run_is_created_again(github):
    async def scenario():
        reporter = token_reporter(github)
        state = await reporter.send(job_report("queued"), {})
        github.check_runs.clear()  # someone deleted it (or its suite)
        state = await reporter.send(job_report("running"), state)
        await reporter.aclose()
        return state

    state = asyncio.run(scenario())
    _, second = github.bodies("POST", CHECK_RUNS)
    assert second["status"] == "in_progress" and second["head_sha"] == SHA
    assert list(github.check_runs) == [state["check_run_id"]]


def test_429_with_retry_after_is_retried_when_github_says(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(429, {"message": "slow down"}, {"Retry-After": "30"}))
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, RetryLater) and error.after == 30


def test_an_exhausted_rate_limit_waits_for_its_reset_and_is_no_reason_to_fall_back(github):
    reset = int(START) + 120
    github.server.fail_next(
        "POST",
        CHECK_RUNS,
        Answer(
            403,
            {"message": "API rate limit exceeded for installation ID 77."},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        ),
    )
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, RetryLater) and error.after == pytest.approx(120)
    assert not github.statuses


def test_a_server_error_is_retried_with_backoff(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(500, {"message": "Server Error"}))
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, RetryLater) and error.after is None


def test_a_check_run_whose_creation_github_answered_502_after_making_it_is_updated_not_made_again(github):
    """Found by the chaos campaign: a gateway's 502 (or a timeout) may come after GitHub made the check run; the
    next send finds it by the job id (external_id) instead of creating a second one."""
    bad_gateway = Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
    github.server.fail_next("POST", CHECK_RUNS, bad_gateway, handled=True)
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, RetryLater) and len(github.check_runs) == 1  # made, though the answer said otherwise

    state = asyncio.run(send_all(token_reporter(github), job_report("succeeded"), state=error.state))
    assert len(github.server.calls("POST", CHECK_RUNS)) == 1, "a second check run was created"
    ((run_id, run),) = github.check_runs.items()
    assert state["check_run_id"] == run_id and (run["status"], run["conclusion"]) == ("completed", "success")


def test_a_create_refused_for_sure_is_not_looked_up_again(github):
    github.server.fail_next("POST", CHECK_RUNS, Answer(429, {"message": "slow down"}, {"Retry-After": "1"}))
    error = refused(token_reporter(github), job_report("queued"))
    asyncio.run(send_all(token_reporter(github), job_report("queued"), state=error.state))
    assert not github.server.calls("GET") and len(github.check_runs) == 1


def test_github_out_of_reach_is_retried_with_backoff(github):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = refused(token_reporter(github, api_url=f"http://127.0.0.1:{port}"), job_report("queued"))
    assert isinstance(error, RetryLater) and error.after is None


def test_422_is_given_up_with_githubs_words(github):
    github.server.fail_next(
        "POST",
        CHECK_RUNS,
        Answer(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "CheckRun", "field": "head_sha", "code": "invalid"}],
            },
        ),
    )
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, GiveUp)
    assert "(422): Validation Failed; CheckRun head_sha invalid" in str(error)


def test_another_refusal_is_given_up(github):
    github.server.fail_next("POST", STATUSES, Answer(404, {"message": "Not Found"}))
    github.server.fail_next("POST", CHECK_RUNS, Answer(404, {"message": "Not Found"}))
    error = refused(token_reporter(github), job_report("queued"))
    assert isinstance(error, GiveUp) and "GitHub answered 404 while setting the commit status" in str(error)


# ---------------------------------------------------------------- which jobs


def test_the_reporter_wants_jobs_of_its_github_repositories(github):
    reporter = token_reporter(github)
    assert reporter.wants(job_report("queued", repository="Lablup/MNIST-pipelines"))
    assert not reporter.wants(job_report("queued", repository="lablup/other"))
    nobody = token_reporter(github, token=None)
    assert not nobody.wants(job_report("queued")), "webhooks alone need no token, but reporting does"
    asyncio.run(reporter.aclose())
    asyncio.run(nobody.aclose())
