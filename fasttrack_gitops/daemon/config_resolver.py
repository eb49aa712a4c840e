"""The daemon's configuration file resolved: schema-valid data becomes a DaemonConfig, or a diagnostic per problem.

What a schema cannot judge is checked here, each problem at its
file:line:col with what to do: listen addresses, repository URLs, durations
and sizes, duplicate repositories, settings that go together. `${VAR}` in
any string but a `*_env` name is expanded from the environment first (`$$`
is a `$`); the secrets are resolved by config_secrets.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, diagnostic, json_path
from fasttrack_gitops.core.pipeline.units import parse_duration, parse_size
from fasttrack_gitops.core.pipeline.yamlsource import Document
from fasttrack_gitops.core.retention import RetentionPolicy
from fasttrack_gitops.daemon.config import (
    BackendAIConfig,
    DaemonConfig,
    GitHubConfig,
    GitLabConfig,
    RepositoryConfig,
    SlackConfig,
)
from fasttrack_gitops.daemon.config_secrets import SecretProblem, resolve_secret
from fasttrack_gitops.daemon.config_values import dotted, expand, local_path, parse_listen, url_kind

# The official Backend.AI client's variables: the fallback of the backendai section.
from fasttrack_gitops.engine.backendai.credentials import ACCESS_KEY as BACKEND_ACCESS_KEY
from fasttrack_gitops.engine.backendai.credentials import ENDPOINT as BACKEND_ENDPOINT
from fasttrack_gitops.engine.backendai.credentials import SECRET_KEY as BACKEND_SECRET_KEY

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_BRANCHES = ("main", "master")
DEFAULT_POLL_INTERVAL = 60.0
DEFAULT_SHUTDOWN_GRACE = "30s"
DEFAULT_WEBHOOK_MAX_BODY = "5m"
DEFAULT_OUTPUTS_MAX_SIZE = "50m"
DEFAULT_MAX_RUNNING_JOBS = 4
DEFAULT_GC_INTERVAL = "1d"


class Resolver:
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
            self.error("FT404", f"{dotted(path)}: {e}", path)
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
            outputs_max_size=self.size(("outputs_max_size",), data.get("outputs_max_size", DEFAULT_OUTPUTS_MAX_SIZE)),
            api_token=self.secret((), data, "api_token"),
            read_token=self.secret((), data, "read_token"),
            public_read=data.get("public_read", False) is True,
            signing_secret=self.secret((), data, "signing_secret"),
            repositories=self.repositories(data["repositories"]),
            github=self.github(data["github"]) if "github" in data else None,
            gitlab=self.gitlab(data["gitlab"]) if "gitlab" in data else None,
            slack=self.slack(data["slack"]) if "slack" in data else None,
            backendai=self.backendai(data.get("backendai"), executor),
            retention=self.retention(data.get("retention", {})),
        )

    # --- values ---

    def state_dir(self, text: str | None) -> Path:
        """As written, else the store's default (which reads the process environment, as every command does)."""
        from fasttrack_gitops.engine.state.state_folder import default_state_dir

        return default_state_dir() if text is None else local_path(self.folder, text)

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
                "FT401", f"{dotted(path)} holds a password; secrets are never written in the configuration", path
            )
        elif parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            self.error(
                "FT411",
                f"{dotted(path)} is {text!r}; write an http:// or https:// URL, e.g. https://ftg.example.com",
                path,
            )
        return text.rstrip("/")

    def duration(self, path: tuple, value: float | str, minimum: float = 0.0) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            problem = str(e) if "year" in str(e) else f"{dotted(path)} is {value!r}"
            self.error("FT409", f"{problem}; write seconds, or a duration such as 30s, 5m or 1h30m", path)
            return minimum
        if seconds < minimum:
            self.error("FT409", f"{dotted(path)} is {value!r}; it must be at least {minimum:g}s", path)
        return seconds

    def size(self, path: tuple, value: int | str) -> int:
        try:
            size = parse_size(value)
        except ValueError:
            size = 0
        if size <= 0:
            self.error(
                "FT409",
                f"{dotted(path)} is {value!r}; write a size such as 5m or 512k, or a number of bytes above 0",
                path,
            )
        return size

    def secret(self, section: tuple, holder: dict, name: str, fallback_env: str | None = None) -> str | None:
        """The secret <name> of a section (config_secrets.resolve_secret); a problem is a diagnostic, and None."""
        try:
            return resolve_secret(section, holder, name, self.environ, self.folder, fallback_env)
        except SecretProblem as problem:
            self.error(problem.code, str(problem), problem.key, at_key=problem.at_key)
            return None

    # --- sections ---

    def retention(self, section: dict) -> RetentionPolicy:
        """Durations parsed (an unknown unit is FT409); the schema has judged keep_per_pipeline already."""
        age = ("retention", "max_age")
        return RetentionPolicy(
            max_age=self.duration(age, section["max_age"]) if "max_age" in section else None,
            keep_per_pipeline=section.get("keep_per_pipeline"),
            interval=self.duration(("retention", "interval"), section.get("interval", DEFAULT_GC_INTERVAL), 60.0),
        )

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
                f"{dotted(path + ('url',))} is {url!r}; write a local path, a file://, http(s):// or "
                "ssh:// URL, or git@host:owner/repo.git",
                path + ("url",),
            )
        elif kind == "remote" and "://" in url and urlsplit(url).password is not None:
            self.error(
                "FT401",
                f"{dotted(path + ('url',))} holds a password; secrets are never written in the "
                "configuration: use an ssh key or a git credential helper",
                path + ("url",),
            )
        elif kind == "local" and "://" not in url:
            url = str(local_path(self.folder, url))
        watch = item.get("watch", kind == "local")
        if watch and kind == "remote":
            self.error(
                "FT408",
                f"{dotted(path + ('watch',))} is true, but {item['url']} is not a local repository; "
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
                "FT412", f"{dotted(path)} is {name!r}; a GitHub repository is named owner/repo, as in its URL", path
            )
        elif provider == "gitlab" and len(parts) < 2:
            self.error(
                "FT412",
                f"{dotted(path)} is {name!r}; a GitLab project is named group/project "
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
