"""`ci --wait false`: the step hands its pipelines to a real daemon, and says in one line when it cannot.

The daemon is a real `fasttrack-gitops serve` process (tests/daemon/
recovery_test.py's `Served`) following the step's own workspace repository,
with an API token; what it made is read back through its GET /api/jobs.
The step runs in the simulated runner of tests/ci/conftest.py. The error
paths meet a real daemon too (a wrong token, a pipeline it does not run), a
closed port, and a local HTTP server that answers text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ci.conftest import REPO, RUN_ID, Runner, Step
from daemon.conftest import free_port, write_config
from daemon.recovery_test import Served
from engine.reporters.contract_server import Answer, ContractServer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="daemon processes and local tasks run POSIX shells")

API_TOKEN = "daemon-api-token-0042"
PATIENCE = 60.0  # seconds any one wait may take before the test fails


def eventually(predicate: Callable, what: Callable[[], str], timeout: float = PATIENCE):
    """Poll until predicate() is truthy (its value); fail after timeout seconds, saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what()}")
        time.sleep(0.05)
    return value


@pytest.fixture
def daemon(tmp_path: Path, runner: Runner):
    """daemon(repo_extra=) -> a started `serve` process following the runner's workspace, with API_TOKEN."""
    made: list[Served] = []

    def start(repo_extra: str = "") -> Served:
        port = free_port()
        config = write_config(
            tmp_path,
            runner.workspace,
            name=REPO,
            listen=f"127.0.0.1:{port}",
            repo_extra="watch: false\n" + repo_extra,
            extra="api_token_env: FTG_TEST_API_TOKEN\n",
        )
        env = {**os.environ, "FTG_TEST_WEBHOOK_SECRET": "unused", "FTG_TEST_API_TOKEN": API_TOKEN, "FTG_BWRAP": "0"}
        served = Served(config, port, tmp_path / "daemon.log", env)
        made.append(served)
        return served.start()

    try:
        yield start
    finally:
        for served in made:
            served.stop()


def changed_train(runner: Runner) -> tuple[str, str]:
    """Two commits, the second changing train's task folder only: a push that selects train."""
    first = runner.standard()
    runner.write("tasks/train/msg.txt", "fitted a better model\n")
    return first, runner.commit("better model")


def submit(runner: Runner, first: str, after: str, url: str, token: str | None = API_TOKEN) -> Step:
    env = {"FTG_CI_WAIT": "false", "FTG_CI_DAEMON_URL": url}
    if token is not None:
        env["FTG_API_TOKEN"] = token
    return runner.step("push", runner.push(first, after), "--mode", "run", env=env, sha=after)


def one_error(step: Step) -> str:
    """The step's one ::error line (its message), after checking nothing else went wrong on the way."""
    assert "Traceback" not in step.out + step.err, step.out + step.err
    [error] = step.commands("error")
    message = error.removeprefix("::error title=fasttrack-gitops ci::")
    assert "\n" not in message and "%0A" not in message, error
    return message


def test_the_daemon_receives_the_pipelines_runs_them_and_a_resent_step_makes_no_second_job(runner, daemon):
    first, after = changed_train(runner)
    served = daemon()

    step = submit(runner, first, after, served.url)

    assert step.code == 0, step.out + step.err + served.log()
    assert f"::add-mask::{API_TOKEN}" in step.lines
    job_ids = step.outputs["job-ids"].split()
    assert len(job_ids) == 1 and step.outputs["conclusion"] == "submitted"
    assert f"job ids: {job_ids[0]}" in step.lines
    assert f"pipelines/train.yaml: jobs {job_ids[0]}" in step.lines
    [job] = served.jobs()
    assert job["id"] == job_ids[0]
    assert (job["pipeline"], job["commit"]) == ("train", after)
    trigger = job["trigger"]
    assert (trigger["event"], trigger["sender"], trigger["ref"]) == ("manual", "octocat", after)
    assert trigger["request_id"] == f"{RUN_ID}-train"  # one job per pipeline per run of the workflow
    ended = eventually(
        lambda: (j := served.jobs()[0])["status"] in ("succeeded", "failed", "cancelled") and j,
        lambda: f"the daemon to run the job: {served.jobs()}\n{served.log()}",
    )
    assert ended["status"] == "succeeded", served.log()

    again = submit(runner, first, after, served.url)  # the same run of the workflow, sent again

    assert again.code == 0, again.out + again.err
    assert again.outputs["job-ids"] == job_ids[0]
    assert [j["id"] for j in served.jobs()] == job_ids


