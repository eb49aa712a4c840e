"""Fuzz: parameter values as people send them (--param, a request's `params`, /fasttrack run) and the import of
a FastTrack export (core/pipeline/params.py, fasttrack_export.py).

Invariants: any input gives values or a ParamError / NotAnExport saying what to fix, never a traceback.
"""

from __future__ import annotations

import yaml
from conftest import DATA
from fuzz.mutations import JSON, mutated
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.fasttrack_export import GITOPS_KEY, NotAnExport, export, from_export
from fasttrack_gitops.core.pipeline.params import ParamError, from_request, parse_assignments, parse_lines

EXPORTS = [yaml.safe_load(path.read_bytes()) for path in sorted((DATA / "fasttrack-examples").glob("*.yaml"))]


@given(texts=st.lists(st.text(max_size=20), max_size=5), lines=st.text(max_size=80), value=JSON)
def test_any_parameter_text_or_request_gives_values_or_a_param_error(texts, lines, value):
    for call in (lambda: parse_assignments(texts), lambda: parse_lines(lines, where="f"), lambda: from_request(value)):
        try:
            call()
        except ParamError as e:
            assert str(e)


def exported(document: dict) -> dict:
    """A real FastTrack pipeline exported by us and read back: it carries the section import reads."""
    result = check_pipeline(yaml.safe_dump(document).encode(), "p.yaml")
    return export(result.pipeline) if result.ok else document


@given(document=st.sampled_from(EXPORTS).flatmap(mutated))
def test_any_changed_export_imports_or_says_it_is_not_one(document):
    try:
        from_export(document, file="x.yaml")
    except NotAnExport as e:
        assert "x.yaml" in str(e)


# The section export writes (x-fasttrack-gitops: replaced, tasks by name), each part any value or shaped like it.
TASK_EXTRA = st.fixed_dictionaries({}, optional=dict.fromkeys(("shipped", "type", "service", "cache", "x"), JSON))
SECTIONS = JSON | st.fixed_dictionaries(
    {},
    optional={
        "replaced": JSON | st.fixed_dictionaries({}, optional={"version": JSON, "ownership": JSON}),
        "tasks": JSON
        | st.dictionaries(
            st.sampled_from(sorted({t["name"] for d in EXPORTS for t in d["tasks"]} | {"x"})),
            JSON | TASK_EXTRA,
            max_size=3,
        ),
    },
)


@given(section=SECTIONS)
def test_any_section_of_ours_in_an_export_imports_or_says_it_is_not_one(section):
    for document in EXPORTS:
        try:
            from_export({**document, GITOPS_KEY: section}, file="x.yaml")
        except NotAnExport as e:
            assert "x.yaml" in str(e)
