"""The daemon's configuration as the daemon gets it: a full file and a minimal one become the dataclasses.

The helpers here (config_file, errors_of, one_error, REPO) serve the other
config_*_test.py modules too: each writes a file as an operator would.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fasttrack_gitops.core.render.diagnostics import text_line
from fasttrack_gitops.daemon.config import (
    BackendAIConfig,
    DaemonConfig,
    GitHubConfig,
    GitLabConfig,
    RepositoryConfig,
    SlackConfig,
)
from fasttrack_gitops.daemon.config_loading import load_config
from fasttrack_gitops.engine.reporters.config import GitHubReporterConfig, GitLabReporterConfig, SlackReporterConfig

FULL = """\
state_dir: state
listen: "[::1]:9090"
executor: backendai
public_url: https://ftg.example.com/
max_running_jobs: 2
shutdown_grace: 1m30s
webhook_max_body: 512k
x-common: &common
  branches: [main, "release/*"]
repositories:
  - name: acme/ml-pipelines
    url: git/ml
    provider: github
    <<: *common
    path: ml/
    pipelines: ["./pipelines/**/*.yaml"]
  - name: group/sub/project
    url: https://gitlab.example.com/group/sub/project.git
    provider: gitlab
    poll_interval: 5m
  - name: acme/data
    url: file://${GIT_ROOT}/data
    branches: ["${BRANCH}"]
    poll_interval: 30
github:
  webhook_secret_env: GITHUB_WEBHOOK_SECRET
  token_env: GITHUB_TOKEN
  app_id: 123
  private_key_file: secrets/app.pem
  api_url: ${GHE}/api/v3
gitlab:
  webhook_token_file: /run/secrets/gitlab-hook
  token_env: GITLAB_TOKEN
slack:
  bot_token_env: SLACK_BOT_TOKEN
  default_channel: "#ml$$"
backendai:
  endpoint: https://api.backend.ai/
  access_key_env: BAI_ACCESS
