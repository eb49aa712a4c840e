"""The daemon's configuration as the daemon uses it: frozen dataclasses, every value checked and every secret resolved.

They are made from the file `serve --config FILE` by config_loading.py; what
the file may hold is in schemas/config.schema.json. A secret is a value here
(resolved once, at start) but never part of a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fasttrack_gitops.core.retention import RetentionPolicy
from fasttrack_gitops.daemon.config_values import url_kind
from fasttrack_gitops.engine.reporters.config import (
    GITHUB_API,
    GITLAB_URL,
    SLACK_API,
    GitHubReporterConfig,
    GitLabReporterConfig,
    SlackReporterConfig,
)


@dataclass(frozen=True)
class RepositoryConfig:
    name: str
    url: str  # a local path is made absolute (relative to the configuration's folder)
    provider: str  # github | gitlab | none
    branches: tuple[str, ...]
    watch: bool
    poll_interval: float | None  # seconds; None: not polled
    path: str  # the pipeline repository's folder inside the git repository; "" is the root
    pipelines: tuple[str, ...] | None  # None: as `validate` finds them

    @property
    def local_path(self) -> Path | None:
        """The folder when url is a local path or a file:// URL, else None."""
        if url_kind(self.url) != "local":
            return None
        if "://" in self.url:
            return Path(unquote(urlsplit(self.url).path))
        return Path(self.url)


@dataclass(frozen=True)
class GitHubConfig:
    webhook_secret: str | None = field(repr=False)
    token: str | None = field(repr=False)
    app_id: int | None
    private_key: str | None = field(repr=False)
    api_url: str = GITHUB_API

    def reporter_config(self) -> GitHubReporterConfig | None:
        """What the GitHub reporter needs; None without a token or an App (webhooks alone need neither)."""
        if not (self.token or self.app_id):
            return None
        return GitHubReporterConfig(
            token=self.token, app_id=self.app_id, private_key=self.private_key, api_url=self.api_url
        )


@dataclass(frozen=True)
class GitLabConfig:
    webhook_token: str | None = field(repr=False)
    token: str | None = field(repr=False)
    url: str = GITLAB_URL

    def reporter_config(self) -> GitLabReporterConfig | None:
        """What the GitLab reporter needs; None without a token (webhooks alone need none)."""
        return GitLabReporterConfig(token=self.token, url=self.url) if self.token else None


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str | None = field(repr=False)
    webhook_url: str | None = field(repr=False)
    default_channel: str | None
    api_url: str = SLACK_API

    def reporter_config(self) -> SlackReporterConfig | None:
        """What the Slack reporter needs; None without a bot token or a webhook to post with."""
        if not (self.bot_token or self.webhook_url):
            return None
        return SlackReporterConfig(
            bot_token=self.bot_token,
            webhook_url=self.webhook_url,
            default_channel=self.default_channel,
            api_url=self.api_url,
        )


@dataclass(frozen=True)
class BackendAIConfig:
    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class DaemonConfig:
    file: Path
    state_dir: Path
    host: str
    port: int
    executor: str
    public_url: str | None
    max_running_jobs: int
    shutdown_grace: float  # seconds
    webhook_max_body: int  # bytes
    outputs_max_size: int  # bytes: the largest output file the outputs API serves
    api_token: str | None = field(repr=False)  # the write credential: POST /api/trigger, the console's buttons
    read_token: str | None = field(repr=False)  # the read credential: the console, GET /api/*, /metrics
    public_read: bool  # the console and read APIs open to anyone (deliberately); else credential or loopback
    signing_secret: str | None = field(repr=False)  # signs output links; None: a random one per process
    repositories: tuple[RepositoryConfig, ...]
    github: GitHubConfig | None
    gitlab: GitLabConfig | None
    slack: SlackConfig | None
    backendai: BackendAIConfig | None
    retention: RetentionPolicy = RetentionPolicy()  # no limit: nothing is collected

    def repository(self, name: str) -> RepositoryConfig | None:
        """The repository of that name; case-insensitive, as GitHub and GitLab compare names."""
        folded = name.casefold()
        return next((r for r in self.repositories if r.name.casefold() == folded), None)

    @property
    def loopback_only(self) -> bool:
        """No credential and not public: the console and read APIs answer loopback clients only (web/access.py)."""
        return not (self.public_read or self.read_token or self.api_token)

    def secret_values(self) -> tuple[str, ...]:
        """Every resolved secret, for the log writer to mask."""
        found = [self.api_token, self.read_token, self.signing_secret]
        if self.github:
            found += [self.github.webhook_secret, self.github.token, self.github.private_key]
        if self.gitlab:
            found += [self.gitlab.webhook_token, self.gitlab.token]
        if self.slack:
            found += [self.slack.bot_token, self.slack.webhook_url]
        if self.backendai:
            found += [self.backendai.access_key, self.backendai.secret_key]
        return tuple(dict.fromkeys(s for s in found if s))
