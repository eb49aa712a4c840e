"""`fasttrack-gitops ci` when something is wrong: a pipeline file that is not valid, a task that fails."""

from __future__ import annotations

import json
import os

import pytest
from ci.conftest import TOKEN

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

BROKEN = """\
version: "26.4.4"
name: broken
tasks:
  - name: a
    comand: echo hi
  - name: b
    dependencies: [missing]
    command: "echo b, with: a colon"
"""

CANARY = "canary-3f9a2c71d0e84b56-do-not-print"

DEPLOY = """\
version: "26.4.4"
name: deploy
tasks:
  - name: build
    command: echo built
  - name: upload
    dependencies: [build]
    environment:
      envs:
        TOKEN: "${{ secrets.UPLOAD_TOKEN }}"
    command: 'echo "uploading with $TOKEN"; echo "runner token: ${GITHUB_TOKEN:-none}"; echo "::error::injected"; echo "step 2 of 2 failed" >&2; exit 3'
  - name: announce
    dependencies: [upload]
    command: echo never
"""


def test_an_invalid_pipeline_fails_the_step_with_an_annotation_per_diagnostic(runner, github):
    first = runner.standard()
    runner.write("pipelines/broken.yaml", BROKEN)
    runner.write("tasks/train/msg.txt", "still fitting\n")
    after = runner.commit("a broken pipeline")

    step = runner.step(
        "push",
        runner.push(first, after),
        "--mode",
        "run",
        "--executor",
        "local",
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},
    )

    assert step.code == 1
    assert step.commands("error") == [
        "::error file=pipelines/broken.yaml,line=4,col=5,title=FT102::task 'a' has no 'command' (a custom task runs "
        "a shell command; write command: ...)",
        "::error file=pipelines/broken.yaml,line=5,col=5,title=FT101::unknown key 'comand' in task 'a' (did you "
        "mean 'command'?)",
        "::error file=pipelines/broken.yaml,line=7,col=20,title=FT103::task 'b' depends on unknown task 'missing'",
    ]
    assert "3 pipeline files checked: 3 error(s), 0 warning(s)" in step.lines
    # The valid pipeline the push selects still ran; the step fails for the broken file.
    assert step.outputs["conclusion"] == "invalid"
    assert [(c["name"], c["conclusion"]) for c in github.check_runs.values()] == [("fasttrack/train", "success")]
    summary = step.summary
    assert summary.startswith("## FastTrack pipelines: ❌ 3 errors in pipeline files\n")
    assert (
        "- `pipelines/broken.yaml:5:5` **error** FT101: unknown key 'comand' in task 'a' (did you mean 'command'?)"
    ) in summary
    assert "- `pipelines/broken.yaml:7:20` **error** FT103: task 'b' depends on unknown task 'missing'" in summary
    assert (
        "| `broken` | `pipelines/broken.yaml` | ❌ no | the file is not valid at this commit (see Validation) |"
        in summary
    )


