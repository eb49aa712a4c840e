"""SECURITY.md names a test for each claim: every one it names exists, and README links to it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"`(tests/[\w/]+_test\.py)::(test_\w+)`")


def test_every_test_security_md_names_exists():
    text = (ROOT / "SECURITY.md").read_text()
    named = NAMED.findall(text)
    assert len(named) >= 30, "SECURITY.md names the tests that check its claims"
    missing = []
    for path, name in sorted(set(named)):
        source = ROOT / path
        tree = ast.parse(source.read_text()) if source.is_file() else ast.Module(body=[], type_ignores=[])
        if name not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert missing == []
    # the endpoints it lists are the routes the endpoints test enumerates from the app
    assert "tests/security/endpoints_test.py::test_every_route_refuses" in text


def test_readme_links_to_security_md():
    assert "(SECURITY.md)" in (ROOT / "README.md").read_text()