api_token_env: FTG_API_TOKEN
"""

SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "gh-hook-s3cret",
    "GITHUB_TOKEN": "ghp_tokenvalue000000000000000000000000",
    "GITLAB_TOKEN": "glpat-tokenvalue",
    "SLACK_BOT_TOKEN": "xoxb-slack-token-value",
    "BAI_ACCESS": "AKIAACCESSKEYVALUE",
    "BACKEND_SECRET_KEY": "backend-secret-key-value",
    "FTG_API_TOKEN": "api-token-value",
}
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEkeyvalue\n-----END RSA PRIVATE KEY-----"


def config_file(tmp_path: Path, text: str, name: str = "ftg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str, environ: dict | None = None) -> list[str]:
    """Load a configuration that must be refused; its diagnostics as the text lines people read."""
    config, found = load_config(config_file(tmp_path, text), {} if environ is None else environ)
    assert config is None
    return [text_line(d) for d in found]


def one_error(tmp_path: Path, text: str, environ: dict | None = None) -> str:
    lines = errors_of(tmp_path, text, environ)
    assert len(lines) == 1, lines
    return lines[0]


REPO = "repositories:\n  - name: acme/ml\n    url: /srv/git/ml\n"


@pytest.fixture
def full(tmp_path: Path, monkeypatch) -> DaemonConfig:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "app.pem").write_text(PEM + "\n\n")
    hook = tmp_path / "gitlab-hook"
    hook.write_text("  gitlab-hook-token\n")
    text = FULL.replace("/run/secrets/gitlab-hook", str(hook))
    environ = {**SECRETS, "BRANCH": "prod", "GIT_ROOT": "/srv/git", "GHE": "https://ghe.example.com"}
    config, found = load_config(config_file(tmp_path, text), environ)
    assert found == []
    return config


# --- a valid configuration ------------------------------------------------------------------


def test_a_full_configuration_becomes_the_dataclasses(full, tmp_path):
    assert full.file == tmp_path / "ftg.yaml"
    assert full.state_dir == tmp_path / "state"  # relative to the configuration's folder
    assert (full.host, full.port) == ("::1", 9090)
    assert full.executor == "backendai"
    assert full.public_url == "https://ftg.example.com"
    assert (full.max_running_jobs, full.shutdown_grace, full.webhook_max_body) == (2, 90.0, 512 * 1024)
    assert full.api_token == "api-token-value"


def test_repositories_get_their_defaults_by_kind_of_url(full, tmp_path):
    local, remote, by_file = full.repositories
    assert local == RepositoryConfig(
        name="acme/ml-pipelines",
        url=str(tmp_path / "git" / "ml"),
        provider="github",
        branches=("main", "release/*"),
        watch=True,
        poll_interval=None,
        path="ml",
        pipelines=("pipelines/**/*.yaml",),
    )
    assert local.local_path == tmp_path / "git" / "ml"
    assert remote == RepositoryConfig(
        name="group/sub/project",
        url="https://gitlab.example.com/group/sub/project.git",
        provider="gitlab",
        branches=("main", "master"),
        watch=False,
        poll_interval=300.0,
        path="",
        pipelines=None,
    )
    assert remote.local_path is None
    assert by_file.url == "file:///srv/git/data"  # ${GIT_ROOT} expanded
    assert by_file.branches == ("prod",)
    assert by_file.local_path == Path("/srv/git/data")
    assert (by_file.watch, by_file.poll_interval, by_file.provider) == (True, 30.0, "none")


def test_secrets_come_from_the_environment_and_from_files(full):
    assert full.github == GitHubConfig(
        webhook_secret="gh-hook-s3cret",
        token=SECRETS["GITHUB_TOKEN"],
        app_id=123,
        private_key=PEM,
        api_url="https://ghe.example.com/api/v3",
    )
    assert full.gitlab == GitLabConfig(
        webhook_token="gitlab-hook-token", token="glpat-tokenvalue", url="https://gitlab.com"
    )
    assert full.slack == SlackConfig(
        bot_token="xoxb-slack-token-value", webhook_url=None, default_channel="#ml$", api_url="https://slack.com/api"
    )
    # The section's endpoint and access key, the official client's variable for the secret key.
    assert full.backendai == BackendAIConfig(
        endpoint="https://api.backend.ai", access_key="AKIAACCESSKEYVALUE", secret_key="backend-secret-key-value"
    )


def test_each_reporter_gets_what_it_uses_and_nothing_of_the_webhooks(full):
    assert full.github.reporter_config() == GitHubReporterConfig(
        token=SECRETS["GITHUB_TOKEN"], app_id=123, private_key=PEM, api_url="https://ghe.example.com/api/v3"
    )
    assert full.gitlab.reporter_config() == GitLabReporterConfig(token="glpat-tokenvalue", url="https://gitlab.com")
    assert full.slack.reporter_config() == SlackReporterConfig(
        bot_token="xoxb-slack-token-value", default_channel="#ml$", api_url="https://slack.com/api"
    )
    # Webhooks alone need no credentials to report with: no reporter then.
    assert replace(full.github, token=None, app_id=None, private_key=None).reporter_config() is None
    assert replace(full.gitlab, token=None).reporter_config() is None
    assert replace(full.slack, bot_token=None).reporter_config() is None


def test_secret_values_lists_every_resolved_secret_for_masking(full):
    assert set(full.secret_values()) == {*SECRETS.values(), PEM, "gitlab-hook-token"}


def test_no_secret_shows_in_the_repr(full):
    shown = repr(full)
    for secret in full.secret_values():
        assert secret not in shown
    assert "acme/ml-pipelines" in shown  # the rest still does


def test_repository_finds_a_name_without_regard_to_case(full):
    assert full.repository("ACME/ML-Pipelines") is full.repositories[0]
    assert full.repository("acme/other") is None


def test_a_minimal_configuration_gets_every_default(tmp_path, monkeypatch):
    monkeypatch.setenv("FTG_STATE_DIR", str(tmp_path / "default-state"))
    config, found = load_config(config_file(tmp_path, REPO), {})
    assert found == []
    assert config.state_dir == tmp_path / "default-state"
    assert (config.host, config.port, config.executor, config.public_url) == ("127.0.0.1", 8080, "local", None)
    assert (config.max_running_jobs, config.shutdown_grace, config.webhook_max_body) == (4, 30.0, 5 << 20)
    assert (config.api_token, config.github, config.gitlab, config.slack, config.backendai) == (None,) * 5
    (repo,) = config.repositories
    assert (repo.provider, repo.branches, repo.watch, repo.poll_interval, repo.path, repo.pipelines) == (
        "none",
        ("main", "master"),
        True,
        None,
        "",
        None,
    )


def test_x_keys_are_ignored_and_not_expanded(tmp_path):
    config, found = load_config(config_file(tmp_path, "x-notes: ${NOT_SET}\n" + REPO), {})
    assert found == [] and config is not None


def test_the_backendai_executor_may_take_everything_from_the_official_variables(tmp_path):
    environ = {"BACKEND_ENDPOINT": "https://manager:8081", "BACKEND_ACCESS_KEY": "AK", "BACKEND_SECRET_KEY": "SK"}
    config, found = load_config(config_file(tmp_path, "executor: backendai\n" + REPO), environ)
    assert found == []
    assert config.backendai == BackendAIConfig("https://manager:8081", "AK", "SK")
