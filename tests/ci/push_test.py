"""`fasttrack-gitops ci` on push events: a step of a workflow `on: push`, in a simulated runner."""

from __future__ import annotations

import os
import subprocess

import pytest
from ci.conftest import REPO, RUN_ID, TOKEN
from conftest import console_script, git

from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

RUN = ("--mode", "run", "--executor", "local")


def test_a_push_that_changes_a_pipeline_runs_it_and_reports_its_check_run(runner, github):
    first = runner.standard()
    runner.write("tasks/train/msg.txt", "fitted a better model\n")
    after = runner.commit("better model")

    step = runner.step(
        "push", runner.push(first, after), *RUN, sha=after, api_url=github.url, env={"GITHUB_TOKEN": TOKEN}
    )

    assert step.code == 0, step.out + step.err
    assert step.lines[0] == f"::add-mask::{TOKEN}"  # before anything else is printed
    # The log: one group per task as it ends, holding its log.
    out = step.out
    assert "::group::train / prepare (succeeded)\n" in out
    assert "::group::train / fit (succeeded)\n" in out
    fit = out[out.index("::group::train / fit (succeeded)") :]
    assert "fitted a better model\n" in fit[: fit.index("::endgroup::")]
    assert step.commands("error") == []
    # Only train: the push changed nothing of report's paths.
    [job_id] = step.outputs["job-ids"].split()
    assert step.outputs["conclusion"] == "success"
    assert step.outputs["summary"] == step.summary
    [check] = github.check_runs.values()
    assert (check["name"], check["head_sha"], check["status"], check["conclusion"]) == (
        "fasttrack/train",
        after,
        "completed",
        "success",
    )
    assert check["external_id"] == job_id
    assert check["details_url"] == f"https://github.com/{REPO}/actions/runs/{RUN_ID}"
    # Created queued, then in progress when its first task started, then completed.
    created = github.bodies("POST", r"/repos/[^/]+/[^/]+/check-runs")
    updates = github.bodies("PATCH", r"/repos/[^/]+/[^/]+/check-runs/\d+")
    assert [b["status"] for b in created + updates] == ["queued", "in_progress", "completed"]
    # The summary: verdict, link to the check run, the DAG coloured by state, the task table, the reasons.
    summary = step.summary
    assert summary.startswith("## FastTrack pipelines: ✅ 1 of 1 pipeline succeeded\n")
    assert f"- ✅ [`fasttrack/train`](https://github.com/{REPO}/runs/4): Succeeded: 2 tasks in" in summary
    assert "```mermaid\nflowchart LR\n" in summary
    assert "  t0 --> t1\n" in summary
    assert "  class t0 succeeded\n  class t1 succeeded\n" in summary
    assert "| `prepare` | ✅ succeeded |" in summary
    assert "| `fit` | ✅ succeeded |" in summary
    assert "| `train` | `pipelines/train.yaml` | ✅ yes | push to main changed tasks/train/msg.txt |" in summary
    assert (
        "| `report` | `pipelines/report.yaml` | ➖ no | push to main: no changed file matches on.push.paths "
        "(tasks/report/**) |"
    ) in summary


def test_validate_mode_runs_nothing_and_says_what_would_run(runner, github):
    first = runner.standard()
    runner.write("tasks/report/README", "a better report\n")
    after = runner.commit("report")

    step = runner.step(
        "push",
        runner.push(first, after),
        "--executor",
        "local",
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},
    )

    assert step.code == 0, step.out + step.err
    assert step.outputs == {"job-ids": "", "conclusion": "success", "summary": step.summary, "results-dir": ""}
    assert github.server.requests == []  # no check run: nothing ran
    assert not (runner.temp / "fasttrack-gitops").exists()
    assert "::group::" + "FastTrack: what the push to main selects" in step.out
    assert "run   pipelines/report.yaml: push to main changed tasks/report/README" in step.lines
    assert step.summary.startswith("## FastTrack pipelines: ✅ 2 pipeline files valid\n")
    assert "Validation only (`mode: validate`): `report` would run in `mode: run`." in step.summary
    assert "| pipeline | file | selected | why |" in step.summary


