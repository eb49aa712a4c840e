"""SECURITY.md "Where secrets live": in the GitHub Action, a local task inherits none of the step's credentials.

A simulated runner (tests/ci/conftest.py: a real repository, the runner's variables, GitHub as the contract
server) runs `fasttrack-gitops ci --mode run --executor local` for a push whose one task writes its whole
environment to a file; the step's tokens, given every way the action passes them, are not in it.
"""

from __future__ import annotations

from ci.conftest import TOKEN

DUMP = """\
version: "26.4.4"
name: dump
on: [push]
tasks:
  - name: env
    command: env > {out}
"""
CREDENTIALS = {
    "GITHUB_TOKEN": TOKEN,
    "FTG_CI_GITHUB_TOKEN": TOKEN,
    "FTG_API_TOKEN": "api-token-of-the-step-71c0",
    "FTG_CI_SLACK_BOT_TOKEN": "xoxb-slack-token-of-the-step-9e2a",
    "FTG_CI_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/secret-of-the-step-55d1",
    "BACKEND_ACCESS_KEY": "AKIA-access-key-of-the-step",
    "BACKEND_SECRET_KEY": "secret-key-of-the-step-0b7e",
}


def test_a_local_task_in_the_action_inherits_none_of_the_steps_credentials(runner, github, tmp_path):
    dump = tmp_path / "env.txt"
    runner.write("pipelines/dump.yaml", DUMP.format(out=dump))
    before = runner.commit("dump")
    runner.write("README.md", "# changed\n")
    after = runner.commit("change")
    step = runner.step(
        "push",
        runner.push(before, after),
        "--mode",
        "run",
        "--executor",
        "local",
        sha=after,
        api_url=github.url,
        env=CREDENTIALS,
    )
    assert step.code == 0, step.out + step.err
    dumped = dump.read_text()
    assert "GITHUB_REPOSITORY=" in dumped  # the task did get the runner's other variables
    leaked = sorted(name for name, value in CREDENTIALS.items() if value in dumped)
    assert leaked == []
