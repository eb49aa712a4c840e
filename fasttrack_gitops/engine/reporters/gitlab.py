"""GitLab commit statuses: each pipeline job shows on its commit as one status named fasttrack/<pipeline>.

GitLab has no check runs, only `POST /api/v4/projects/:id/statuses/:sha`.
The status is a state machine on GitLab's side (pending -> running ->
success | failed | canceled), so this module does two things: decide what the
status says (`status_body`, pure, over a JobReport) and post it only when
that changes what a person sees.

GitLab refuses to re-post the state a status already holds while it is in
progress ("Cannot transition status via :run from :running", a 400) and
leaves its description unchanged. So a new description with the same
pending or running state is not sent at all, and that 400, when it happens
anyway (a lost state, another job of the same commit), means "already so".
A finished state posted again creates a new status that replaces the old
one, which is how a changed final description gets through.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from urllib.parse import quote, urlsplit

import httpx

from fasttrack_gitops import __version__
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.reports.markdown import shorten
from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater, retry_after
from fasttrack_gitops.engine.reporters.config import GitLabReporterConfig

API_PREFIX = "/api/v4"
MAX_TEXT = 255  # GitLab's limit on ref, target_url and description (contracts/gitlab.json)
IN_PROGRESS = frozenset({"pending", "running"})  # states GitLab will not re-enter with a new description

# A job's conclusion (GitHub's words, as JobReport speaks them) -> the GitLab state.
_CONCLUSIONS = {
    "success": "success",
    "neutral": "success",  # only continue_on_failure tasks failed: the job passed
    "failure": "failed",
    "timed_out": "failed",
    "cancelled": "canceled",
    "skipped": "skipped",
}
# What the status says when the report has no title of its own.
_FALLBACK_DESCRIPTIONS = {
    "pending": "Waiting to start",
    "running": "Running",
    "success": "Succeeded",
    "failed": "Failed",
    "canceled": "Cancelled",
    "skipped": "Skipped",
}
APPROVAL_NEEDED = (
    "Waiting for approval: this merge request comes from a fork, so a maintainer must approve "
    "it by commenting /fasttrack ok-to-test"
)


# ---------------------------------------------------------------- what the status says (pure)


def gitlab_state(report: JobReport) -> str:
    """The GitLab state for a job: the held fork first, then an invalid file, then progress or the conclusion."""
    if report.status == "action_required" or report.conclusion == "action_required":
        return "pending"  # GitLab has no "needs action"; the description says what is awaited
    if report.status == "invalid":
        return "failed"
    if report.conclusion is None:
        return "running" if report.started or report.status == "running" else "pending"
    return _CONCLUSIONS.get(report.conclusion, "failed")  # an unknown conclusion must not look green


def describe(report: JobReport, state: str) -> str:
    """The one line under the status, cut to GitLab's limit: the report's title, unless GitLab's state
    alone would mislead (a held fork shows as pending, a neutral job as success, an invalid file as failed)."""
    if report.status == "action_required" or report.conclusion == "action_required":
        text = APPROVAL_NEEDED
    elif report.conclusion == "neutral":
        text = _allowed_failures(report)
    elif report.status == "invalid":
        text = _invalid(report)
    else:
        text = report.title or _FALLBACK_DESCRIPTIONS[state]
    return shorten(text, MAX_TEXT)


def _allowed_failures(report: JobReport) -> str:
    """A green status must still say which tasks failed, or nobody looks at them: the title when it names
    them all (conclusion.py's does), else a sentence that does."""
    failed = [row.name for row in report.tasks if row.state == "failed"]
    if report.title and all(name in report.title for name in failed):
        return report.title if failed else f"{report.title}; only tasks allowed to fail (continue_on_failure) failed"
    verb = "is" if len(failed) == 1 else "are"
    return f"Passed; {', '.join(failed)} failed but {verb} allowed to (continue_on_failure)"


def _invalid(report: JobReport) -> str:
    """The title plus the first error's place, so the reader knows where to look without clicking."""
    text = report.title or "The pipeline file is not valid"
    errors = [a for a in report.annotations if a.get("level") == "failure"] or list(report.annotations)
    if errors:
        first = errors[0]
        where = f"{first.get('path') or report.pipeline_path}:{first.get('line', 1)}:{first.get('column', 1)}"
        message = first.get("message")
        if where not in text:
            text = f"{text} ({where}: {message})" if message else f"{text} ({where})"
    return text


def branch_or_tag(ref: str | None) -> str | None:
    """The `ref` GitLab wants (a branch or tag name), or None for anything else (a merge request's head):
    GitLab then picks the pipeline or branch that holds the commit."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref and ref.startswith(prefix) and 0 < len(ref) - len(prefix) <= MAX_TEXT:
            return ref[len(prefix) :]
    return None


def _link(url: str | None) -> str | None:
    """The job page, when GitLab will take it: http(s) only and at most 255 characters (a cut link is broken,
    and GitLab answers any other with a 400 that would lose the whole status)."""
    if not url or len(url) > MAX_TEXT or urlsplit(url).scheme not in ("http", "https"):
        return None
    return url


def status_body(report: JobReport) -> dict:
    """The body of POST /projects/:id/statuses/:sha for this report."""
    state = gitlab_state(report)
    body = {"state": state, "name": shorten(report.check_name, MAX_TEXT), "description": describe(report, state)}
    if (ref := branch_or_tag(report.ref)) is not None:
        body["ref"] = ref
    if (url := _link(report.details_url)) is not None:
        body["target_url"] = url
    return body


def needs_post(previous: Mapping, body: Mapping) -> bool:
    """Whether posting `body` would change what GitLab shows, given the state kept from the last send."""
    if previous.get("state") != body["state"]:
        return True
    if body["state"] in IN_PROGRESS:
        return False  # GitLab refuses the same in-progress state and keeps the old description
    return previous.get("description") != body["description"]


# ---------------------------------------------------------------- the reporter (I/O)


class GitLabReporter:
    """Commit statuses for the jobs of the repositories whose provider is gitlab."""

    name = "gitlab"
    min_interval = 3.0

    def __init__(
        self, config: GitLabReporterConfig, *, repositories: Collection[str], client: httpx.AsyncClient | None = None
    ):
        self._config = config
        self._repositories = frozenset(r.casefold() for r in repositories)  # GitLab paths ignore case
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))

    def wants(self, report: JobReport) -> bool:
        """Only jobs of a configured GitLab project: the token is no key to anything else."""
        return report.repository.casefold() in self._repositories

    async def send(self, report: JobReport, state: Mapping) -> dict:
        """Post the status if it changes what GitLab shows; the new state: the last (state, description) and
        GitLab's status id."""
        body = status_body(report)
        if not needs_post(state, body):
            return dict(state)
        response = await self._post(report, body)
        if response.status_code in (200, 201):
            return _remember(body, _json(response).get("id", state.get("id")))
        if response.status_code == 400 and "cannot transition" in self._message(response).lower():
            return _remember(body, state.get("id"))  # GitLab already shows this state
        raise self._failure(report, response)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def status_url(self, project: str, sha: str) -> str:
        """The create-commit-status URL; the project path URL-encoded whole, as GitLab's :id wants it."""
        return f"{self._config.url.rstrip('/')}{API_PREFIX}/projects/{quote(project, safe='')}/statuses/{sha}"

    async def _post(self, report: JobReport, body: dict) -> httpx.Response:
        """One POST with the token as PRIVATE-TOKEN (what GitLab documents for personal, project and group
        access tokens); a network failure becomes RetryLater, a URL that can never work GiveUp."""
        if not self._config.token:
            raise GiveUp(
                "no gitlab.token_env or gitlab.token_file is configured: GitLab commit statuses "
                "need a token with the api scope"
            )
        headers = {"PRIVATE-TOKEN": self._config.token, "User-Agent": f"fasttrack-gitops/{__version__}"}
        try:
            return await self._client.post(
                self.status_url(report.repository, report.commit), json=body, headers=headers
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise GiveUp(f"gitlab.url {self._config.url!r} is not a usable URL: {e}") from None
        except httpx.TransportError as e:
            raise RetryLater(f"GitLab at {self._config.url} did not answer: {type(e).__name__}: {e}") from None

    def _failure(self, report: JobReport, response: httpx.Response) -> Exception:
        """The exception for a refused post: what is wrong and what to do, never the token."""
        code, message, project = response.status_code, self._message(response), report.repository
        if code == 401:
            return GiveUp(
                f"GitLab refused the token (401 {message}): is gitlab.token valid, unexpired and not revoked?"
            )
        if code == 403:
            return GiveUp(
                f"GitLab forbids setting commit statuses on {project} (403 {message}): the token needs "
                "the api scope and at least the Developer role (Maintainer on a protected branch)"
            )
        if code == 404:
            return GiveUp(_not_found(project, report.commit, message))
        if code == 429:
            return RetryLater(
                f"GitLab rate limit on {project}: {message}",
                after=retry_after(response.headers, time.time(), reset="ratelimit-reset"),
            )
        if code >= 500 or code in (408, 409):
            return RetryLater(f"GitLab answered {code} for {project}: {message}")
        return GiveUp(f"GitLab refused the status for {project} ({code} {message})")

    def _message(self, response: httpx.Response) -> str:
        """GitLab's own words (`message` or `error`), one line, short, with the token masked just in case."""
        text = masked(_error_text(_json(response)) or response.reason_phrase or "", [self._config.token or ""])
        return shorten(text, 300)


def _remember(body: Mapping, status_id: object) -> dict:
    """The state kept for the next send: what GitLab now shows, and its status id for a person debugging."""
    state = {"state": body["state"], "description": body["description"]}
    if isinstance(status_id, int):
        state["id"] = status_id
    return state


def _not_found(project: str, sha: str, message: str) -> str:
    """GitLab's 404 names what it did not find; say what that means here."""
    lowered = message.lower()
    if "commit" in lowered and "references" not in lowered:
        return f"GitLab does not know commit {sha[:12]} in {project} (404 {message}): was it pushed to GitLab?"
    if "references" in lowered:
        return (
            f"no branch of {project} holds commit {sha[:12]} (404 {message}): GitLab needs a branch or "
            "pipeline for a commit status"
        )
    return (
        f"GitLab project {project} was not found (404 {message}): is the repository name its full path "
        "(group/subgroup/project), and may the token see it?"
    )


def _json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_text(data: Mapping) -> str:
    """GitLab puts a string in `message`, or a field -> [problems] map for a validation error, or OAuth's
    `error`/`error_description`."""
    message = data.get("message")
    if isinstance(message, Mapping):
        return "; ".join(
            f"{field} {', '.join(map(str, problems)) if isinstance(problems, list) else problems}"
            for field, problems in message.items()
        )
    if message:
        return str(message)
    return " ".join(str(data[k]) for k in ("error", "error_description") if data.get(k))
