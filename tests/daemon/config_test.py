"""The daemon's configuration file, as an operator writes it: defaults, secrets, ${VAR}, and every mistake."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.render.diagnostics import text_line
from fasttrack_gitops.daemon.config import (
    BackendAIConfig,
    DaemonConfig,
    GitHubConfig,
    GitLabConfig,
    RepositoryConfig,
    SlackConfig,
    expand,
    load_config,
    looks_like_secret,
    parse_listen,
    read_config,
    url_kind,
)
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


def test_read_config_returns_the_configuration(tmp_path):
    assert read_config(config_file(tmp_path, REPO), {}).repositories[0].name == "acme/ml"


def test_read_config_raises_a_usage_error_with_every_diagnostic(tmp_path):
    path = config_file(tmp_path, "listen: nowhere\nexecutor: backendai\n" + REPO)
    with pytest.raises(UsageError) as raised:
        read_config(path, {})
    lines = str(raised.value).splitlines()
    assert [line.split(": error ")[0] for line in lines] == [f"{path}:1:9", f"{path}:2:11"]


# --- the file itself ------------------------------------------------------------------------


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    line = one_error(tmp_path, REPO + "github: {token_env: X\n")
    assert ":5:" in line and "FT004" in line


def test_an_empty_file_says_what_a_configuration_needs(tmp_path):
    assert "a configuration needs at least 'repositories'" in one_error(tmp_path, "")


def test_a_missing_file_is_one_diagnostic(tmp_path):
    config, found = load_config(tmp_path / "nope.yaml", {})
    (d,) = found
    assert (config, d.code, d.line, d.column) == (None, "FT001", 1, 1)
    assert "No such file" in d.message


def test_repositories_are_required(tmp_path):
    line = one_error(tmp_path, "listen: :8080\n")
    assert "FT102" in line and "has no 'repositories'" in line


# --- the schema: typos and types ------------------------------------------------------------


def test_an_unknown_key_suggests_the_right_one(tmp_path):
    line, missing = errors_of(tmp_path, REPO.replace("repositories", "reposotories"))
    assert "FT102" in missing
    assert line.startswith(f"{tmp_path}/ftg.yaml:1:1: error FT101: unknown key 'reposotories'")
    assert "(did you mean 'repositories'?)" in line


def test_an_unknown_key_in_a_repository_suggests_the_right_one(tmp_path):
    line = one_error(tmp_path, REPO + "    branch: [main]\n")
    assert ":4:5: error FT101: unknown key 'branch'" in line and "did you mean 'branches'" in line


@pytest.mark.parametrize(
    "text, where, expected",
    [
        ("max_running_jobs: four\n", "1:19", "expected an integer"),
        ("max_running_jobs: 0\n", "1:19", "at least 1"),
        ("executor: kubernetes\n", "1:11", "expected one of: local, backendai"),
        ("repositories: acme/ml\n", "1:15", "expected a list"),
        ("github: [token]\n", "1:9", "expected a mapping"),
    ],
)
def test_wrong_types_name_the_value(tmp_path, text, where, expected):
    body = text if text.startswith("repositories") else text + REPO
    line = one_error(tmp_path, body)
    assert f"ftg.yaml:{where}: error FT100" in line and expected in line


def test_a_watch_that_is_not_a_boolean_is_a_type_error(tmp_path):
    line = one_error(tmp_path, REPO + '    watch: "yes"\n')
    assert ":4:12: error FT100: repositories[0].watch is the string 'yes'; expected true or false" in line


# --- secrets --------------------------------------------------------------------------------

LITERALS = [
    ("github", "webhook_secret"),
    ("github", "token"),
    ("github", "private_key"),
    ("gitlab", "webhook_token"),
    ("gitlab", "token"),
    ("slack", "bot_token"),
    ("slack", "webhook_url"),
    ("backendai", "access_key"),
    ("backendai", "secret_key"),
]


@pytest.mark.parametrize("section, key", LITERALS)
def test_a_secret_written_in_the_file_is_refused_without_showing_it(tmp_path, section, key):
    line = one_error(tmp_path, REPO + f"{section}:\n  {key}: hunter2-literal\n")
    assert f":5:3: error FT401: {section}.{key}: secrets are never written in the configuration; " in line
    assert f"name an environment variable with {key}_env (or a file with {key}_file)" in line
    assert "hunter2" not in line


def test_a_literal_api_token_is_refused_at_the_top_level(tmp_path):
    line = one_error(tmp_path, "api_token: hunter2-literal\n" + REPO)
    assert ":1:1: error FT401: api_token: secrets are never written" in line and "api_token_env" in line
    assert "hunter2" not in line


def test_literal_secrets_and_typos_are_all_reported_at_once(tmp_path):
    lines = errors_of(tmp_path, REPO + "github:\n  token: hunter2-literal\n  tokn_env: X\n")
    assert [line.split(": error ")[1][:5] for line in lines] == ["FT401", "FT101"]


def test_an_unset_variable_is_named_with_its_line(tmp_path):
    line = one_error(tmp_path, REPO + "github:\n  webhook_secret_env: GITHUB_WEBHOOK_SECRET\n")
    assert line == (
        f"{tmp_path}/ftg.yaml:5:23: error FT402: github.webhook_secret_env names GITHUB_WEBHOOK_SECRET, "
        "which is not set (or empty) in the environment of the daemon; set it, or remove the key"
    )


def test_an_empty_variable_counts_as_unset(tmp_path):
    line = one_error(tmp_path, REPO + "slack:\n  bot_token_env: SLACK_BOT_TOKEN\n", {"SLACK_BOT_TOKEN": "  "})
    assert "FT402" in line and ":5:18:" in line


def test_a_token_pasted_into_an_env_key_is_never_echoed(tmp_path):
    token = "ghp_AbCdEf0123456789AbCdEf0123456789abcd"
    line = one_error(tmp_path, REPO + f"github:\n  token_env: {token}\n")
    assert ":5:14: error FT402" in line and "looks like a token itself" in line
    assert token not in line


def test_a_token_that_is_not_a_variable_name_is_never_echoed(tmp_path):
    token = "xoxb-1234-5678-abcdefgh"
    line = one_error(tmp_path, REPO + f"slack:\n  bot_token_env: {token}\n")
    assert ":5:18: error FT100: slack.bot_token_env must be the name of an environment variable" in line
    assert token not in line


def test_an_unreadable_secret_file_names_the_file_and_the_reason(tmp_path):
    line = one_error(tmp_path, REPO + "gitlab:\n  token_file: missing/token\n")
    assert (
        f":5:15: error FT403: gitlab.token_file: cannot read {tmp_path}/missing/token: No such file or directory"
        in line
    )


def test_a_secret_file_that_is_a_folder_or_empty_is_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty").write_text("\n")
    lines = errors_of(tmp_path, REPO + "gitlab:\n  token_file: folder\n  webhook_token_file: empty\n")
    assert ["FT403" in line for line in lines] == [True, True]
    assert "not a regular file" in lines[0] and f"{tmp_path}/empty is empty" in lines[1]


def test_a_secret_file_under_a_file_gives_the_os_reason(tmp_path):
    line = one_error(tmp_path, REPO + "gitlab:\n  token_file: ftg.yaml/token\n")
    assert f"cannot read {tmp_path}/ftg.yaml/token: Not a directory" in line


def test_a_secret_file_that_is_not_text_is_refused_without_showing_it(tmp_path):
    (tmp_path / "key.bin").write_bytes(b"\xff\xfes3cr3tbytes")
    line = one_error(tmp_path, REPO + "gitlab:\n  token_file: key.bin\n")
    assert "key.bin is not UTF-8 text" in line and "s3cr3t" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_secret_file_without_permission_says_so(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text(PEM)
    key.chmod(0)
    line = one_error(tmp_path, REPO + "github:\n  app_id: 1\n  private_key_file: app.pem\n")
    assert ":6:21: error FT403" in line and "Permission denied" in line


def test_a_secret_named_both_ways_is_refused(tmp_path):
    (tmp_path / "t").write_text("x")
    line = one_error(tmp_path, REPO + "gitlab:\n  token_env: T\n  token_file: t\n", {"T": "value"})
    assert ":6:3: error FT410: gitlab.token_file and token_env both name the token; keep one" in line


def test_a_github_app_needs_its_key_and_its_id(tmp_path):
    assert "github.app_id needs the App's private key" in one_error(tmp_path, REPO + "github:\n  app_id: 7\n")
    line = one_error(tmp_path, REPO + "github:\n  private_key_env: KEY\n", {"KEY": PEM})
    assert ":5:3: error FT410: github.private_key_env is the key of a GitHub App: add app_id" in line


def test_a_password_in_a_repository_url_is_refused_without_showing_it(tmp_path):
    line = one_error(tmp_path, "repositories:\n  - name: a/b\n    url: https://bot:hunter2pw@git.example.com/a/b\n")
    assert ":3:10: error FT401: repositories[0].url holds a password" in line
    assert "hunter2pw" not in line


def test_no_secret_value_appears_in_any_diagnostic(tmp_path):
    (tmp_path / "hook").write_text("file-s3cret\n")
    environ = {"GITHUB_TOKEN": "ghp_set_but_config_is_broken", "SLACK": "xoxb-slack-value"}
    lines = errors_of(
        tmp_path,
        "listen: bad\n" + REPO + "github:\n  token_env: GITHUB_TOKEN\n"
        "  webhook_secret_file: hook\n  app_id: 1\nslack:\n  bot_token_env: SLACK\n"
        "  webhook_url_env: UNSET\nbackendai:\n  access_key_env: SLACK\n",
        environ,
    )
    text = "\n".join(lines)
    assert [line.split(": error ")[1][:5] for line in lines] == ["FT406", "FT410", "FT402", "FT410"]
    for secret in (*environ.values(), "file-s3cret"):
        assert secret not in text


# --- ${VAR} ---------------------------------------------------------------------------------


def test_an_unset_reference_is_named_at_its_value(tmp_path):
    line = one_error(tmp_path, "state_dir: ${DATA_ROOT}/ftg\n" + REPO)
    assert line == (
        f"{tmp_path}/ftg.yaml:1:12: error FT404: state_dir: ${{DATA_ROOT}} is not set in the environment; "
        "set it or write the value"
    )


def test_an_unset_reference_is_not_reported_again_as_a_bad_value(tmp_path):
    line = one_error(tmp_path, "listen: ${LISTEN}\n" + REPO)
    assert "FT404" in line and "FT406" not in line


def test_a_set_reference_is_expanded_relative_paths_included(tmp_path):
    config, found = load_config(
        config_file(tmp_path, "state_dir: ${ROOT}/ftg\nlisten: ${HOST}:80\n" + REPO),
        {"ROOT": "data", "HOST": "0.0.0.0"},
    )
    assert found == []
    assert (config.state_dir, config.host) == (tmp_path / "data" / "ftg", "0.0.0.0")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("${A}", "1"),
        ("x${A}y${B}", "x1y2"),
        ("$$", "$"),
        ("$${A}", "${A}"),
        ("$A", "$A"),
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_expand(text, expected):
    assert expand(text, {"A": "1", "B": "2"}) == expected


@pytest.mark.parametrize(
    "text, problem",
    [
        ("${UNSET}", "${UNSET} is not set"),
        ("${1X}", "does not name a variable"),
        ("${", "is not closed"),
        ("${}", "does not name a variable"),
    ],
)
def test_expand_refuses(text, problem):
    with pytest.raises(ValueError, match=problem.replace("$", r"\$").replace("{", r"\{")):
        expand(text, {})


# --- meaning --------------------------------------------------------------------------------


def test_a_duplicate_repository_points_at_the_second_and_names_the_first(tmp_path):
    line = one_error(tmp_path, REPO + "  - name: ACME/ML\n    url: /srv/git/other\n")
    assert ":4:11: error FT405: repository 'ACME/ML' is listed twice (first on line 2;" in line


@pytest.mark.parametrize(
    "listen, problem",
    [
        ("localhost", "it has no port"),
        ("::1:8080", "written in brackets"),
        ("[::1]8080", "[address]:port"),
        ("[nothost]:80", "not an IPv6 address"),
        ("host:99999", "not a number from 0 to 65535"),
        ("host:http", "not a number from 0 to 65535"),
        ("bad host:80", "not a host name or address"),
    ],
)
def test_a_bad_listen_address_says_why(tmp_path, listen, problem):
    line = one_error(tmp_path, f'listen: "{listen}"\n' + REPO)
    assert ":1:9: error FT406: listen is" in line and problem in line and "write host:port" in line


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:80", ("::1", 80)),
        (":8080", ("0.0.0.0", 8080)),
        ("ftg.internal:0", ("ftg.internal", 0)),
    ],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "url, kind",
    [
        ("/srv/git/ml", "local"),
        ("git/ml", "local"),
        ("./a:b", "local"),
        ("file:///srv/git/ml", "local"),
        ("https://github.com/acme/ml.git", "remote"),
        ("ssh://git@host:2222/acme/ml", "remote"),
        ("git@github.com:acme/ml.git", "remote"),
        ("http://git.internal/ml", "remote"),
        ("ftp://host/ml", None),
        ("https://", None),
        ("https://host:port/x", None),
        ("file://otherhost/x", None),
    ],
)
def test_url_kind(url, kind):
    assert url_kind(url) == kind


def test_a_bad_url_says_which_forms_work(tmp_path):
    line = one_error(tmp_path, "repositories:\n  - name: a/b\n    url: ftp://host/x\n")
    assert ":3:10: error FT407: repositories[0].url is 'ftp://host/x'; write a local path" in line


def test_watch_on_a_remote_repository_is_refused(tmp_path):
    line = one_error(tmp_path, "repositories:\n  - name: a/b\n    url: git@github.com:a/b.git\n    watch: true\n")
    assert ":4:12: error FT408: repositories[0].watch is true, but git@github.com:a/b.git is not a local" in line


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("shutdown_grace: 30 s\n", "1:17", "shutdown_grace is '30 s'; write seconds, or a duration"),
        ("shutdown_grace: 400d\n", "1:17", "more than a year"),
        ("webhook_max_body: 5 MB\n", "1:19", "webhook_max_body is '5 MB'; write a size"),
        ("webhook_max_body: 0\n", "1:19", "webhook_max_body is 0; write a size"),
    ],
)
def test_bad_durations_and_sizes(tmp_path, text, where, problem):
    line = one_error(tmp_path, text + REPO)
    assert f":{where}: error FT409: " in line and problem in line


def test_a_poll_interval_under_a_second_is_refused(tmp_path):
    line = one_error(tmp_path, REPO + "    poll_interval: 500ms\n")
    assert ":4:20: error FT409: repositories[0].poll_interval is '500ms'; it must be at least 1s" in line


def test_a_public_url_must_be_http(tmp_path):
    line = one_error(tmp_path, "public_url: ftg.example.com\n" + REPO)
    assert ":1:13: error FT411: public_url is 'ftg.example.com'; write an http:// or https:// URL" in line


def test_a_provider_needs_its_owner_repo_name(tmp_path):
    line = one_error(tmp_path, "repositories:\n  - name: ml\n    url: /x\n    provider: github\n")
    assert ":2:11: error FT412: repositories[0].name is 'ml'; a GitHub repository is named owner/repo" in line


def test_a_github_repository_without_a_github_section_is_fine(tmp_path):
    config, found = load_config(config_file(tmp_path, REPO + "    provider: github\n"), {})
    assert found == [] and config.github is None


def test_the_backendai_executor_without_keys_points_at_executor(tmp_path):
    line = one_error(tmp_path, "executor: backendai\n" + REPO, {"BACKEND_ENDPOINT": "https://api.backend.ai"})
    assert ":1:11: error FT410: executor is backendai, but there is no access key" in line
    assert "BACKEND_ACCESS_KEY" in line and "BACKEND_SECRET_KEY" in line and "endpoint" not in line.split("no ")[1]


def test_an_unset_backendai_key_variable_is_reported_once_at_its_key(tmp_path):
    line = one_error(
        tmp_path,
        "executor: backendai\n" + REPO + "backendai:\n  endpoint: https://m\n  access_key_env: MY_ACCESS\n",
        {"BACKEND_SECRET_KEY": "SK"},
    )
    assert ":7:19: error FT402: backendai.access_key_env names MY_ACCESS" in line


def test_every_problem_of_a_schema_valid_file_is_reported_at_once(tmp_path):
    lines = errors_of(
        tmp_path,
        "listen: x\nshutdown_grace: soon\npublic_url: ftp://x\n" + REPO + "    watch: false\n"
        "  - name: acme/ml\n    url: https://h/x\n    watch: true\n",
    )
    assert [line.split(": error ")[1][:5] for line in lines] == ["FT406", "FT409", "FT411", "FT405", "FT408"]


@pytest.mark.parametrize(
    "name, secret",
    [
        ("GITHUB_TOKEN", False),
        ("ghp_x", True),
        ("github_pat_11AB", True),
        ("xoxb", True),
        ("aB3dEfGh1jKlMnOp2rStUvWx9z", True),
    ],
)
def test_looks_like_secret(name, secret):
    assert looks_like_secret(name) is secret
