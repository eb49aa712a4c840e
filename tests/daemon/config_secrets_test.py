"""Secrets in the configuration: never written as values, resolved from variables and files, never shown."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import console_script, without_root_privilege
from daemon.config_test import PEM, REPO, config_file, errors_of, one_error

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


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_secret_file_without_permission_says_so(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text(PEM)
    key.chmod(0)
    config = config_file(tmp_path, REPO + "github:\n  app_id: 1\n  private_key_file: app.pem\n")
    # In a process of its own, so that one run as root can be one that cannot read a chmod 000 file.
    argv = without_root_privilege([console_script(), "serve", "--config", str(config), "--check"])
    checked = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert (
        f"{config}:6:21: error FT403: github.private_key_file: cannot read {key}: Permission denied" in checked.stderr
    )


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


def test_the_signing_secret_is_named_never_written_and_never_shown(tmp_path):
    from fasttrack_gitops.daemon.config_loading import load_config

    line = one_error(tmp_path, "signing_secret: hunter2-literal\n" + REPO)
    assert ":1:1: error FT401: signing_secret: secrets are never written" in line and "signing_secret_env" in line
    assert "hunter2" not in line
    text = "signing_secret_env: FTG_SIGNING\noutputs_max_size: 2m\n" + REPO
    config, found = load_config(config_file(tmp_path, text), {"FTG_SIGNING": "sign-hunter2"})
    assert config is not None and found == []
    assert (config.signing_secret, config.outputs_max_size) == ("sign-hunter2", 2 * 1024 * 1024)
    assert "hunter2" not in repr(config) and "sign-hunter2" in config.secret_values()
    default, _ = load_config(config_file(tmp_path, REPO), {})
    assert default is not None and (default.signing_secret, default.outputs_max_size) == (None, 50 * 1024 * 1024)
    assert "outputs_max_size is '0'" in one_error(tmp_path, "outputs_max_size: '0'\n" + REPO)
