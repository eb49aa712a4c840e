"""The daemon's configuration file (`serve --config FILE`): read, checked, resolved.

It is read the way a pipeline file is (a position for every value, the same
Diagnostic type, a JSON Schema in schemas/ that catches typos with a
suggestion), then what a schema cannot judge is checked here, each problem
at its file:line:col with what to do: listen addresses, repository URLs,
durations and sizes, duplicate repositories, settings that go together.

Secrets are never written in the file. A `*_env` key names an environment
variable and a `*_file` key a file; both are resolved here, once, so the
daemon gets the values and a missing one stops it before it starts rather
than at the first webhook. No message ever holds a secret's value, and the
dataclasses leave them out of their repr. `${VAR}` in any other string is
expanded from the environment after the schema check (`$$` is a `$`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import schema
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, diagnostic, has_errors, json_path, sort_key
from fasttrack_gitops.core.pipeline.units import parse_duration, parse_size
from fasttrack_gitops.core.pipeline.yamlsource import Document, Limits, load
from fasttrack_gitops.daemon.config_values import (  # noqa: F401 - part of this module's API
    MAX_SECRET_FILE,
    expand,
    looks_like_secret,
    parse_listen,
    read_secret_file,
    url_kind,
)
from fasttrack_gitops.engine.reporters.config import (
    GITHUB_API,
    GITLAB_URL,
    SLACK_API,
    GitHubReporterConfig,
    GitLabReporterConfig,
    SlackReporterConfig,
)

SCHEMA_FILE = "config.schema.json"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_BRANCHES = ("main", "master")
DEFAULT_POLL_INTERVAL = 60.0
DEFAULT_SHUTDOWN_GRACE = "30s"
DEFAULT_WEBHOOK_MAX_BODY = "5m"
DEFAULT_MAX_RUNNING_JOBS = 4

# Where secrets may be named, and which: each as <secret>_env or <secret>_file, never <secret> itself.
SECRETS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("api_token",),
    ("github",): ("webhook_secret", "token", "private_key"),
    ("gitlab",): ("webhook_token", "token"),
    ("slack",): ("bot_token", "webhook_url"),
    ("backendai",): ("access_key", "secret_key"),
}
# The official Backend.AI client's variables, the fallback of the backendai section.
BACKEND_ENDPOINT = "BACKEND_ENDPOINT"
BACKEND_ACCESS_KEY = "BACKEND_ACCESS_KEY"
BACKEND_SECRET_KEY = "BACKEND_SECRET_KEY"


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
    api_token: str | None = field(repr=False)
    repositories: tuple[RepositoryConfig, ...]
    github: GitHubConfig | None
    gitlab: GitLabConfig | None
    slack: SlackConfig | None
    backendai: BackendAIConfig | None

    def repository(self, name: str) -> RepositoryConfig | None:
        """The repository of that name; case-insensitive, as GitHub and GitLab compare names."""
        folded = name.casefold()
        return next((r for r in self.repositories if r.name.casefold() == folded), None)

    def secret_values(self) -> tuple[str, ...]:
        """Every resolved secret, for the log writer to mask."""
        found = [self.api_token]
        if self.github:
            found += [self.github.webhook_secret, self.github.token, self.github.private_key]
        if self.gitlab:
            found += [self.gitlab.webhook_token, self.gitlab.token]
        if self.slack:
            found += [self.slack.bot_token, self.slack.webhook_url]
        if self.backendai:
            found += [self.backendai.access_key, self.backendai.secret_key]
        return tuple(dict.fromkeys(s for s in found if s))


def read_config(path: Path, environ: Mapping[str, str] | None = None) -> DaemonConfig:
    """The configuration, or a UsageError whose message is every diagnostic, one per line."""
    from fasttrack_gitops.core.render.diagnostics import text_line

    config, found = load_config(path, environ)
    if config is None:
        raise UsageError("\n".join(text_line(d) for d in found))
    return config


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> tuple[DaemonConfig | None, list[Diagnostic]]:
    """Read, check and resolve the file: (the configuration, or None when there is an error; all diagnostics)."""
    from fasttrack_gitops.engine.workspace import read_bytes

    environ = os.environ if environ is None else environ
    shown = str(path)
    raw = read_bytes(path, shown, Limits())
    if isinstance(raw, Diagnostic):
        return None, [_reworded(raw)]
    doc, found = load(raw, shown)
    found = [_reworded(d) for d in found]
    if doc is None:
        return None, found
    data, literal = _without_literal_secrets(doc)
    found += literal
    found += [_redacted(d) for d in schema.check(replace(doc, data=data), SCHEMA_FILE, subject="the configuration")]
    if has_errors(found):
        return None, sorted(found, key=sort_key)
    resolver = _Resolver(doc, environ, Path(os.path.abspath(path)))
    config = resolver.config(resolver.expanded(data, ()))
    found = sorted(found + resolver.found, key=sort_key)
    return (None if has_errors(found) else config), found


def _dotted(path: tuple) -> str:
    """('repositories', 0, 'url') -> 'repositories[0].url': how the messages name a key."""
    return json_path(path)[2:].replace(".[", "[") if path else "the configuration"


# --- before the schema ----------------------------------------------------------------------


def _reworded(d: Diagnostic) -> Diagnostic:
    """The YAML loader speaks of pipelines; say what a configuration needs instead."""
    if d.code == "FT007":
        return replace(
            d,
            message=d.message.split(";")[0].replace("'name' and 'tasks'", "'repositories'")
            + ("; a configuration needs at least 'repositories'" if "empty" in d.message else ""),
        )
    if d.code == "FT002":
        return replace(
            d, message=d.message.split(";")[0] + "; a configuration is a few kilobytes: is it the right file?"
        )
    return d


def _without_literal_secrets(doc: Document) -> tuple[Any, list[Diagnostic]]:
    """The data without secrets written as values, and a diagnostic for each (which never shows the value).

    They are taken out before the schema check, so they are reported once and
    as what they are, not as unknown keys.
    """
    data = doc.data
    found: list[Diagnostic] = []
    for section, names in SECRETS.items():
        holder = data.get(section[0]) if section else data
        written = [n for n in names if isinstance(holder, dict) and n in holder]
        for name in written:
            path = section + (name,)
            m = doc.source.key(path)
            found.append(
                diagnostic(
                    "FT401",
                    f"{_dotted(path)}: secrets are never written in the configuration; name an environment "
                    f"variable with {name}_env (or a file with {name}_file)",
                    doc.file,
                    m.line,
                    m.column,
                    json_path(path),
                )
            )
        if written:
            kept = {k: v for k, v in holder.items() if k not in written}
            data = {**data, section[0]: kept} if section else kept
    return data, found


def _redacted(d: Diagnostic) -> Diagnostic:
    """A schema message about an *_env value quotes it, and the value may be the secret itself: say it without."""
    if d.code == "FT100" and d.path.endswith("_env"):
        return replace(
            d,
            message=f"{d.path[2:]} must be the name of an environment variable (letters, digits and "
            "'_', e.g. GITHUB_TOKEN), never the secret itself",
        )
    return d


# --- after the schema: resolving ------------------------------------------------------------


class _Resolver:
    """Turns schema-valid data into a DaemonConfig: expands, parses, reads secrets; collects a diagnostic per problem.

    A value it cannot use becomes a placeholder so that every problem is
    found in one pass; the caller drops the configuration when any was.
    """

    def __init__(self, doc: Document, environ: Mapping[str, str], file: Path):
        self.doc, self.environ, self.file, self.folder = doc, environ, file, file.parent
        self.found: list[Diagnostic] = []
        self.unexpanded: set[tuple] = set()  # values whose ${VAR} failed: said once, not again as malformed

    def error(self, code: str, message: str, path: tuple, *, at_key: bool = False) -> None:
        if any(path[:n] in self.unexpanded for n in range(len(path) + 1)):
            return
        m = self.doc.source.key(path) if at_key else self.doc.source.value(path)
        self.found.append(diagnostic(code, message, self.doc.file, m.line, m.column, json_path(path)))

    def expanded(self, value: Any, path: tuple) -> Any:
        """${VAR} expanded in every string but *_env names and x- extensions."""
        if isinstance(value, dict):
            return {
                k: v if k.startswith("x-") or k.endswith("_env") else self.expanded(v, path + (k,))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.expanded(v, path + (i,)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value
        try:
            return expand(value, self.environ)
        except ValueError as e:
            self.error("FT404", f"{_dotted(path)}: {e}", path)
            self.unexpanded.add(path)
            return value

    def config(self, data: dict) -> DaemonConfig:
        host, port = self.listen(data.get("listen", DEFAULT_LISTEN))
        executor = data.get("executor", "local")
        return DaemonConfig(
            file=self.file,
            state_dir=self.state_dir(data.get("state_dir")),
            host=host,
            port=port,
            executor=executor,
            public_url=self.http_url(("public_url",), data.get("public_url")),
            max_running_jobs=data.get("max_running_jobs", DEFAULT_MAX_RUNNING_JOBS),
            shutdown_grace=self.duration(("shutdown_grace",), data.get("shutdown_grace", DEFAULT_SHUTDOWN_GRACE)),
            webhook_max_body=self.size(("webhook_max_body",), data.get("webhook_max_body", DEFAULT_WEBHOOK_MAX_BODY)),
            api_token=self.secret((), data, "api_token"),
            repositories=self.repositories(data["repositories"]),
            github=self.github(data["github"]) if "github" in data else None,
            gitlab=self.gitlab(data["gitlab"]) if "gitlab" in data else None,
            slack=self.slack(data["slack"]) if "slack" in data else None,
            backendai=self.backendai(data.get("backendai"), executor),
        )

    # --- values ---

    def local(self, text: str) -> Path:
        """A path as written: ~ expanded; relative to the configuration's folder."""
        return Path(os.path.normpath(self.folder / Path(text).expanduser()))

    def state_dir(self, text: str | None) -> Path:
        """As written, else the store's default (which reads the process environment, as every command does)."""
        from fasttrack_gitops.engine.state.state_folder import default_state_dir

        return default_state_dir() if text is None else self.local(text)

    def listen(self, text: str) -> tuple[str, int]:
        try:
            return parse_listen(text)
        except ValueError as e:
            self.error(
                "FT406",
                f"listen is {text!r}: {e}; write host:port, e.g. 127.0.0.1:8080, [::1]:8080, "
                "or :8080 for every interface",
                ("listen",),
            )
            return "127.0.0.1", 0

    def http_url(self, path: tuple, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            parts = urlsplit(text)
        except ValueError:  # an unclosed [
            parts = urlsplit("")
        if parts.password is not None:
            self.error(
                "FT401", f"{_dotted(path)} holds a password; secrets are never written in the configuration", path
            )
        elif parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            self.error(
                "FT411",
                f"{_dotted(path)} is {text!r}; write an http:// or https:// URL, e.g. https://ftg.example.com",
                path,
            )
        return text.rstrip("/")

    def duration(self, path: tuple, value: float | str, minimum: float = 0.0) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            problem = str(e) if "year" in str(e) else f"{_dotted(path)} is {value!r}"
            self.error("FT409", f"{problem}; write seconds, or a duration such as 30s, 5m or 1h30m", path)
            return minimum
        if seconds < minimum:
            self.error("FT409", f"{_dotted(path)} is {value!r}; it must be at least {minimum:g}s", path)
        return seconds

    def size(self, path: tuple, value: int | str) -> int:
        try:
            size = parse_size(value)
        except ValueError:
            size = 0
        if size <= 0:
            self.error(
                "FT409",
                f"{_dotted(path)} is {value!r}; write a size such as 5m or 512k, or a number of bytes above 0",
                path,
            )
        return size

    # --- secrets ---

    def secret(self, section: tuple, holder: dict, name: str, fallback_env: str | None = None) -> str | None:
        """The secret <name> that holder names by <name>_env or <name>_file, else the fallback variable's, else None."""
        env_key, file_key = f"{name}_env", f"{name}_file"
        if env_key in holder and file_key in holder:
            self.error(
                "FT410",
                f"{_dotted(section + (file_key,))} and {env_key} both name the {name}; keep one",
                section + (file_key,),
                at_key=True,
            )
            return None
        if env_key in holder:
            return self.env_secret(section + (env_key,), holder[env_key])
        if file_key in holder:
            return self.file_secret(section + (file_key,), holder[file_key])
        if fallback_env is None:
            return None
        return (self.environ.get(fallback_env) or "").strip() or None

    def env_secret(self, path: tuple, variable: str) -> str | None:
        value = (self.environ.get(variable) or "").strip()
        if value:
            return value
        if looks_like_secret(variable):
            self.error(
                "FT402",
                f"{_dotted(path)} must name an environment variable, and what it holds looks like a "
                "token itself; put the token in a variable and write the variable's name here",
                path,
            )
        else:
            self.error(
                "FT402",
                f"{_dotted(path)} names {variable}, which is not set (or empty) in the environment "
                "of the daemon; set it, or remove the key",
                path,
            )
        return None

    def file_secret(self, path: tuple, text: str) -> str | None:
        try:
            return read_secret_file(self.local(text))
        except ValueError as e:
            self.error("FT403", f"{_dotted(path)}: {e}", path)
            return None

    # --- sections ---

    def repositories(self, items: list[dict]) -> tuple[RepositoryConfig, ...]:
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            path = ("repositories", i, "name")
            earlier = first.setdefault(item["name"].casefold(), i)
            if earlier != i:
                line = self.doc.source.value(("repositories", earlier, "name")).line
                self.error(
                    "FT405",
                    f"repository '{item['name']}' is listed twice (first on line {line}; names "
                    "are compared without case); remove one of them",
                    path,
                )
        return tuple(self.repository(("repositories", i), item) for i, item in enumerate(items))

    def repository(self, path: tuple, item: dict) -> RepositoryConfig:
        provider = item.get("provider", "none")
        self.check_name(path + ("name",), item["name"], provider)
        url = item["url"]
        kind = url_kind(url)
        if kind is None:
            self.error(
                "FT407",
                f"{_dotted(path + ('url',))} is {url!r}; write a local path, a file://, http(s):// or "
                "ssh:// URL, or git@host:owner/repo.git",
                path + ("url",),
            )
        elif kind == "remote" and "://" in url and urlsplit(url).password is not None:
            self.error(
                "FT401",
                f"{_dotted(path + ('url',))} holds a password; secrets are never written in the "
                "configuration: use an ssh key or a git credential helper",
                path + ("url",),
            )
        elif kind == "local" and "://" not in url:
            url = str(self.local(url))
        watch = item.get("watch", kind == "local")
        if watch and kind == "remote":
            self.error(
                "FT408",
                f"{_dotted(path + ('watch',))} is true, but {item['url']} is not a local repository; "
                "remove watch (a remote repository is polled, see poll_interval) or use a local path",
                path + ("watch",),
            )
        poll = item.get("poll_interval")
        return RepositoryConfig(
            name=item["name"],
            url=url,
            provider=provider,
            branches=tuple(item.get("branches", DEFAULT_BRANCHES)),
            watch=bool(watch and kind == "local"),
            poll_interval=(
                self.duration(path + ("poll_interval",), poll, minimum=1.0)
                if poll is not None
                else DEFAULT_POLL_INTERVAL
                if kind == "remote"
                else None
            ),
            path=item.get("path", "").removeprefix("./").strip("/"),
            pipelines=tuple(g.removeprefix("./") for g in item["pipelines"]) if "pipelines" in item else None,
        )

    def check_name(self, path: tuple, name: str, provider: str) -> None:
        parts = name.split("/")
        if provider == "github" and len(parts) != 2:
            self.error(
                "FT412", f"{_dotted(path)} is {name!r}; a GitHub repository is named owner/repo, as in its URL", path
            )
        elif provider == "gitlab" and len(parts) < 2:
            self.error(
                "FT412",
                f"{_dotted(path)} is {name!r}; a GitLab project is named group/project "
                "(or group/subgroup/project), as in its URL",
                path,
            )

    def github(self, section: dict) -> GitHubConfig:
        at = ("github",)
        key = self.secret(at, section, "private_key")
        app_id = section.get("app_id")
        if app_id is not None and not any(k in section for k in ("private_key_env", "private_key_file")):
            self.error(
                "FT410",
                "github.app_id needs the App's private key: add private_key_file (or private_key_env)",
                at + ("app_id",),
                at_key=True,
            )
        if app_id is None and (written := [k for k in ("private_key_env", "private_key_file") if k in section]):
            self.error(
                "FT410",
                f"github.{written[0]} is the key of a GitHub App: add app_id, the App's id",
                at + (written[0],),
                at_key=True,
            )
        return GitHubConfig(
            webhook_secret=self.secret(at, section, "webhook_secret"),
            token=self.secret(at, section, "token"),
            app_id=app_id,
            private_key=key,
            api_url=self.http_url(at + ("api_url",), section.get("api_url")) or GitHubConfig.api_url,
        )

    def gitlab(self, section: dict) -> GitLabConfig:
        at = ("gitlab",)
        return GitLabConfig(
            webhook_token=self.secret(at, section, "webhook_token"),
            token=self.secret(at, section, "token"),
            url=self.http_url(at + ("url",), section.get("url")) or GitLabConfig.url,
        )

    def slack(self, section: dict) -> SlackConfig:
        at = ("slack",)
        return SlackConfig(
            bot_token=self.secret(at, section, "bot_token"),
            webhook_url=self.secret(at, section, "webhook_url"),
            default_channel=section.get("default_channel"),
            api_url=self.http_url(at + ("api_url",), section.get("api_url")) or SlackConfig.api_url,
        )

    def backendai(self, section: dict | None, executor: str) -> BackendAIConfig | None:
        """The manager and keypair: from the section, each falling back to the official client's variable.

        Needed when the executor is backendai (a gap is reported at `executor`);
        a section written for another executor must be complete too.
        """
        if section is None and executor != "backendai":
            return None
        at, holder = ("backendai",), section or {}
        gap = ("executor",) if executor == "backendai" else at  # where a missing piece is reported
        endpoint = holder.get("endpoint") or (self.environ.get(BACKEND_ENDPOINT) or "").strip() or None
        if endpoint is not None:
            endpoint = self.http_url(at + ("endpoint",) if "endpoint" in holder else gap, endpoint)
        access = self.secret(at, holder, "access_key", BACKEND_ACCESS_KEY)
        secret = self.secret(at, holder, "secret_key", BACKEND_SECRET_KEY)
        missing = [
            what
            for what, value, keys in (
                (f"an endpoint (backendai.endpoint, or {BACKEND_ENDPOINT})", endpoint, ("endpoint",)),
                (
                    f"an access key (backendai.access_key_env, or {BACKEND_ACCESS_KEY})",
                    access,
                    ("access_key_env", "access_key_file"),
                ),
                (
                    f"a secret key (backendai.secret_key_env, or {BACKEND_SECRET_KEY})",
                    secret,
                    ("secret_key_env", "secret_key_file"),
                ),
            )
            if value is None and not any(k in holder for k in keys)
        ]  # a key written and unresolved: said already
        if missing:
            subject = "executor is backendai" if gap != at else "the backendai section is incomplete"
            self.error(
                "FT410",
                f"{subject}, but there is no {' and no '.join(m.split(' ', 1)[1] for m in missing)}; "
                "write them in the backendai section or set the variables",
                gap,
                at_key=gap == at,
            )
        if endpoint is None or access is None or secret is None:
            return None
        return BackendAIConfig(endpoint=endpoint, access_key=access, secret_key=secret)
