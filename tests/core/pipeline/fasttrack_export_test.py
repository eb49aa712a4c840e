"""The round trip with the FastTrack GUI, as properties: import(export(p)) == p and export(import(f)) == f.

p ranges over every pipeline of examples-repo, every pipeline file the
tests write (module-level pipeline texts in tests/**), and pipelines
Hypothesis makes up; f over the two real exports (tests/data/fasttrack-examples),
one per FastTrack release shape. "Normalised" means as the model reads a
file: the checked Pipeline, with every default filled in.
"""

from __future__ import annotations

import ast

import pytest
import yaml
from conftest import PROJECT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.fasttrack_export import (
    GITOPS_KEY,
    NEW,
    OLD,
    NotAnExport,
    export,
    from_export,
    secret_literals,
    shape_of,
    to_yaml,
)
from fasttrack_gitops.core.pipeline.model import Pipeline, to_fasttrack

REAL_EXPORTS = sorted((PROJECT / "tests/data/fasttrack-examples").glob("*.yaml"))
TARGETS = [None, "25.6.5.post2", "26.4.4rc6", "24.09"]


def read(text: str, file: str = "p.yaml") -> Pipeline:
    result = check_pipeline(text.encode(), file)
    assert result.pipeline is not None, [d.message for d in result.diagnostics if d.is_error]
    return result.pipeline


def round_trip(p: Pipeline, target: str | None, trees: dict[str, str] | None = None) -> tuple[Pipeline, dict]:
    """import(export(p)): the export written as YAML, read back as a GUI file, undone, and checked."""
    exported = yaml.safe_load(to_yaml(export(p, target_version=target, code_trees=trees)))
    return read(to_yaml(from_export(exported))), exported


def test_pipeline_texts_of_the_tests() -> None:
    assert len(TEST_PIPELINES) >= 15, "the scan should find the pipelines the tests write"


def _test_pipelines() -> list[tuple[str, str]]:
    """(where, text) of every module-level pipeline text in the tests that is a valid pipeline as it stands."""
    found = []
    for path in sorted((PROJECT / "tests").rglob("*_test.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                text = node.value.value
                pipeline_text = isinstance(text, str) and "\ntasks:" in text and "version:" in text
                if pipeline_text and check_pipeline(text.encode(), "p.yaml").pipeline is not None:
                    found.append((f"{path.relative_to(PROJECT)}:{node.lineno}", text))
    return found


TEST_PIPELINES = _test_pipelines()
FILES = [
    (str(p.relative_to(PROJECT)), p.read_text(encoding="utf-8"))
    for p in sorted((PROJECT / "examples-repo/pipelines").glob("*.yaml"))
]
FILES += [(str(p.relative_to(PROJECT)), p.read_text(encoding="utf-8")) for p in REAL_EXPORTS] + TEST_PIPELINES


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("where", "text"), FILES, ids=[w for w, _ in FILES])
def test_import_of_export_is_the_pipeline(where, text, target):
    p = read(text, where)
    trees = {t.name: f"{i:040x}" for i, t in enumerate(p.tasks) if t.code}
    for shipped in (None, trees):
        again, exported = round_trip(p, target, shipped)
        assert again == p
        shape = shape_of(target or p.version)
        for task in exported["tasks"]:
            assert task["type"] in (shape.custom_type, shape.service_type)
            assert not set(task) & {"code", "timeout", "cache", "metrics", "plots", "artifacts"}
        assert not set(exported) & {"on", "concurrency", "notify"}
        if shipped and trees:
            first = next(t for t in exported["tasks"] if t["name"] in trees and t.get("command"))
            assert first["command"].startswith(f"cd /pipeline/vfroot/fasttrack-gitops/code/{trees[first['name']]} ||")


@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name)
def test_export_of_import_is_the_real_export(path):
    original = yaml.safe_load(path.read_text(encoding="utf-8"))
    imported, replaced = secret_literals(from_export(original, file=path.name))
    p = read(to_yaml(imported))
    exported = export(p)

    # normalised: the real file read by the model (its literal secrets as references, as import writes them)
    expected = to_fasttrack(read(to_yaml(secret_literals(original)[0])))
    assert exported == expected and GITOPS_KEY not in exported
    assert exported["ownership"] == original["ownership"]  # the release's own words, untouched
    assert [t["type"] for t in exported["tasks"]] == [t["type"] for t in original["tasks"]]
    assert replaced == (["HF_TOKEN (environment.envs)"] if "torchtune" in path.name else [])