def test_wait_false_without_a_daemon_url_is_a_configuration_error(runner):
    sha = runner.standard()

    step = runner.step("push", runner.push(sha, sha), "--mode", "run", "--wait", "false", sha=sha)

    assert step.code == 2
    assert one_error(step).startswith(
        "`wait: false` needs `daemon-url`: a job must be driven to its end and reported after this step exits"
    )
    assert "configuration error" in step.summary
    assert step.outputs == {}


def test_no_daemon_listening_is_one_line_and_exit_2(runner):
    first, after = changed_train(runner)
    url = f"http://127.0.0.1:{free_port()}"

    step = submit(runner, first, after, url)

    assert step.code == 2
    message = one_error(step)
    assert message.startswith(f"cannot reach the daemon at {url}: ConnectError")
    assert message.endswith("is `fasttrack-gitops serve` running there? (the daemon-url input)")
    assert "configuration error" in step.summary
    assert step.outputs == {}


@pytest.mark.parametrize(
    "token, advice",
    [
        ("not-the-daemons-token", "; $FTG_API_TOKEN is not the daemon's API token"),
        (None, "; give the daemon's API token in $FTG_API_TOKEN"),
    ],
    ids=["wrong-token", "no-token"],
)
def test_a_token_the_daemon_refuses_is_one_line_and_exit_2(runner, daemon, token, advice):
    first, after = changed_train(runner)
    served = daemon()

    step = submit(runner, first, after, served.url, token=token)

    assert step.code == 2
    message = one_error(step)
    assert message.startswith("the daemon refused to run pipelines/train.yaml of lablup/mnist-pipelines (401): ")
    assert message.endswith(advice)
    assert token is None or f"::add-mask::{token}" in step.lines
    assert step.outputs == {}
    assert served.jobs() == []


def test_a_pipeline_the_daemon_does_not_run_fails_the_step_in_one_line(runner, daemon):
    """422: the daemon's configuration runs report only, so at that commit train is no pipeline of its."""
    first, after = changed_train(runner)
    served = daemon(repo_extra='pipelines: ["pipelines/report.yaml"]\n')

    step = submit(runner, first, after, served.url)

    assert step.code == 1, step.out + step.err
    assert "Traceback" not in step.out + step.err
    [line] = [line for line in step.lines if line.startswith("pipelines/train.yaml: ")]
    assert line == (
        "pipelines/train.yaml: the daemon made no job: no valid pipeline pipelines/train.yaml at "
        f"{after} ({after[:12]}); valid pipelines there: report"
    )
    assert step.outputs["conclusion"] == "failure"
    assert step.outputs["job-ids"] == ""
    assert "the daemon made no job" in step.summary
    assert served.jobs() == []


def test_an_address_that_answers_text_is_one_line_naming_it_and_exit_2(runner):
    first, after = changed_train(runner)
    other = ContractServer()
    other.route(
        "POST", "/api/trigger", lambda request: Answer(200, b"hello from nginx\n", {"Content-Type": "text/plain"})
    )

    with other.serving():
        step = submit(runner, first, after, other.url)

    assert step.code == 2
    assert one_error(step) == (
        f"{other.url} answered 200 OK without the JSON a fasttrack-gitops daemon answers; is that the daemon's "
        "address? (the daemon-url input)"
    )
    [request] = other.requests
    assert request.json()["request_id"] == f"{RUN_ID}-train"
    assert step.outputs == {}