def test_a_failing_task_fails_the_step_and_its_log_tail_is_shown_masked(runner, github):
    first = runner.commit("init")
    runner.write("pipelines/deploy.yaml", DEPLOY)
    after = runner.commit("deploy")

    step = runner.step(
        "push",
        runner.push(first, after),
        "--mode",
        "run",
        "--executor",
        "local",
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN, "FTG_SECRET_UPLOAD_TOKEN": CANARY},
    )

    assert step.code == 1
    assert step.outputs["conclusion"] == "failure"
    # Every secret is masked first; after that no line shows one.
    masks = [line for line in step.lines if line.startswith("::add-mask::")]
    assert sorted(masks) == sorted([f"::add-mask::{CANARY}", f"::add-mask::{TOKEN}"])
    assert step.lines[:2] == masks
    rest = "\n".join(step.lines[2:])
    assert CANARY not in rest and TOKEN not in rest
    assert "uploading with ***" in rest
    assert "runner token: none" in rest  # a local task does not inherit the step's credentials
    # A task's own `::error::` line is printed, never obeyed: it sits between stop-commands markers.
    upload = rest[rest.index("::group::deploy / upload (failed)") :]
    upload = upload[: upload.index("::endgroup::")]
    stop = upload.splitlines()[1]
    assert stop.startswith("::stop-commands::")
    token = stop.removeprefix("::stop-commands::")
    assert upload.index("::error::injected") < upload.index(f"::{token}::")
    assert "::group::deploy / announce (skipped)" in rest
    assert step.commands("error") == ["::error title=fasttrack/deploy::task upload failed: exit code 3"]
    # The summary: the failed task's log tail, masked; the graph coloured by state.
    summary = step.summary
    assert summary.startswith("## FastTrack pipelines: ❌ 0 of 1 pipeline succeeded\n")
    assert "### ❌ `upload`: exit code 3" in summary
    assert "uploading with ***\n" in summary
    assert "step 2 of 2 failed\n" in summary
    assert "  class t1 failed\n" in summary and "  class t2 skipped\n" in summary
    assert "| `upload` | ❌ failed |" in summary
    [check] = github.check_runs.values()
    assert (check["name"], check["conclusion"]) == ("fasttrack/deploy", "failure")
    assert "uploading with ***" in check["output"]["text"]
    for shown in (summary, json.dumps(step.outputs), json.dumps(github.check_runs), step.err):
        assert CANARY not in shown


def test_a_secret_the_runner_was_not_given_is_a_configuration_error(runner):
    first = runner.commit("init")
    runner.write("pipelines/deploy.yaml", DEPLOY)
    after = runner.commit("deploy")

    step = runner.step("push", runner.push(first, after), "--mode", "run", "--executor", "local", sha=after)

    assert step.code == 2
    [error] = step.commands("error")
    assert error.startswith(
        "::error title=fasttrack-gitops ci::pipeline 'deploy' uses secret UPLOAD_TOKEN, not "
        "provided; set FTG_SECRET_UPLOAD_TOKEN=..."
    )


def test_slack_inputs_post_the_failure_even_when_the_pipeline_says_nothing_of_slack(runner, contracts):
    from engine.reporters.slack_test import FakeSlack

    first = runner.commit("init")
    runner.write("pipelines/deploy.yaml", DEPLOY)
    after = runner.commit("deploy")
    slack = FakeSlack(contracts)
    with slack.server.serving():
        step = runner.step(
            "push",
            runner.push(first, after),
            "--mode",
            "run",
            "--executor",
            "local",
            sha=after,
            env={"FTG_CI_SLACK_WEBHOOK_URL": slack.webhook_url, "FTG_SECRET_UPLOAD_TOKEN": CANARY},
        )

    assert step.code == 1
    assert step.commands("warning") == []
    [post] = slack.webhook_posts  # notify.slack's default: on failure, once, at the end
    assert "deploy" in json.dumps(post)
    assert CANARY not in json.dumps(post)
    assert slack.webhook_url not in step.out.replace(f"::add-mask::{slack.webhook_url}", "")


def test_a_cancelled_workflow_run_cancels_the_jobs_and_their_checks(runner, github):
    import signal
    import subprocess

    from conftest import console_script

    first = runner.commit("init")
    runner.write(
        "pipelines/slow.yaml",
        """\
        version: "26.4.4"
        name: slow
        tasks:
          - name: wait
            command: echo waiting; sleep 60
        """,
    )
    after = runner.commit("slow")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(runner.root),
        "GITHUB_TOKEN": TOKEN,
        **runner.env("push", runner.push(first, after), sha=after, api_url=github.url),
    }
    proc = subprocess.Popen(
        [console_script(), "ci", "--mode", "run", "--executor", "local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        for line in proc.stdout:  # the runner cancels a run with SIGINT, then SIGTERM
            seen.append(line)
            if line.startswith("slow / wait: running"):
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode == 1, err
    assert "cancelling the jobs: the workflow run was cancelled\n" in out
    assert "::group::slow / wait (cancelled)\n" in out
    assert runner.output.read_text().startswith("job-ids=")
    [check] = github.check_runs.values()
    assert (check["name"], check["status"], check["conclusion"]) == ("fasttrack/slow", "completed", "cancelled")
