"""GitHub: one check run per pipeline job, updated in place; commit statuses when checks cannot be written.

The check run is named `fasttrack/<pipeline>`, created when the job is
(`queued`), then `in_progress`, then `completed` with the job's conclusion;
an invalid job's diagnostics become annotations on the pipeline file, and a
failed job gets a "Re-run failed tasks" button (the daemon handles its
`check_run.requested_action` webhook).

What the reporter keeps per job (`state`, plain JSON in the outbox):
`check_run_id`, `annotations_sent` (GitHub appends annotations, at most 50
per request: counting them is what keeps a re-send from duplicating them),
`mode` ("checks" or "statuses"), `started_at`/`completed_at` (the times
first shown, so later updates do not move them), `last`, a digest of the
content last shown: the same report again makes no request at all, and
`unsure` while a create went unanswered (a 5xx, a timeout: GitHub may have
made the check run), so the next send looks for it by the job id first.

Only GitHub Apps (and Actions' GITHUB_TOKEN) may write check runs. When
creating one is refused (403, 404: a personal token), the job is reported as
a commit status with the same name instead (`mode: statuses`), and the
repository is remembered so its next jobs do not ask again.

When a send fails half-way (the check run created, some annotations sent),
the exception carries the progress as `.state`: the deliverer should keep
it, or the next attempt would create a second check run.

The bodies are pure functions of the report (github_bodies.py), so tests
can read what a person will see without a server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater
from fasttrack_gitops.engine.reporters.config import GitHubReporterConfig
from fasttrack_gitops.engine.reporters.github_auth import (
    AppAuth,
    Clock,
    TokenAuth,
    api_headers,
    installation_of,
    rate_limited,
    refusal,
)
from fasttrack_gitops.engine.reporters.github_bodies import (
    MAX_ANNOTATIONS,
    annotation,
    check_run,
    commit_status,
    fingerprint,
    with_annotations,
)

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class GitHubReporter:
    name = "github"
    min_interval = 3.0

    def __init__(
        self,
        config: GitHubReporterConfig,
        *,
        repositories: Collection[str],
        client: httpx.AsyncClient | None = None,
        clock: Clock = time.time,
    ):
        """`repositories`: the configured owner/repo names whose provider is github. A config with neither
        a token nor an App cannot report: `wants` is then False for every job (webhooks alone need neither)."""
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT)
        self.api = config.api_url.rstrip("/")
        self.web = web_url(self.api)
        self.repositories = frozenset(r.casefold() for r in repositories)
        self.clock = clock
        self.auth = _auth(config, self.client, clock)
        self._no_checks: set[str] = set()  # repositories where creating a check run was refused

    def wants(self, report: JobReport) -> bool:
        return self.auth is not None and report.repository.casefold() in self.repositories

    async def send(self, report: JobReport, state: Mapping) -> dict:
        progress = dict(state)
        try:
            if progress.get("mode") == "statuses" or (
                "check_run_id" not in progress and report.repository.casefold() in self._no_checks
            ):
                await self._send_status(report, progress)
            else:
                await self._send_check(report, progress)
        except (RetryLater, GiveUp) as e:
            e.state = progress  # what was done before the failure: keeping it avoids a second check run
            raise
        return progress

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    # ------------------------------------------------------------ check runs

    async def _send_check(self, report: JobReport, progress: dict) -> None:
        """Create or update the job's check run, then append the annotations not sent yet, 50 at a time."""
        body = check_run(report, details_url=self._details_url(report))
        annotations = [annotation(a, report.pipeline_path) for a in report.annotations]
        digest = fingerprint(body, annotations)
        if progress.get("last") == digest:
            return
        progress["mode"] = "checks"
        body.update(self._times(report, progress))
        recreated = False
        while True:
            if progress.get("check_run_id") is None:
                if progress.get("unsure") and await self._find(report, progress):
                    continue  # the create whose answer was lost had made it: update that one
                if not await self._create(report, progress, body, annotations):
                    return await self._fall_back(report, progress)
            elif not await self._update(report, progress, body, annotations):
                if recreated:
                    raise GiveUp(
                        f"GitHub lost the check run {report.check_name} of {report.repository} "
                        "twice while it was being written"
                    )
                recreated = True  # deleted on GitHub (404): create it again, once
                continue
            if progress["annotations_sent"] >= len(annotations):
                break
        progress["last"] = digest

    async def _create(self, report: JobReport, progress: dict, body: dict, annotations: list[dict]) -> bool:
        """POST a new check run with the first annotations; False when checks cannot be written here."""
        progress["unsure"] = True  # until GitHub says for sure whether it made one (a 5xx or a timeout does not)
        response = await self._call(
            report, "POST", f"/repos/{_repo(report)}/check-runs", with_annotations(body, annotations[:MAX_ANNOTATIONS])
        )
        if response.status_code < 500:
            progress.pop("unsure")
        if response.status_code in (403, 404) and not rate_limited(response):
            return False
        run_id = _id(response)
        if not response.is_success or run_id is None:
            raise refusal(
                response, f"creating the check run {report.check_name} on {report.repository}", now=self.clock()
            )
        progress["check_run_id"] = run_id
        progress["annotations_sent"] = min(len(annotations), MAX_ANNOTATIONS)
        return True

    async def _find(self, report: JobReport, progress: dict) -> bool:
        """After a create GitHub did not answer for sure: the check run it may have made, found by the job id
        (external_id) among the commit's runs of that name; True (and its id in progress) when it exists."""
        query = urlencode({"check_name": report.check_name, "filter": "all", "per_page": 100})
        path = f"/repos/{_repo(report)}/commits/{quote(report.commit)}/check-runs?{query}"
        response = await self._call(report, "GET", path, None)
        if not response.is_success:
            raise refusal(
                response, f"looking for the check run {report.check_name} on {report.repository}", now=self.clock()
            )
        runs = response.json().get("check_runs") or []
        made = next((r.get("id") for r in runs if r.get("external_id") == report.job_id), None)
        progress.pop("unsure")
        if not isinstance(made, int):
            return False
        progress.update(check_run_id=made, annotations_sent=0)
        return True

    async def _update(self, report: JobReport, progress: dict, body: dict, annotations: list[dict]) -> bool:
        """PATCH the check run with the next annotations; False when it no longer exists (404)."""
        sent = progress.get("annotations_sent", 0)
        batch = annotations[sent : sent + MAX_ANNOTATIONS]
        update = {k: v for k, v in with_annotations(body, batch).items() if k != "head_sha"}
        response = await self._call(
            report, "PATCH", f"/repos/{_repo(report)}/check-runs/{progress['check_run_id']}", update
        )
        if response.status_code == 404:
            log.info("%s: the check run %s is gone; creating it again", report.repository, report.check_name)
            progress.pop("check_run_id")
            progress["annotations_sent"] = 0
            return False
        if not response.is_success:
            raise refusal(
                response, f"updating the check run {report.check_name} on {report.repository}", now=self.clock()
            )
        progress["annotations_sent"] = sent + len(batch)
        return True

    async def _fall_back(self, report: JobReport, progress: dict) -> None:
        """Checks refused: this job, and the repository's next ones, are reported as commit statuses."""
        log.warning(
            "%s: the GitHub token may not write check runs (an App or GITHUB_TOKEN can); reporting %s "
            "as a commit status instead",
            report.repository,
            report.check_name,
        )
        self._no_checks.add(report.repository.casefold())
        progress.pop("check_run_id", None)
        progress["annotations_sent"] = 0
        await self._send_status(report, progress)

    def _times(self, report: JobReport, progress: dict) -> dict:
        """started_at once a task started, completed_at once the job ended; each fixed at the first send
        that shows it, so later updates repeat it rather than move it."""
        times = {}
        for key, shown in (("started_at", report.started), ("completed_at", report.ended)):
            if shown:
                exact = getattr(report, key)  # when the job says it happened; else the send's time stands in
                progress[key] = _iso(exact) if exact else progress.get(key) or _iso(self.clock())
                times[key] = progress[key]
        return times

    def _details_url(self, report: JobReport) -> str | None:
        """The daemon's job page; for a held fork pull request without one, the pull request (GitHub wants
        a page that says what action is required)."""
        if report.details_url or report.conclusion != "action_required":
            return report.details_url
        number = report.trigger.get("number")
        page = f"pull/{number}" if isinstance(number, int) else f"commit/{report.commit}"
        return f"{self.web}/{report.repository}/{page}"

    # ------------------------------------------------------------ commit statuses

    async def _send_status(self, report: JobReport, progress: dict) -> None:
        body = commit_status(report, details_url=self._details_url(report))
        digest = fingerprint(body, [])
        if progress.get("last") == digest:
            return
        response = await self._call(report, "POST", f"/repos/{_repo(report)}/statuses/{quote(report.commit)}", body)
        if not response.is_success:
            raise refusal(
                response, f"setting the commit status {report.check_name} on {report.repository}", now=self.clock()
            )
        progress.update(mode="statuses", last=digest)

    # ------------------------------------------------------------ one request

    async def _call(self, report: JobReport, method: str, path: str, body: dict | None) -> httpx.Response:
        """One request as the report's repository; a refused token (401) is renewed once, then given up on."""
        assert self.auth is not None  # wants() is False without one, so no send gets here
        for _ in range(2 if self.auth.renewable else 1):
            token = await self.auth.token(installation_id=installation_of(report.trigger), repository=report.repository)
            try:
                response = await self.client.request(
                    method, self.api + path, json=body, headers=api_headers(token), follow_redirects=True
                )  # a renamed repository answers 307
            except httpx.RequestError as e:
                raise RetryLater(f"GitHub did not answer {method} {path}: {type(e).__name__}") from e
            if response.status_code != 401:
                return response
            self.auth.invalidate(token)
        raise GiveUp(
            f"the GitHub token was refused (401) for {report.repository}: check github.token_env/"
            "token_file, or the App's installation and permissions"
        )


def web_url(api_url: str) -> str:
    """GitHub's web address for its API's: api.github.com -> github.com; GHES https://h/api/v3 -> https://h."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc.casefold() == "api.github.com":
        return "https://github.com"
    return urlunsplit((parts.scheme, parts.netloc, parts.path.removesuffix("/api/v3"), "", ""))


def _auth(config: GitHubReporterConfig, client: httpx.AsyncClient, clock: Clock) -> AppAuth | TokenAuth | None:
    """An App when configured (only Apps may write check runs), else the token; None when neither is."""
    if config.app_id is not None and config.private_key:
        return AppAuth(config.app_id, config.private_key, client, config.api_url, clock=clock)
    if config.token:
        return TokenAuth(config.token)
    return None


def _repo(report: JobReport) -> str:
    owner, _, name = report.repository.partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _id(response: httpx.Response) -> int | None:
    try:
        run_id = response.json().get("id")
    except (ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, int) else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
