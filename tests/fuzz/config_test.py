"""Fuzz: the daemon's configuration file (daemon/config_loading.py: load, check, resolve).

Invariant: any file gives a configuration or diagnostics (file, line, code), never a traceback: the shipped
example and a full configuration with values replaced, removed or added, mangled bytes, and environment
variables of any value for the `${VAR}` and `*_env` keys.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import yaml
from conftest import PROJECT
from daemon.config_test import FULL, SECRETS
from fuzz.mutations import mangled, mutated
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.daemon.config_loading import load_config

SEEDS = [FULL.encode(), (PROJECT / "deploy" / "serve.yaml").read_bytes()]
DOCUMENTS = [yaml.safe_load(raw) for raw in SEEDS]
CHANGING = ("BRANCH", "GIT_ROOT", "GHE", "GITHUB_TOKEN", "FTG_API_TOKEN")
ENVIRON = st.fixed_dictionaries(
    {name: st.just(value) for name, value in SECRETS.items() if name not in CHANGING},
    optional={name: st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30) for name in CHANGING},
)


def loaded(raw: bytes, environ: dict) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "ftg.yaml"
        path.write_bytes(raw)
        config, found = load_config(path, environ)
    assert config is not None or found
    for d in found:
        assert d.code and d.message and d.line >= 1


@given(document=st.sampled_from(DOCUMENTS).flatmap(mutated), environ=ENVIRON)
def test_a_configuration_with_values_changed_loads_or_says_why(document, environ):
    loaded(yaml.safe_dump(document, allow_unicode=True).encode(), environ)


@given(raw=st.sampled_from(SEEDS).flatmap(mangled), environ=ENVIRON)
def test_a_configuration_with_mangled_bytes_loads_or_says_why(raw, environ):
    loaded(raw, environ)
