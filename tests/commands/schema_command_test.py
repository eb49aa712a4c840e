"""`fasttrack-gitops schema`: the JSON Schemas editors load, printed exactly as the repository holds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fasttrack_gitops.cli import main

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def schema_output(capsys, *argv: str) -> str:
    code = main(["schema", *argv])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def test_schema_prints_the_pipeline_schema_file(capsys):
    out = schema_output(capsys)
    assert out == (SCHEMAS / "pipeline.schema.json").read_text(encoding="utf-8")
    assert json.loads(out) == json.loads((SCHEMAS / "pipeline.schema.json").read_text(encoding="utf-8"))


def test_schema_pipeline_is_the_default(capsys):
    assert schema_output(capsys, "pipeline") == schema_output(capsys)


def test_the_pipeline_schema_is_draft_2020_12_with_an_id(capsys):
    schema = json.loads(schema_output(capsys))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://") and schema["$id"].endswith("pipeline.schema.json")


def test_schema_repository_prints_the_settings_schema(capsys):
    out = schema_output(capsys, "repository")
    assert out == (SCHEMAS / "repository.schema.json").read_text(encoding="utf-8")
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("repository.schema.json")
    assert "pipelines" in schema["properties"]


def test_an_unknown_schema_name_is_a_usage_error(capsys):
    code = main(["schema", "pipelines"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "pipeline" in err and "repository" in err


def _anchors(node, found=None) -> dict:
    found = {} if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("$anchor"), str):
            found[node["$anchor"]] = node
        for value in node.values():
            _anchors(value, found)
    elif isinstance(node, list):
        for value in node:
            _anchors(value, found)
    return found


# Subschemas that only test a value (`if: {properties: {type: {enum: [...]}}}`) define no property an editor shows.
CONDITIONS = {"if", "not"}


def _resolve(ref: str, root: dict, anchors: dict):
    """The subschema a local $ref names: '#anchor' or a JSON pointer '#/$defs/name'; None when it is neither."""
    if ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node
    return anchors.get(ref[1:]) if ref.startswith("#") else None


def _undocumented(node, root: dict, where: str = "$") -> list[str]:
    """Every entry of every 'properties' mapping lacking a title or description (itself, else its $ref'd def)."""
    anchors = _anchors(root)
    missing: list[str] = []
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, prop in properties.items():
                candidates = [prop]
                ref = prop.get("$ref", "") if isinstance(prop, dict) else ""
                if ref:
                    candidates.append(_resolve(ref, root, anchors))
                for key in ("title", "description"):
                    if not any(
                        isinstance(c, dict) and isinstance(c.get(key), str) and c[key].strip() for c in candidates
                    ):
                        missing.append(f"{where}.properties.{name}: no {key}")
        for key, value in node.items():
            if key in CONDITIONS:
                continue
            missing += _undocumented(value, root, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += _undocumented(value, root, f"{where}[{i}]")
    return missing


@pytest.mark.parametrize("name", ["pipeline", "repository"])
def test_every_property_has_a_title_and_a_description_for_editors(capsys, name):
    schema = json.loads(schema_output(capsys, name))
    assert _undocumented(schema, schema) == []


def test_the_walk_finds_properties_in_nested_definitions(capsys):
    # Guard against a walk that silently checks nothing: the task definition is deep under $defs.
    schema = json.loads(schema_output(capsys))
    stripped = json.loads(json.dumps(schema))
    del stripped["$defs"]["task"]["properties"]["command"]["description"]
    assert _undocumented(stripped, stripped) == ["$.$defs.task.properties.command: no description"]
