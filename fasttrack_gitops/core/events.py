"""What happened in a pipeline repository, as the trigger rules see it, whoever reported it. Pure.

A GitHub or GitLab webhook, a poll that found a branch moved, a watched local
repository, the daemon's clock and `fasttrack-gitops trigger` all become one
of these frozen records; `triggers.py` decides which pipelines each selects.
The GitHub Action builds the same records from `$GITHUB_EVENT_PATH`, so the
daemon and the Action select with the same code.

`repository` is the name the git host gives (`owner/repo`), which is also
the `name` of the repository in the daemon's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ZERO_COMMIT = "0" * 40  # `before` of a new branch, `after` of a deleted one, in push webhooks

# Who may drive the daemon with PR comments (GitHub's author_association values).
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


@dataclass(frozen=True)
class Push:
    """A branch or tag moved from `before` to `after`."""

    repository: str
    ref: str  # full ref: refs/heads/main, refs/tags/v1.2
    before: str  # ZERO_COMMIT when the branch or tag is new
    after: str  # ZERO_COMMIT when it was deleted
    forced: bool = False
    default_branch: str | None = None  # the repository's default branch name, when the sender knows it
    sender: str = ""  # who pushed ("poll", "watch" for the daemon's own watchers)

    @property
    def deleted(self) -> bool:
        return self.after == ZERO_COMMIT

    @property
    def created(self) -> bool:
        return self.before == ZERO_COMMIT


@dataclass(frozen=True)
class PullRequest:
    """A pull request (GitHub) or merge request (GitLab) activity."""

    repository: str  # the base repository
    action: str  # opened, synchronize, reopened, closed, ...
    number: int
    head_sha: str
    head_ref: str  # the head branch name (in head_repository)
    head_repository: str  # owner/repo of the head; differs from repository for a fork
    base_ref: str  # the base branch name
    base_sha: str = ""
    author: str = ""
    author_association: str = ""  # OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...
    sender: str = ""

    @property
    def from_fork(self) -> bool:
        return self.head_repository.lower() != self.repository.lower()


@dataclass(frozen=True)
class Comment:
    """A new comment on a pull request (only those can carry /fasttrack commands)."""

    repository: str
    number: int  # the pull request's number
    body: str
    author: str
    author_association: str


@dataclass(frozen=True)
class Rerequest:
    """Someone pressed "Re-run" on a check (check_run/check_suite rerequested) or a check's action button."""

    repository: str
    head_sha: str
    head_branch: str | None
    check_name: str | None = None  # "fasttrack/<pipeline>" for one check run; None for a whole suite
    external_id: str | None = None  # the job id we gave the check run
    failed_only: bool = False  # the "Re-run failed tasks" action
    sender: str = ""


@dataclass(frozen=True)
class Tick:
    """A cron schedule of one pipeline fell due (the daemon's clock)."""

    repository: str
    pipeline_path: str
    cron: str
    at: float  # the scheduled time (UTC epoch seconds), not when it was noticed


@dataclass(frozen=True)
class Manual:
    """`fasttrack-gitops trigger REPO PIPELINE --ref REF`, through the daemon's API."""

    repository: str
    pipeline: str  # a pipeline name or repository-relative path
    ref: str  # a branch, tag or commit id
    request_id: str  # one job per request, however often it is retried
    sender: str = ""
    no_cache: bool = False  # reuse no cached task outputs
    params: tuple[tuple[str, Any], ...] = ()  # parameter overrides, name -> text or JSON scalar (checked later)


Event = Push | PullRequest | Comment | Rerequest | Tick | Manual