def test_the_two_real_exports_show_the_two_shapes():
    old, new = (
        yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(REAL_EXPORTS, key=lambda p: "docs" in p.name)
    )
    assert (
        shape_of(old["version"]) == OLD
        and "domain_name" in old["ownership"]
        and old["tasks"][0]["type"] == OLD.custom_type
    )
    assert shape_of(new["version"]) == NEW and "domain" in new["ownership"]
    assert {t["type"] for t in new["tasks"]} == {NEW.custom_type, NEW.service_type}


def test_an_export_for_another_release_uses_its_words_and_import_restores_the_file():
    docs_rag = read((PROJECT / "tests/data/fasttrack-examples/docs-rag.yaml").read_text(encoding="utf-8"))
    older = export(docs_rag, target_version="25.6.5")
    assert older["version"] == "25.6.5"
    assert older["ownership"] == {"domain_name": "default", "scope": "personal"}
    assert [t["type"] for t in older["tasks"]][-2:] == ["serving", "serving"]
    assert older[GITOPS_KEY]["replaced"] == {
        "version": "26.4.4rc6",
        "ownership": {"domain": "default", "scope": "user"},
    }
    assert read(to_yaml(from_export(older))) == docs_rag


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2], "its top level is not a mapping"),
        ("text", "its top level is not a mapping"),
        ({"name": "x"}, "it has no version, tasks"),
        ({"version": 1, "name": "x", "tasks": "all"}, "'tasks' is not a list of tasks with names"),
        ({"version": 1, "name": "x", "tasks": [{"command": "x"}]}, "'tasks' is not a list of tasks with names"),
        ({"version": 1, "name": "x", "tasks": [], GITOPS_KEY: [1]}, f"{GITOPS_KEY} is not a mapping"),
    ],
)
def test_a_document_that_is_not_a_fasttrack_export_is_refused(data, says):
    with pytest.raises(NotAnExport, match=says):
        from_export(data, file="f.yaml")


def test_secret_looking_literals_become_references_and_are_named_never_their_values():
    data = {
        "environment": {"envs": {"HF_TOKEN": "hf_abc", "MAX_TOKENS": "10", "API_KEY": "${{ secrets.API_KEY }}"}},
        "tasks": [{"name": "a", "environment": {"envs": {"DB_PASSWORD": "hunter2", "EMPTY_TOKEN": ""}}}],
    }
    out, places = secret_literals(data)
    assert out["environment"]["envs"] == {
        "HF_TOKEN": "${{ secrets.HF_TOKEN }}",
        "MAX_TOKENS": "10",
        "API_KEY": "${{ secrets.API_KEY }}",
    }
    assert out["tasks"][0]["environment"]["envs"]["DB_PASSWORD"] == "${{ secrets.DB_PASSWORD }}"
    assert places == ["HF_TOKEN (environment.envs)", "DB_PASSWORD (task a)"]
    assert "hf_abc" not in str(places) and data["environment"]["envs"]["HF_TOKEN"] == "hf_abc"  # the input is untouched


# -- generated pipelines ----------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
# No "${{": anywhere but a secret reference it makes the file invalid (FT110), and hypothesis draws it from the
# string constants of the modules loaded when the test runs (semantics.py's), so whether it came up depended on
# which modules other tests had imported before.
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20).filter(
    lambda s: "${{" not in s
)
COMMANDS = st.one_of(st.none(), TEXT.filter(bool), st.lists(TEXT, min_size=2, max_size=3).map("\n".join))


