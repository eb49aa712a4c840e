"""Model definition files: what 23.09 (strict) and current servers refuse, said before a service is created."""

from __future__ import annotations

import yaml
from conftest import DATA

from fasttrack_gitops.core import model_definition

GOOD = yaml.safe_load((DATA / "services" / "model-definition-fastapi.yaml").read_text().replace("PORT_API", "8000"))


def test_the_stand_in_definitions_pass_both_schemas():
    assert model_definition.problems(GOOD, strict=True) == []
    assert model_definition.problems(GOOD, strict=False) == []
    service = model_definition.service_of(GOOD)
    assert service.start_command == ("python3", "server.py", "8000") and service.port == 8000
    assert service.health_check is not None and service.health_check.path == "/health"


def test_newer_keys_are_refused_by_23_09_only_and_named():
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["models"][0]["metadata"] = {"author": "me"}
    doc["models"][0]["service"]["health_check"]["initial_delay"] = 30
    found = model_definition.problems(doc, strict=True)
    assert any("metadata" in p and "came after 23.09" in p for p in found)
    assert any("initial_delay" in p for p in found)
    assert model_definition.problems(doc, strict=False) == []


def test_a_string_start_command_is_current_servers_only():
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["models"][0]["service"]["start_command"] = "python3 server.py 8000"
    assert any("23.09 needs a list" in p for p in model_definition.problems(doc, strict=True))
    assert model_definition.problems(doc, strict=False) == []
    assert model_definition.service_of(doc).start_command == "python3 server.py 8000"


def test_what_is_missing_is_said():
    assert model_definition.problems({}, strict=False) == [
        "it needs a top-level 'models:' list with at least one model"
    ]
    found = model_definition.problems({"models": [{"name": "m", "model_path": "/models", "service": {}}]}, strict=False)
    assert any("start_command is required" in p for p in found) and any("port is required" in p for p in found)
    found = model_definition.problems({"models": [{"name": "m", "model_path": "/models"}]}, strict=False)
    assert found == ["models[0].service is missing: without it the service never becomes healthy"]
