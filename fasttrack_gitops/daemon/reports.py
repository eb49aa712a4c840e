"""The daemon's reporters: which ones its configuration asks for, and the report of a job as they see it now."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.reports.model import JobReport, Reporter
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.daemon.forecasts import PLAN_EVENT
from fasttrack_gitops.engine.state.ledger import Ledger
from fasttrack_gitops.engine.state.store import Store

GATE_PREFIX = "gate:"


def make_reporters(config: DaemonConfig) -> list[Reporter]:
    """A reporter per configured service that has something to report to (and the credentials to)."""
    reporters: list[Reporter] = []
    on = {
        provider: [r.name for r in config.repositories if r.provider == provider] for provider in ("github", "gitlab")
    }
    github = config.github.reporter_config() if config.github is not None else None
    if github is not None and on["github"]:
        from fasttrack_gitops.engine.reporters.github import GitHubReporter

        reporters.append(GitHubReporter(github, repositories=on["github"]))
    gitlab = config.gitlab.reporter_config() if config.gitlab is not None else None
    if gitlab is not None and on["gitlab"]:
        from fasttrack_gitops.engine.reporters.gitlab import GitLabReporter

        reporters.append(GitLabReporter(gitlab, repositories=on["gitlab"]))
    slack = config.slack.reporter_config() if config.slack is not None else None
    if slack is not None:
        from fasttrack_gitops.engine.reporters.slack import SlackReporter

        reporters.append(SlackReporter(slack))
    return reporters


def gate_id(repository: str, number: int, head_sha: str) -> str:
    """The outbox's name for a fork's pull request held for approval (it has no job)."""
    return f"{GATE_PREFIX}{repository}#{number}@{head_sha}"


def report_builder(
    store: Store,
    ledger: Ledger,
    *,
    masks: Callable[[], Sequence[str]],
    public_url: str | None,
    signing: bytes | None = None,
) -> Callable[[str], JobReport | None]:
    """job id (or gate id) -> its report now, every secret masked; None when it is gone. `signing` signs the
    links to plots (daemon/outputs_http.py serves them)."""

    def build(job_id: str) -> JobReport | None:
        from fasttrack_gitops.core.reports.build import gate_report, job_report
        from fasttrack_gitops.engine.reporters.logtail import failed_log_tails
        from fasttrack_gitops.engine.results import results_section

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
        planned = store.last_event(job_id, PLAN_EVENT)
        plan = str(planned.data.get("markdown") or "") if planned else None
        found = results_section(store, view, public_url=public_url, signing=signing)
        return job_report(view, log_tails=tails, masks=hidden, public_url=public_url, plan=plan, results=found)

    return build
