"""Check runs (and Slack messages) for the step's jobs, through the engine's reporters and deliverer, never
failing the step.

GitHub reports when a token is given (not `none`): one check run
`fasttrack/<pipeline>` per job, created when the job is (queued), updated
when its first task starts and when it ends; a token that may not write
checks falls back to commit statuses inside the reporter. Slack reports
when a bot token or a webhook URL is given.

The deliverer is the daemon's, with the step's policy: the outbox lives in
memory, a job's end waits for its report to go through (a few tries, short
waits), and a report given up is a `::warning`, not a failure. A service
that refused outright (a revoked token) is not asked again in the step.

A pull request's checks go on its head commit (the workflow runs its merge
commit, which the pull request page does not show), and a check's details
link leads to the workflow run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from fasttrack_gitops.ci.runner_env import RunnerContext
from fasttrack_gitops.ci.workflow import Log
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.reports.model import JobReport, Reporter
from fasttrack_gitops.engine.deliver import Deliverer, Failure, Policy
from fasttrack_gitops.engine.state.memory_outbox import MemoryOutbox
from fasttrack_gitops.engine.state.store import Store

# A step's reports are few (queued, started, ended) and a person watches them: no spacing; three tries in a
# row, at most 10 s apart whatever the service asks, then a warning; a reporter's bug is a warning at once.
STEP_POLICY = Policy(tries=3, surprises=1, max_wait=10.0, spacing=False)


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
        self.slack = bool(slack_bot_token or slack_webhook_url)
        reporters = _reporters(ctx, github_token, slack_bot_token, slack_webhook_url, slack_channel)
        self.outbox = MemoryOutbox()
        self.deliverer = Deliverer(
            self.outbox, reporters, self._report_now, policy=STEP_POLICY, on_failure=self._on_failure
        )
        self._store: Store | None = None  # where the jobs being reported are: given with each update
        self._refused: set[str] = set()  # reporters whose service refused: not asked again in this step

    def report(self, store: Store, job_id: str) -> JobReport:
        """The job's report now, as GitHub should show it for this workflow run."""
        from fasttrack_gitops.core.reports.build import job_report
        from fasttrack_gitops.engine.reporters.logtail import failed_log_tails
        from fasttrack_gitops.engine.results import results_section

        view = store.view(job_id)
        tails = failed_log_tails(store, view, masks=self.masks)
        report = job_report(view, log_tails=tails, masks=self.masks, results=results_section(store, view))
        notify = dict(report.notify)
        if self.slack and "slack" not in notify:  # Slack inputs given: a pipeline that says nothing gets the default
            notify["slack"] = {}
        return replace(report, commit=self.report_commit, details_url=self.ctx.run_url, notify=notify)

    async def update(self, store: Store, job_id: str, *, final: bool = False) -> None:
        """Show the job as it is now on every service that wants it: what is due goes now; a job's end is
        waited for until every report owed is sent or given up (a warning)."""
        self._store = store
        asked = [name for name in self.deliverer.names if name not in self._refused]
        if not asked:
            return
        self.outbox.mark(job_id, asked, final=final)
        if final:
            await self.deliverer.drain()
        else:
            await self.deliverer.flush()

    def link(self, job_id: str) -> str:
        """The job's check run on GitHub, else the checks page of the commit it reports on."""
        row = self.outbox.row(job_id, "github")
        run_id = json.loads(row["state_json"]).get("check_run_id") if row else None
        return self.ctx.check_url(run_id) if isinstance(run_id, int) else self.ctx.checks_url(self.report_commit)

    async def aclose(self) -> None:
        for reporter in self.deliverer.reporters.values():
            try:
                await reporter.aclose()
            except Exception:  # closing a client must not fail the step either
                pass

    def _report_now(self, job_id: str) -> JobReport:
        assert self._store is not None, "a job is marked only by update(), which gives its store"
        return self.report(self._store, job_id)

    def _on_failure(self, failure: Failure) -> None:
        """A report given up is a warning in the step's log; a retry is silent (the next try may work)."""
        if failure.cause == "refused":
            self._refused.add(failure.reporter)
        if failure.retry_in is None:
            self.log.warning(
                masked(
                    f"{failure.reporter}: could not report {failure.report.check_name}: {failure.reason}", self.masks
                ),
                title="fasttrack-gitops ci",
            )


def _reporters(
    ctx: RunnerContext,
    github_token: str | None,
    slack_bot_token: str | None,
    slack_webhook_url: str | None,
    slack_channel: str | None,
) -> list[Reporter]:
    """The reporters the step's inputs ask for: GitHub on this repository with the token, Slack with either
    of its credentials."""
    reporters: list[Reporter] = []
    if github_token:
        from fasttrack_gitops.engine.reporters.config import GitHubReporterConfig
        from fasttrack_gitops.engine.reporters.github import GitHubReporter

        config = GitHubReporterConfig(token=github_token, api_url=ctx.api_url)
        reporters.append(GitHubReporter(config, repositories=[ctx.repository]))
    if slack_bot_token or slack_webhook_url:
        from fasttrack_gitops.engine.reporters.config import SlackReporterConfig
        from fasttrack_gitops.engine.reporters.slack import SlackReporter

        slack = SlackReporterConfig(
            bot_token=slack_bot_token, webhook_url=slack_webhook_url, default_channel=slack_channel
        )
        reporters.append(SlackReporter(slack))
    return reporters
