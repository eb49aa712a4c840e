"""Reading the configuration file: every diagnostic at once, the file's own problems, and the schema's."""

from __future__ import annotations

import pytest
from daemon.config_test import REPO, config_file, errors_of, one_error

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.daemon.config_loading import load_config, read_config


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
