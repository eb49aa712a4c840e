"""`fasttrack-gitops serve --check` and `schema config`, as an operator runs them before starting the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fasttrack_gitops.cli import main

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

VALID = """\
state_dir: state
listen: 127.0.0.1:9000
repositories:
  - name: acme/ml
    url: /srv/git/ml
  - name: acme/remote
    url: https://github.com/acme/remote.git
    provider: github
github:
  webhook_secret_env: GITHUB_WEBHOOK_SECRET
api_token_env: FTG_API_TOKEN
"""
SECRET_VALUES = {"GITHUB_WEBHOOK_SECRET": "hook-s3cret-value", "FTG_API_TOKEN": "api-t0ken-value"}

INVALID = """\
listen: nowhere
repositories:
  - name: acme/ml
    url: /srv/git/ml
github:
  token: hunter2-literal
  webhook_secret_env: GITHUB_WEBHOOK_SECRET
"""


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def valid(tmp_path, secrets) -> Path:
    path = tmp_path / "ftg.yaml"
    path.write_text(VALID)
    return path


@pytest.fixture
def invalid(tmp_path) -> Path:
    path = tmp_path / "ftg.yaml"
    path.write_text(INVALID)
    return path


def test_check_of_a_valid_configuration_prints_a_summary_and_exits_0(capsys, valid, tmp_path):
    code, out, err = cli(capsys, "serve", "--config", str(valid), "--check")
    assert (code, err) == (0, "")
    assert out == (
        f"config OK: 2 repositories, executor local, listening on 127.0.0.1:9000, state in {tmp_path / 'state'}\n"
    )


def test_the_configuration_may_come_from_ftg_config(capsys, valid, monkeypatch):
    monkeypatch.setenv("FTG_CONFIG", str(valid))
    code, out, _ = cli(capsys, "serve", "--check")
    assert code == 0 and out.startswith("config OK: 2 repositories")


def test_check_in_json_describes_the_configuration_without_secrets(capsys, valid, tmp_path):
    code, out, err = cli(capsys, "serve", "--config", str(valid), "--check", "--format", "json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["valid"] is True and result["diagnostics"] == []
    assert (result["listen"], result["executor"], result["state_dir"]) == (
        "127.0.0.1:9000",
        "local",
        str(tmp_path / "state"),
    )
    assert [r["name"] for r in result["repositories"]] == ["acme/ml", "acme/remote"]
    assert result["repositories"][1]["poll_interval"] == 60.0
    assert result["integrations"] == {"github": True, "gitlab": False, "slack": False, "backendai": False}
    assert result["api_token"] is True
    for secret in SECRET_VALUES.values():
        assert secret not in out


def test_an_invalid_configuration_is_reported_by_line_and_nothing_starts(capsys, invalid):
    code, out, err = cli(capsys, "serve", "--config", str(invalid), "--check")
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert (
        lines[0] == f"{invalid}:6:3: error FT401: github.token: secrets are never written in the configuration; "
        "name an environment variable with token_env (or a file with token_file)"
    )
    assert lines[-1] == "error: the configuration is not valid; nothing was started"
    assert "Traceback" not in err and "hunter2" not in err


def test_without_check_an_invalid_configuration_starts_nothing_either(capsys, invalid):
    invalid.write_text(INVALID.replace("  token: hunter2-literal\n", ""))
    code, out, err = cli(capsys, "serve", "--config", str(invalid))
    assert (code, out) == (2, "")
    assert f"{invalid}:1:9: error FT406: listen is 'nowhere'" in err
    assert f"{invalid}:6:23: error FT402: github.webhook_secret_env names GITHUB_WEBHOOK_SECRET" in err
    assert err.endswith("error: the configuration is not valid; nothing was started\n")
    assert "Traceback" not in err


def test_check_in_json_of_an_invalid_configuration_lists_the_diagnostics(capsys, invalid):
    code, out, err = cli(capsys, "serve", "--config", str(invalid), "--check", "--format", "json")
    assert code == 2
    result = json.loads(out)
    assert result["valid"] is False
    assert [(d["code"], d["line"]) for d in result["diagnostics"]] == [("FT401", 6)]
    assert "hunter2" not in out + err


def test_a_missing_configuration_file_is_one_line_and_exit_2(capsys, tmp_path):
    code, out, err = cli(capsys, "serve", "--config", str(tmp_path / "nope.yaml"), "--check")
    assert (code, out) == (2, "")
    assert err == f"error: {tmp_path / 'nope.yaml'}: no such configuration file\n"


def test_no_configuration_at_all_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("FTG_CONFIG", raising=False)
    code, out, err = cli(capsys, "serve", "--check")
    assert (code, out) == (2, "")
    assert err == "error: no configuration: pass --config FILE or set FTG_CONFIG\n"


def test_a_folder_is_not_a_configuration(capsys, tmp_path):
    code, _, err = cli(capsys, "serve", "--config", str(tmp_path), "--check")
    assert code == 2 and "is a folder" in err and len(err.splitlines()) == 1


def test_serve_has_help(capsys):
    code, out, err = cli(capsys, "serve", "--help")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: fasttrack-gitops serve ")
    assert "--config FILE" in out and "--check" in out


# --- schema config ----------------------------------------------------------------------------


def test_schema_config_prints_the_configuration_schema(capsys):
    code, out, err = cli(capsys, "schema", "config")
    assert (code, err) == (0, "")
    assert out == (SCHEMAS / "config.schema.json").read_text(encoding="utf-8")
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://") and schema["$id"].endswith("config.schema.json")
    assert {"repositories", "listen", "state_dir", "github"} <= set(schema["properties"])


def test_the_packaged_schema_is_the_repository_file():
    packaged = Path(__file__).resolve().parents[2] / "fasttrack_gitops" / "schemas" / "config.schema.json"
    assert packaged.is_symlink() and packaged.resolve() == (SCHEMAS / "config.schema.json").resolve()


def _undocumented(node, where: str = "$") -> list[str]:
    """Every property (at any depth) lacking a title or a description for editors to show."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            missing += [f"{where}.{name}: no {key}" for key in ("title", "description") if not prop.get(key)]
        for key, value in node.items():
            missing += _undocumented(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += _undocumented(value, f"{where}[{i}]")
    return missing


def test_every_configuration_property_has_a_title_and_a_description(capsys):
    _, out, _ = cli(capsys, "schema", "config")
    assert _undocumented(json.loads(out)) == []


def test_every_secret_key_of_the_loader_is_in_the_schema_both_ways(capsys):
    from fasttrack_gitops.daemon.config_secrets import SECRETS

    schema = json.loads(cli(capsys, "schema", "config")[1])
    for section, names in SECRETS.items():
        properties = schema["properties"][section[0]]["properties"] if section else schema["properties"]
        for name in names:
            assert {f"{name}_env", f"{name}_file"} <= set(properties), (section, name)
            assert name not in properties


def test_check_loads_no_server_or_network_stack(valid):
    code = textwrap.dedent(f"""
        import json, sys
        from fasttrack_gitops.cli import main
        code = main(["serve", "--config", {str(valid)!r}, "--check"])
        print("MODULES=" + json.dumps(sorted(sys.modules)))
        sys.exit(code)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout.split("MODULES=")[1])}
    assert loaded.isdisjoint({"httpx", "uvicorn", "starlette", "dulwich", "watchfiles"}), sorted(loaded)
