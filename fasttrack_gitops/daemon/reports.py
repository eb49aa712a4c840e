"""The daemon's reporters: which ones its configuration asks for, and the report of a job as they see it now."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.reports.model import JobReport, Reporter
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.engine.state.ledger import Ledger
from fasttrack_gitops.engine.state.store import Store

GATE_PREFIX = "gate:"


def make_reporters(config: DaemonConfig) -> list[Reporter]:
    """A reporter per configured service that has something to report to."""
    reporters: list[Reporter] = []
    on = {
        provider: [r.name for r in config.repositories if r.provider == provider] for provider in ("github", "gitlab")
    }
    if config.github is not None and (config.github.token or config.github.app_id) and on["github"]:
        from fasttrack_gitops.engine.reporters.github import GitHubReporter

        reporters.append(GitHubReporter(config.github, repositories=on["github"]))
    if config.gitlab is not None and config.gitlab.token and on["gitlab"]:
        from fasttrack_gitops.engine.reporters.gitlab import GitLabReporter

        reporters.append(GitLabReporter(config.gitlab, repositories=on["gitlab"]))
    if config.slack is not None and (config.slack.bot_token or config.slack.webhook_url):
        from fasttrack_gitops.engine.reporters.slack import SlackReporter

        reporters.append(SlackReporter(config.slack))
    return reporters


def gate_id(repository: str, number: int, head_sha: str) -> str:
    """The outbox's name for a fork's pull request held for approval (it has no job)."""
    return f"{GATE_PREFIX}{repository}#{number}@{head_sha}"


def report_builder(
    store: Store, ledger: Ledger, *, masks: Callable[[], Sequence[str]], public_url: str | None
) -> Callable[[str], JobReport | None]:
    """job id (or gate id) -> its report now, every secret masked; None when it is gone."""

    def build(job_id: str) -> JobReport | None:
        from fasttrack_gitops.core.reports.build import gate_report, job_report
        from fasttrack_gitops.engine.reporters.logtail import failed_log_tails

        hidden = tuple(masks())
        if job_id.startswith(GATE_PREFIX):
            repository, _, rest = job_id[len(GATE_PREFIX) :].rpartition("#")
            number, _, head_sha = rest.partition("@")
            gate = ledger.gate(repository, int(number), head_sha)
            return None if gate is None else gate_report(gate, public_url=public_url)
        try:
            view = store.view(job_id)
        except FastTrackError:
            return None
        tails = failed_log_tails(store, view, masks=hidden)
        return job_report(view, log_tails=tails, masks=hidden, public_url=public_url)

    return build
