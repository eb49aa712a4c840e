"""What each reporter is given: who it is on its service and where the service is. Pure data.

A shell builds these from its own settings (the daemon from its
configuration file, daemon/config.py; the Action from its inputs,
ci/reporters.py) and hands them to the reporter's constructor. Secrets are
left out of the repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GITHUB_API = "https://api.github.com"
GITLAB_URL = "https://gitlab.com"
SLACK_API = "https://slack.com/api"


@dataclass(frozen=True)
class GitHubReporterConfig:
    """A token (a PAT, or Actions' GITHUB_TOKEN), or a GitHub App (its id and private key: only Apps and
    GITHUB_TOKEN may write check runs; an App wins when both are given). With neither the reporter reports
    nothing."""

    token: str | None = field(default=None, repr=False)
    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)
    api_url: str = GITHUB_API  # a GitHub Enterprise Server's is https://HOST/api/v3


@dataclass(frozen=True)
class GitLabReporterConfig:
    """An access token with the api scope, and the GitLab instance."""

    token: str | None = field(repr=False)
    url: str = GITLAB_URL


@dataclass(frozen=True)
class SlackReporterConfig:
    """A bot token (chat:write; one message per job, updated) or an incoming webhook (one message per event);
    the channel of pipelines whose notify.slack names none (bot token only: a webhook's channel is fixed)."""

    bot_token: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)  # itself a secret
    default_channel: str | None = None
    api_url: str = SLACK_API
