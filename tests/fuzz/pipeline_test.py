"""Fuzz: the pipeline loader, its schema and meaning checks (core/pipeline: check_pipeline).

Invariant: any bytes give a CheckResult (a pipeline, or diagnostics naming file, line and code), never a
traceback, within the 2 s deadline: real pipelines with values replaced, removed or added, mangled bytes, and
text of any kind.
"""

from __future__ import annotations

import yaml
from conftest import DATA, EXAMPLES_REPO
from fuzz.mutations import mangled, mutated
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline import check_pipeline

FILES = sorted((EXAMPLES_REPO / "pipelines").glob("*.yaml")) + sorted((DATA / "fasttrack-examples").glob("*.yaml"))
RAW = [path.read_bytes() for path in FILES]
DOCUMENTS = [yaml.safe_load(raw) for raw in RAW]


def checked(raw: bytes) -> None:
    result = check_pipeline(raw, "pipelines/fuzz.yaml")
    assert result.ok or result.diagnostics
    for d in result.diagnostics:
        assert d.code and d.message and d.line >= 1


@given(document=st.sampled_from(DOCUMENTS).flatmap(mutated))
def test_a_real_pipeline_with_values_changed_gives_a_result(document):
    checked(yaml.safe_dump(document, allow_unicode=True).encode())


@given(raw=st.sampled_from(RAW).flatmap(mangled))
def test_a_real_pipeline_with_mangled_bytes_gives_a_result(raw):
    checked(raw)


@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_bytes_give_a_result(raw):
    checked(raw)
