"""A simulated GitHub Actions runner for `fasttrack-gitops ci`.

What a workflow step sees, made real: a git repository with real commits
as GITHUB_WORKSPACE (what actions/checkout leaves), the GITHUB_* variables
as the runner sets them, the event payload file built from GitHub's own
example payloads (tests/data/contracts/github-webhooks) with this
repository's refs and commits, the outputs and step summary files, and
GitHub's REST API played by the contract server of the reporter tests
(every request checked against tests/data/contracts/github-rest.json).
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import git
from engine.reporters.github_test import PLAIN_TOKEN, Clock, FakeGitHub

from fasttrack_gitops.cli import main

REPO = "lablup/mnist-pipelines"
RUN_ID = "8123456789"

TRAIN = """\
version: "26.4.4"
name: train
on:
  push:
    branches: [main]
    paths: ["pipelines/train.yaml", "tasks/train/**"]
  pull_request:
    paths: ["pipelines/train.yaml", "tasks/train/**"]
tasks:
  - name: prepare
    command: echo preparing the data
  - name: fit
    dependencies: [prepare]
    code: tasks/train
    command: cat msg.txt
"""

REPORT = """\
version: "26.4.4"
name: report
on:
  push:
    branches: [main]
    paths: ["tasks/report/**"]
tasks:
  - name: render
    code: tasks/report
    command: echo rendering
"""


@dataclass
class Step:
    """What one run of the step left: its exit code, its log, its outputs and its summary."""

    code: int
    out: str
    err: str
    outputs: dict[str, str]
    summary: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def obeyed(self) -> list[str]:
        """The workflow command lines the runner acts on: none between `::stop-commands::T` and `::T::`."""
        obeyed, stopped = [], None
        for line in self.lines:
            if stopped is not None:
                if line == f"::{stopped}::":
                    stopped = None
            elif line.startswith("::stop-commands::"):
                stopped = line.removeprefix("::stop-commands::")
            elif line.startswith("::"):
                obeyed.append(line)
        assert stopped is None, "a stop-commands block was never closed"
        return obeyed

    def commands(self, name: str) -> list[str]:
        return [line for line in self.obeyed() if line.startswith((f"::{name} ", f"::{name}::"))]


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        heredoc = re.fullmatch(r"([A-Za-z0-9_-]+)<<(.+)", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, i)
            outputs[name] = "\n".join(lines[i:end])
            i = end + 1
        else:
            name, sep, value = line.partition("=")
            assert sep, f"not an output line: {line!r}"
            outputs[name] = value
    return outputs


class Runner:
    """A workspace with history, and a way to run the step in it for one event."""

    def __init__(self, root: Path, monkeypatch, capsys, webhooks: Path):
        self.root = root
        self.workspace = root / "workspace"
        self.workspace.mkdir()
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.webhooks = webhooks
        self.runs = 0
        git(self.workspace, "init", "-q", "-b", "main")

    # -- the repository

    def write(self, relpath: str, text: str) -> None:
        path = self.workspace / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")

    def commit(self, message: str = "change") -> str:
        git(self.workspace, "add", "-A")
        git(self.workspace, "commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.workspace, "rev-parse", "HEAD").strip()

    def standard(self) -> str:
        """Two pipelines (train, report) with their task folders, committed; the commit."""
        self.write("pipelines/train.yaml", TRAIN)
        self.write("pipelines/report.yaml", REPORT)
        self.write("tasks/train/msg.txt", "fitted the model\n")
        self.write("tasks/report/README", "report task\n")
        self.write("README.md", "# pipelines\n")
        return self.commit("pipelines")

    # -- events, from GitHub's example payloads

    def payload(self, name: str) -> dict:
        return copy.deepcopy(json.loads((self.webhooks / name).read_text()))

    def push(self, before: str, after: str, ref: str = "refs/heads/main") -> dict:
        event = self.payload("push.payload.json")
        event.update(
            ref=ref,
            before=before,
            after=after,
            created=False,
            deleted=False,
            forced=False,
            base_ref=None,
            compare=f"https://github.com/{REPO}/compare/{before[:12]}...{after[:12]}",
        )
        event["head_commit"] = {**(event.get("head_commit") or {}), "id": after}  # the example deletes a tag
        event["repository"].update(full_name=REPO, name=REPO.split("/")[1], default_branch="main", master_branch="main")
        return event

    def pull_request(
        self,
        *,
        number: int,
        base_sha: str,
        head_sha: str,
        head_ref: str,
        action: str = "synchronize",
        base_ref: str = "main",
    ) -> dict:
        event = self.payload("pull_request.synchronize.payload.json")
        event.update(action=action, number=number)
        pr = event["pull_request"]
        pr["number"] = number
        pr["head"].update(sha=head_sha, ref=head_ref)
        pr["head"]["repo"]["full_name"] = REPO
        pr["base"].update(sha=base_sha, ref=base_ref)
        pr["base"]["repo"]["full_name"] = REPO
        event["repository"]["full_name"] = REPO
        return event

    # -- the step

    def env(
        self,
        event_name: str,
        payload: dict,
        *,
        sha: str,
        ref: str = "refs/heads/main",
        api_url: str = "https://api.github.com",
    ):
        """The variables the runner sets for a step (and nothing of the developer's own environment)."""
        self.runs += 1
        event_path = self.temp / f"event-{self.runs}.json"
        event_path.write_text(json.dumps(payload))
        self.output = self.temp / f"output-{self.runs}"
        self.summary = self.temp / f"summary-{self.runs}"
        for path in (self.output, self.summary):
            path.write_text("")
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": sha,
            "GITHUB_REF": ref,
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_API_URL": api_url,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": RUN_ID,
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "RUNNER_TEMP": str(self.temp),
        }

    def step(
        self,
        event_name: str,
        payload: dict,
        *args: str,
        sha: str,
        ref: str = "refs/heads/main",
        api_url: str = "https://api.github.com",
        env: dict | None = None,
    ) -> Step:
        """Run `fasttrack-gitops ci ARGS` in-process as the runner would."""
        import os

        for name in list(os.environ):
            if name.startswith(("GITHUB_", "FTG_", "BACKEND_", "RUNNER_")):
                self.monkeypatch.delenv(name)
        for name, value in {**self.env(event_name, payload, sha=sha, ref=ref, api_url=api_url), **(env or {})}.items():
            self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        code = main(["ci", *args])
        out, err = self.capsys.readouterr()
        return Step(code, out, err, parse_outputs(self.output.read_text()), self.summary.read_text())


@pytest.fixture
def runner(tmp_path, monkeypatch, capsys, contracts) -> Runner:
    return Runner(tmp_path, monkeypatch, capsys, contracts / "github-webhooks")


@pytest.fixture
def github(contracts):
    """GitHub's REST API on 127.0.0.1, accepting the workflow's token (PLAIN_TOKEN) and checking every body."""
    fake = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), Clock())
    with fake.server.serving():
        yield fake


TOKEN = PLAIN_TOKEN
