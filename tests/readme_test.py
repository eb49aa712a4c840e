"""README.md is the manual: its code table and set-up commands must match the program."""

from __future__ import annotations

import re

from conftest import PROJECT

from fasttrack_gitops.pipeline.diagnostics import CODES

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
