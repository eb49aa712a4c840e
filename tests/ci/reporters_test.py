"""What the step reports when GitHub has a bad moment, or is told to be left alone (`github-token: none`).

GitHub is the contract server of the reporter tests; its faults are
scripted with `fail_next`. The step's deliverer waits for real (a second or
two between tries), as it does on a runner.
"""

from __future__ import annotations

import os

import pytest
from ci.conftest import REPO, TOKEN
from engine.reporters.contract_server import Answer

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

RUN = ("--mode", "run", "--executor", "local")
CHECK_RUNS = r"/repos/[^/]+/[^/]+/check-runs"
UNAVAILABLE = Answer(503, {"message": "Service Unavailable"})


def changed_train(runner) -> tuple[str, str]:
    first = runner.standard()
    runner.write("tasks/train/msg.txt", "fitted again\n")
    return first, runner.commit("again")


def test_a_check_run_github_could_not_take_once_goes_through_on_the_next_try(runner, github):
    first, after = changed_train(runner)
    github.server.fail_next("POST", CHECK_RUNS, UNAVAILABLE, times=1)

    step = runner.step(
        "push", runner.push(first, after), *RUN, sha=after, api_url=github.url, env={"GITHUB_TOKEN": TOKEN}
    )

    assert step.code == 0, step.out + step.err
    assert step.commands("warning") == []  # it went through in the end: nothing to warn about
    [check] = github.check_runs.values()  # made once, by the try after the 503
    assert (check["name"], check["status"], check["conclusion"]) == ("fasttrack/train", "completed", "success")
    assert f"[`fasttrack/train`](https://github.com/{REPO}/runs/" in step.summary


def test_a_github_that_keeps_failing_is_given_up_after_three_tries_with_a_warning(runner, github):
    first, after = changed_train(runner)
    github.server.fail_next("POST", CHECK_RUNS, UNAVAILABLE, times=100)

    step = runner.step(
        "push", runner.push(first, after), *RUN, sha=after, api_url=github.url, env={"GITHUB_TOKEN": TOKEN}
    )

    assert step.code == 0, step.out + step.err  # the pipeline succeeded: a report is no reason to fail the step
    assert step.outputs["conclusion"] == "success"
    [warning] = step.commands("warning")
    assert warning == (
        "::warning title=fasttrack-gitops ci::github: could not report fasttrack/train: "
        f"GitHub answered 503 while creating the check run fasttrack/train on {REPO}"
    )
    assert len(github.server.calls("POST", CHECK_RUNS)) == 3
    assert github.check_runs == {}
    assert f"[`fasttrack/train`](https://github.com/{REPO}/commit/{after}/checks)" in step.summary


@pytest.mark.parametrize("none", ["none", "None", "NONE"])
def test_github_token_none_means_no_check_runs_and_nothing_masked(runner, github, none):
    first, after = changed_train(runner)

    step = runner.step(
        "push",
        runner.push(first, after),
        *RUN,
        "--github-token",
        none,
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},  # the workflow's token is there, and still not used
    )

    assert step.code == 0, step.out + step.err
    assert github.server.requests == []
    assert step.commands("warning") == []
    assert f"::add-mask::{none}" not in step.lines  # `none` is no secret: the log keeps the word
    assert f"[`fasttrack/train`](https://github.com/{REPO}/commit/{after}/checks)" in step.summary
