"""What a schema cannot judge: ${VAR} references, addresses, URLs, durations, names and settings that go together."""

from __future__ import annotations

import pytest
from daemon.config_test import REPO, config_file, errors_of, one_error

from fasttrack_gitops.daemon.config_loading import load_config

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