@st.composite
def pipelines(draw) -> str:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    tasks = []
    for i, name in enumerate(names):
        task: dict = {"name": name, "type": draw(st.sampled_from(["custom", "Custom Task"]))}
        task["dependencies"] = draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        task["command"] = draw(COMMANDS) or "true"
        if draw(st.booleans()):
            task["code"] = draw(st.sampled_from(["tasks/a", "tasks/b", "src"]))
        if draw(st.booleans()):
            task["timeout"] = draw(st.sampled_from(["5m", 30, "1h30m"]))
        if draw(st.booleans()):
            task["cache"] = draw(st.sampled_from([True, False, {"paths": ["data/**"]}]))
        if draw(st.booleans()):
            task["environment"] = {"image": "python:3.11", "envs": {"STAGE": draw(TEXT)}}
        if draw(st.booleans()):
            task["resources"] = {
                "cpu": draw(st.sampled_from([1, 2, 0.5])),
                "mem": draw(st.sampled_from(["1g", "512m"])),
            }
        if draw(st.booleans()):
            task["retry"] = {"max_attempts": draw(st.integers(1, 4)), "delay": draw(st.sampled_from([0, 5, "1m"]))}
        tasks.append(task)
    data: dict = {
        "version": draw(st.sampled_from(["25.6.5.post2", "26.4.4", "26.4.4rc6", 1])),
        "name": draw(NAMES),
        "description": draw(TEXT),
        "ownership": draw(
            st.sampled_from(
                [
                    {"domain": "default", "scope": "user"},
                    {"domain_name": "d", "scope": "personal"},
                    {"domain_name": "d", "scope": "project"},
                ]
            )
        ),
        "params": draw(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries({"name": st.just("lr"), "default": st.floats(0.001, 1)}),
                    st.fixed_dictionaries({"name": st.just("note"), "default": TEXT, "description": TEXT}),
                    st.fixed_dictionaries(
                        {
                            "name": st.just("n"),
                            "type": st.just("integer"),
                            "default": st.integers(0, 9),
                            "choices": st.just(list(range(10))),
                        }
                    ),
                ),
                max_size=3,
                unique_by=lambda p: p["name"],
            )
        ),
        "tasks": tasks,
    }
    if draw(st.booleans()):
        data["on"] = draw(
            st.sampled_from(
                [{"push": {"branches": ["main"]}}, ["push", "pull_request"], {"schedule": [{"cron": "0 3 * * *"}]}]
            )
        )
    if draw(st.booleans()):
        data["concurrency"] = draw(
            st.sampled_from(["deploy", {"group": "g-${{ branch }}", "cancel_in_progress": True}])
        )
    if draw(st.booleans()):
        data["cache"] = True
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), st.sampled_from(TARGETS), st.booleans())
def test_import_of_export_is_the_pipeline_for_generated_pipelines(text, target, ship):
    p = read(text)
    trees = {t.name: "ab" * 20 for t in p.tasks if t.code} if ship else None
    again, _ = round_trip(p, target, trees)
    assert again == p


@pytest.mark.parametrize(
    "section",
    [{"replaced": True}, {"replaced": "version"}, {"tasks": True}, {"tasks": [1]}, {"tasks": {"x": "shipped"}}],
)
def test_a_section_of_ours_not_shaped_as_export_writes_it_is_not_an_export(section):
    """Found by tests/fuzz/params_import_test.py: each raised TypeError, AttributeError or ValueError from the
    import (`replaced: version` as a string: "string indices must be integers")."""
    document = {"version": "1", "name": "p", "tasks": [{"name": "x", "command": "true"}], GITOPS_KEY: section}
    with pytest.raises(NotAnExport, match="export the pipeline again"):
        from_export(document, file="x.yaml")