def test_without_history_path_filters_pass_and_the_summary_says_to_fetch_it(runner, tmp_path):
    first = runner.standard()
    runner.write("README.md", "# pipelines\n\nonly docs\n")
    after = runner.commit("docs")
    shallow = tmp_path / "shallow"  # what actions/checkout leaves by default: one commit
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{runner.workspace}", str(shallow))
    runner.workspace = shallow

    step = runner.step("push", runner.push(first, after), sha=after)

    assert step.code == 0, step.out + step.err
    reason = "push to main (changed files unknown, so the path filters were not applied)"
    assert f"| `train` | `pipelines/train.yaml` | ✅ yes | {reason} |" in step.summary
    assert "give actions/checkout `fetch-depth: 0`" in step.summary
    [warning] = step.commands("warning")
    assert warning.startswith("::warning title=fasttrack-gitops ci::the history needed to tell which files changed")


def test_a_token_that_cannot_report_is_a_warning_not_a_failure(runner, github):
    first = runner.standard()
    runner.write("pipelines/train.yaml", (runner.workspace / "pipelines/train.yaml").read_text() + "# touched\n")
    after = runner.commit("touch")

    step = runner.step(
        "push",
        runner.push(first, after),
        *RUN,
        sha=after,
        api_url=github.url,
        env={"GITHUB_TOKEN": "ghp_revokedTokenOfSomeoneWhoLeft000000"},
    )

    assert step.code == 0, step.out + step.err
    assert step.outputs["conclusion"] == "success"
    [warning] = step.commands("warning")  # once: a refused token is not asked again
    assert warning.startswith(
        "::warning title=fasttrack-gitops ci::github: could not report fasttrack/train: "
        "the GitHub token was refused (401)"
    )
    assert "ghp_revokedTokenOfSomeoneWhoLeft000000" not in step.out.replace(
        "::add-mask::ghp_revokedTokenOfSomeoneWhoLeft000000", ""
    )
    assert github.check_runs == {}
    assert f"[`fasttrack/train`](https://github.com/{REPO}/commit/{after}/checks)" in step.summary


def test_workflow_dispatch_runs_pipelines_without_on_and_those_with_manual(runner):
    runner.standard()
    runner.write(
        "pipelines/nightly.yaml",
        """\
        version: "26.4.4"
        name: nightly
        on:
          manual: {}
        tasks:
          - name: a
            command: echo nightly
        """,
    )
    runner.write(
        "pipelines/plain.yaml",
        """\
        version: "26.4.4"
        name: plain
        tasks:
          - name: a
            command: echo plain
        """,
    )
    sha = runner.commit("more pipelines")

    step = runner.step(
        "workflow_dispatch",
        {"inputs": {}, "ref": "refs/heads/main", "repository": {"full_name": REPO}, "sender": {"login": "octocat"}},
        sha=sha,
    )

    assert step.code == 0, step.out + step.err
    assert "| `nightly` | `pipelines/nightly.yaml` | ✅ yes | workflow_dispatch (`on` lists manual) |" in step.summary
    assert (
        "| `plain` | `pipelines/plain.yaml` | ✅ yes | workflow_dispatch (the pipeline has no `on`) |" in step.summary
    )
    assert "| `train` | `pipelines/train.yaml` | ➖ no | workflow_dispatch: `on` has no manual |" in step.summary


# -- not in a runner ---------------------------------------------------------------------------------


