"""`fasttrack-gitops ci` on pull requests: the merge commit runs, the check goes on the pull request's head."""

from __future__ import annotations

import os

import pytest
from ci.conftest import TOKEN
from conftest import git

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


def open_pull_request(runner, change: dict[str, str]) -> tuple[str, str, str]:
    """A branch `feature` with `change`, main moved on meanwhile, and the merge commit GitHub makes for the
    pull request (refs/pull/N/merge) checked out as actions/checkout does: (base, head, merge)."""
    runner.standard()
    git(runner.workspace, "checkout", "-q", "-b", "feature")
    for path, text in change.items():
        runner.write(path, text)
    head = runner.commit("the pull request's change")
    git(runner.workspace, "checkout", "-q", "main")
    runner.write("README.md", "# pipelines\n\nmain moved on\n")  # not the pull request's change
    base = runner.commit("meanwhile on main")
    git(runner.workspace, "checkout", "-q", "--detach", base)
    git(runner.workspace, "merge", "-q", "--no-ff", "-m", "Merge feature into main", "feature")
    return base, head, runner.head()


def test_a_pull_request_that_touches_a_pipelines_paths_runs_it_on_the_merge_and_checks_the_head(runner, github):
    base, head, merge = open_pull_request(runner, {"tasks/train/msg.txt": "fitted on the branch\n"})

    step = runner.step(
        "pull_request",
        runner.pull_request(number=7, base_sha=base, head_sha=head, head_ref="feature"),
        "--mode",
        "run",
        "--executor",
        "local",
        sha=merge,
        ref="refs/pull/7/merge",
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},
    )

    assert step.code == 0, step.out + step.err
    assert step.outputs["conclusion"] == "success"
    [check] = github.check_runs.values()
    assert (check["name"], check["head_sha"], check["conclusion"]) == ("fasttrack/train", head, "success")
    assert "fitted on the branch\n" in step.out  # the merge commit's files ran
    summary = step.summary
    assert f"pull request #7 into main (synchronize) at `{merge[:12]}`" in summary
    # Only the pull request's own change counts, not what main did meanwhile.
    assert (
        "| `train` | `pipelines/train.yaml` | ✅ yes | pull request #7 into main (synchronize) changed "
        "tasks/train/msg.txt |"
    ) in summary
    assert (
        "| `report` | `pipelines/report.yaml` | ➖ no | pull request #7 into main (synchronize): `on` has no "
        "pull_request |"
    ) in summary


def test_a_pull_request_that_touches_no_pipeline_runs_nothing_and_says_so(runner, github):
    base, head, merge = open_pull_request(runner, {"docs/guide.md": "how to\n"})

    step = runner.step(
        "pull_request",
        runner.pull_request(number=8, base_sha=base, head_sha=head, head_ref="feature", action="opened"),
        "--mode",
        "run",
        "--executor",
        "local",
        sha=merge,
        ref="refs/pull/8/merge",
        api_url=github.url,
        env={"GITHUB_TOKEN": TOKEN},
    )

    assert step.code == 0, step.out + step.err
    assert step.outputs == {"job-ids": "", "conclusion": "skipped", "summary": step.summary, "results-dir": ""}
    assert github.server.requests == []
    assert step.summary.startswith("## FastTrack pipelines: ⏭️ nothing selected\n")
    assert "No pipeline was selected by this pull request #8 into main (opened), so nothing ran." in step.summary
    assert (
        "| `train` | `pipelines/train.yaml` | ➖ no | pull request #8 into main (opened): no changed file "
        "matches on.pull_request.paths (pipelines/train.yaml, tasks/train/**) |"
    ) in step.summary
    assert "::group::" + "train /" not in step.out
