"""README.md is the manual: its code table and set-up commands must match the program."""

from __future__ import annotations

import re

from conftest import PROJECT

from fasttrack_gitops.core.pipeline.diagnostics import CODES

README = (PROJECT / "README.md").read_text(encoding="utf-8")


def test_every_diagnostic_code_is_documented_with_its_severity():
    documented = dict(re.findall(r"^\| (FT\d{3}) \| (error|warning) \|", README, re.MULTILINE))
    assert documented == {code: severity for code, (severity, _) in CODES.items()}


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest" in README
    assert ".venv/bin/python -m pytest" in ci
    assert ".venv/bin/fasttrack-gitops run examples-repo/pipelines/train-compare.yaml" in README
    assert ".venv/bin/fasttrack-gitops run examples-repo/pipelines/train-compare.yaml" in ci


def test_the_daemon_configuration_shown_in_the_readme_is_valid(tmp_path):
    """The README's `serve` configuration passes `serve --check` (its secrets named, as a reader would set them)."""
    from fasttrack_gitops.daemon.config_loading import load_config

    text = (PROJECT / "README.md").read_text()
    block = text[text.index("## The daemon") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "ftg.yaml").write_text(block)
    environ = dict.fromkeys(
        (
            "GITHUB_WEBHOOK_SECRET",
            "GITHUB_TOKEN",
            "GITLAB_WEBHOOK_TOKEN",
            "GITLAB_TOKEN",
            "SLACK_BOT_TOKEN",
            "BACKEND_ACCESS_KEY",
            "BACKEND_SECRET_KEY",
            "FTG_API_TOKEN",
            "FTG_READ_TOKEN",
            "FTG_SIGNING_SECRET",
        ),
        "set",
    )
    config, diagnostics = load_config(tmp_path / "ftg.yaml", environ)
    assert config is not None and diagnostics == [], diagnostics
    assert config.repositories[0].name == "acme/ml-pipelines"


def test_the_layout_names_every_module_and_package():
    """README's Layout is the map a newcomer reads first: a module or package it does not name is a missing room."""
    start = README.index("## Layout")
    fence = README.index("```\n", start)
    layout = README[fence : README.index("```\n", fence + 4)]
    named = set(re.findall(r"\w+", layout))
    package = PROJECT / "fasttrack_gitops"
    missing = [
        path.relative_to(package).as_posix()
        for path in sorted(package.rglob("*.py"))
        if (path.parent.name if path.stem in ("__init__", "__main__") else path.stem) not in named
    ]
    assert missing == []


def test_architecture_names_only_modules_that_exist():
    """Every `dir/module.py` path ARCHITECTURE.md names is in the package, so the page cannot drift from the tree."""
    text = (PROJECT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    package = PROJECT / "fasttrack_gitops"
    named = set(re.findall(r"`((?:core|engine|daemon|ci|commands)/[\w/]*?)`", text))
    assert named, "ARCHITECTURE.md names no module"
    gone = sorted(p for p in named if not (package / p).exists() and not (package / p).with_suffix(".py").exists())
    assert gone == []