def test_outside_a_runner_it_says_which_variables_are_missing_and_prints_no_secret(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_TOKEN": "ghp_notForThisTerminal0000000",
        "GITHUB_SHA": "0" * 40,
    }
    proc = subprocess.run(
        [console_script(), "ci", "--mode", "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "error: not in a GitHub Actions step: GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, "
        "GITHUB_REPOSITORY, GITHUB_WORKSPACE, GITHUB_RUN_ID, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY "
        "are not set (the runner sets them for every step)\n"
    )


def test_running_on_backendai_without_credentials_is_a_configuration_error(runner):
    first = runner.standard()
    runner.write("tasks/train/msg.txt", "again\n")
    after = runner.commit("again")

    step = runner.step(
        "push",
        runner.push(first, after),
        "--mode",
        "run",
        sha=after,
        env={"FTG_CI_BACKEND_SECRET_KEY": "bai-secret-key-0000000000000000"},
    )

    assert step.code == 2
    assert step.lines[0] == "::add-mask::bai-secret-key-0000000000000000"
    [error] = step.commands("error")
    assert error.startswith(
        "::error title=fasttrack-gitops ci::executor backendai: BACKEND_ENDPOINT and BACKEND_ACCESS_KEY are not set"
    )
    assert "backend-endpoint" in error


def test_the_pipelines_input_limits_what_is_validated_and_selected(runner):
    first = runner.standard()
    runner.write("pipelines/wip/broken.yaml", "version: 1\nname: [\n")
    runner.write("tasks/train/msg.txt", "again\n")
    runner.write("tasks/report/README", "again\n")
    after = runner.commit("again")

    step = runner.step(
        "push",
        runner.push(first, after),
        sha=after,
        env={"FTG_CI_PIPELINES": "./pipelines/train.yaml,\n  pipelines/nothing-*.yaml\n"},
    )

    assert step.code == 0, step.out + step.err
    assert "1 pipeline file checked: 0 error(s), 0 warning(s)" in step.lines
    assert "| `train` | `pipelines/train.yaml` | ✅ yes | push to main changed tasks/train/msg.txt |" in step.summary
    assert "report" not in step.summary and "broken" not in step.summary


TUNED = """\
version: "26.4.4"
name: tuned
on: [workflow_dispatch]
params:
  - {name: lr, type: number, default: 0.1}
  - {name: note, default: none}
tasks:
  - name: fit
    command: printf '%s %s' "$PARAM_LR" "$PARAM_NOTE" > "$PIPELINE_OUTPUT_ROOT/seen.txt"
"""


def test_workflow_dispatch_inputs_named_like_parameters_and_the_params_input_reach_the_job(runner):
    runner.standard()
    runner.write("pipelines/tuned.yaml", TUNED.replace("on: [workflow_dispatch]", "on: {manual: {}}"))
    head = runner.commit("tuned")
    event = {
        "inputs": {"lr": "0.5", "environment": "staging"},
        "ref": "refs/heads/main",
        "repository": {"full_name": "acme/pipes"},
    }

    step = runner.step(
        "workflow_dispatch",
        event,
        *RUN,
        "--pipelines",
        "pipelines/tuned.yaml",
        "--state-dir",
        runner.temp / "st",
        sha=head,
        env={"FTG_CI_PARAMS": "note=from the input; $(id)\n"},
    )

    assert step.code == 0, step.out + step.err
    [job_id] = step.outputs["job-ids"].split()
    store = Store(runner.temp / "st")
    job = store.view(job_id).job
    assert job.trigger["params"] == {"lr": "0.5", "note": "from the input; $(id)"}  # `environment` is not ours
    assert [(p.name, p.value) for p in job.pipeline_model().params] == [("lr", 0.5), ("note", "from the input; $(id)")]


def test_a_params_input_the_pipeline_does_not_have_stops_the_step_before_anything_runs(runner):
    runner.standard()
    runner.write("pipelines/tuned.yaml", TUNED.replace("on: [workflow_dispatch]", "on: {manual: {}}"))
    head = runner.commit("tuned")

    step = runner.step(
        "workflow_dispatch",
        {"inputs": {}},
        *RUN,
        "--pipelines",
        "pipelines/tuned.yaml",
        sha=head,
        env={"FTG_CI_PARAMS": "epochs=3"},
    )

    assert step.code == 2, step.out + step.err
    assert (
        "::error title=fasttrack-gitops ci::pipeline 'tuned' has no parameter 'epochs'; its parameters: lr, note"
        in step.out
    )
    assert step.outputs.get("job-ids", "") == ""
