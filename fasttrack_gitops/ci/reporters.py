"""Check runs (and Slack messages) for the step's jobs, through the daemon's reporters, never failing the step.

The reporters are the daemon's (`reporting/github.py`, `reporting/slack.py`):
one check run `fasttrack/<pipeline>` per job, created when the job is
(queued), updated when its first task starts and when it ends; a token that
may not write checks falls back to commit statuses inside the reporter.
Here there is no outbox: the reporters' state lives in memory for the
step, and a report that cannot be delivered is a `::warning`, not a failure.

A pull request's checks go on its head commit (the workflow runs its merge
commit, which the pull request page does not show), and a check's details
link leads to the workflow run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from fasttrack_gitops.ci.runner_env import RunnerContext
from fasttrack_gitops.ci.workflow import Log
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater

FINAL_TRIES = 3  # a job's last report is worth waiting a little for
MAX_WAIT = 10.0  # seconds between two tries, whatever the service asks


class Reporters:
    def __init__(
        self,
        ctx: RunnerContext,
        *,
        report_commit: str,
        masks: Sequence[str],
        log: Log,
        github_token: str | None = None,
        slack_bot_token: str | None = None,
        slack_webhook_url: str | None = None,
        slack_channel: str | None = None,
    ):
        self.ctx = ctx
        self.report_commit = report_commit
        self.masks = tuple(m for m in masks if m)
        self.log = log
        self.reporters: list = []
        if github_token:
            from fasttrack_gitops.daemon.config import GitHubConfig
            from fasttrack_gitops.engine.reporters.github import GitHubReporter

            config = GitHubConfig(
                webhook_secret=None, token=github_token, app_id=None, private_key=None, api_url=ctx.api_url
            )
            self.reporters.append(GitHubReporter(config, repositories=[ctx.repository]))
        if slack_bot_token or slack_webhook_url:
            from fasttrack_gitops.daemon.config import SlackConfig
            from fasttrack_gitops.engine.reporters.slack import SlackReporter

            self.reporters.append(
                SlackReporter(
                    SlackConfig(bot_token=slack_bot_token, webhook_url=slack_webhook_url, default_channel=slack_channel)
                )
            )
        self.slack = bool(slack_bot_token or slack_webhook_url)
        self.state: dict[tuple[str, str], dict] = {}  # (job id, reporter) -> what the reporter keeps
        self._given_up: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def report(self, store, job_id: str) -> JobReport:
        """The job's report now, as GitHub should show it for this workflow run."""
        from fasttrack_gitops.core.reports.build import job_report
        from fasttrack_gitops.engine.reporters.logtail import failed_log_tails

        view = store.view(job_id)
        report = job_report(view, log_tails=failed_log_tails(store, view, masks=self.masks), masks=self.masks)
        notify = dict(report.notify)
        if self.slack and "slack" not in notify:  # Slack inputs given: a pipeline that says nothing gets the default
            notify["slack"] = {}
        return replace(report, commit=self.report_commit, details_url=self.ctx.run_url, notify=notify)

    async def update(self, store, job_id: str, *, final: bool = False) -> None:
        """Show the job as it is now on every service that wants it; failures become warnings."""
        if not self.reporters:
            return
        async with self._locks.setdefault(job_id, asyncio.Lock()):
            report = self.report(store, job_id)
            for reporter in self.reporters:
                if reporter.name not in self._given_up and reporter.wants(report):
                    await self._send(reporter, report, tries=FINAL_TRIES if final else 1)

    async def _send(self, reporter, report: JobReport, *, tries: int) -> None:
        key = (report.job_id, reporter.name)
        for attempt in range(1, tries + 1):
            try:
                self.state[key] = await reporter.send(report, self.state.get(key, {}))
                return
            except RetryLater as e:
                self._keep(key, e)
                if attempt < tries:
                    await asyncio.sleep(min(MAX_WAIT, e.after if e.after is not None else 2.0 * attempt))
                    continue
                self._warn(reporter, report, e)
            except GiveUp as e:
                self._keep(key, e)
                self._given_up.add(reporter.name)
                self._warn(reporter, report, e)
            except Exception as e:  # a reporter's bug must not fail the pipeline's step
                self._warn(reporter, report, e)
            return

    def check_run_id(self, job_id: str) -> int | None:
        found = self.state.get((job_id, "github"), {}).get("check_run_id")
        return found if isinstance(found, int) else None

    def link(self, job_id: str) -> str:
        """The job's check run on GitHub, else the checks page of the commit it reports on."""
        run_id = self.check_run_id(job_id)
        return self.ctx.check_url(run_id) if run_id is not None else self.ctx.checks_url(self.report_commit)

    async def aclose(self) -> None:
        for reporter in self.reporters:
            try:
                await reporter.aclose()
            except Exception:  # closing a client must not fail the step either
                pass

    def _keep(self, key: tuple[str, str], error: Exception) -> None:
        state = getattr(error, "state", None)
        if state is not None:  # how far the send got: the next one goes on from there, never creates twice
            self.state[key] = dict(state)

    def _warn(self, reporter, report: JobReport, error: Exception) -> None:
        what = f"{type(error).__name__}: {error}" if not isinstance(error, (RetryLater, GiveUp)) else str(error)
        self.log.warning(
            masked(f"{reporter.name}: could not report {report.check_name}: {what}", self.masks),
            title="fasttrack-gitops ci",
        )
