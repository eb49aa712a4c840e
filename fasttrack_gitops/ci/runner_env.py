"""The GitHub Actions runner's environment as a context, and its event payload as one of our event records.

The runner sets GITHUB_* variables for every step
(docs.github.com, "Store information in variables"); the event that
started the workflow is the JSON file at GITHUB_EVENT_PATH, the same
payload a webhook delivers, so the daemon's parser reads it
(`core.webhooks.github.parse_github`) and the daemon's trigger rules decide.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fasttrack_gitops.core.errors import UsageError

REQUIRED = (
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_SHA",
    "GITHUB_REPOSITORY",
    "GITHUB_WORKSPACE",
    "GITHUB_RUN_ID",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
)
# Events whose payload is a pull request's: pull_request_target carries the same one.
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


class NotInRunner(UsageError):
    """Variables every GitHub Actions step has are missing: this is not a workflow step."""


@dataclass(frozen=True)
class RunnerContext:
    event_name: str  # push, pull_request, workflow_dispatch, schedule, ...
    event_path: Path
    sha: str  # the commit the workflow runs (a pull request's merge commit for pull_request)
    ref: str  # refs/heads/main, refs/pull/12/merge, ...; "" for some events
    repository: str  # owner/repo
    workspace: Path  # where actions/checkout put the repository
    api_url: str  # https://api.github.com, or a GitHub Enterprise Server's
    server_url: str  # https://github.com
    run_id: str
    run_attempt: str  # "1", then "2"... for each re-run of the workflow run
    output: Path  # $GITHUB_OUTPUT
    step_summary: Path  # $GITHUB_STEP_SUMMARY
    runner_temp: Path | None = None
    actor: str = ""

    @property
    def run_url(self) -> str:
        """This workflow run's page."""
        return f"{self.server_url}/{self.repository}/actions/runs/{quote(self.run_id)}"

    def check_url(self, check_run_id: int) -> str:
        return f"{self.server_url}/{self.repository}/runs/{check_run_id}"

    def checks_url(self, commit: str) -> str:
        """The commit's checks page (when a check run's id is not known)."""
        return f"{self.server_url}/{self.repository}/commit/{commit}/checks"

    def default_state_dir(self) -> Path:
        """$RUNNER_TEMP/fasttrack-gitops: emptied after every job, as a job's state should be."""
        if self.runner_temp is not None:
            return self.runner_temp / "fasttrack-gitops"
        import tempfile

        return Path(tempfile.mkdtemp(prefix="fasttrack-gitops-"))


def from_environ(environ: Mapping[str, str] | None = None) -> RunnerContext:
    """The runner's context; NotInRunner naming every missing variable."""
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        raise NotInRunner(
            f"not in a GitHub Actions step: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
            " not set (the runner sets them for every step)"
        )
    return RunnerContext(
        event_name=env["GITHUB_EVENT_NAME"].strip(),
        event_path=Path(env["GITHUB_EVENT_PATH"]),
        sha=env["GITHUB_SHA"].strip().lower(),
        ref=env.get("GITHUB_REF", "").strip(),
        repository=env["GITHUB_REPOSITORY"].strip(),
        workspace=Path(env["GITHUB_WORKSPACE"]),
        api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
        server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
        run_id=env["GITHUB_RUN_ID"].strip(),
        run_attempt=env.get("GITHUB_RUN_ATTEMPT", "").strip(),
        output=Path(env["GITHUB_OUTPUT"]),
        step_summary=Path(env["GITHUB_STEP_SUMMARY"]),
        runner_temp=Path(env["RUNNER_TEMP"]) if env.get("RUNNER_TEMP") else None,
        actor=env.get("GITHUB_ACTOR", ""),
    )


def read_event(ctx: RunnerContext):
    """The event as the daemon would see it: a Delivery whose record is a Push, a PullRequest, or None.

    None (ignored) for events the daemon does not parse (workflow_dispatch,
    schedule, ...): the caller decides those on the event's name alone.
    """
    from fasttrack_gitops.core.webhooks import WebhookError
    from fasttrack_gitops.core.webhooks.github import parse_github

    try:
        body = ctx.event_path.read_bytes()
    except OSError as e:
        raise UsageError(
            f"cannot read the event payload GITHUB_EVENT_PATH={ctx.event_path}: {e.strerror or e}"
        ) from None
    name = "pull_request" if ctx.event_name in PULL_REQUEST_EVENTS else ctx.event_name
    try:
        return parse_github({"X-GitHub-Event": name, "X-GitHub-Delivery": ctx.run_id}, body)
    except WebhookError as e:
        raise UsageError(f"the {ctx.event_name} payload at GITHUB_EVENT_PATH cannot be read: {e.message}") from None
