"""What `validate` says about a deployment task's service, with the line; and the service a task asks for."""

from __future__ import annotations

import pytest
from core.pipeline.pipeline_schema_test import HEAD, at, check, only

from fasttrack_gitops.core.pipeline.services import service_spec


def deployment(service: str) -> str:
    return HEAD + "tasks:\n  - name: serve\n    type: deployment\n    environment: {image: python}\n" + service


def test_a_deployment_task_without_a_service_block():
    d = only(check(HEAD + "tasks:\n  - name: serve\n    type: deployment\n"), "FT102")
    assert "service" in d.message and at(d)[0] == 4


@pytest.mark.parametrize(
    "name",
    ["api", "a-name-that-is-longer-than-24", "docs.rag.api", "-leading", "trailing-", "späce"],
)
def test_a_service_name_the_servers_refuse(name):
    d = only(check(deployment(f"    service:\n      name: {name}\n")), "FT130")
    assert at(d) == (8, 13) and f"'{name}'" in d.message and "4-24 characters" in d.message
    assert d.path == "$.tasks[0].service.name"


def test_a_name_with_dots_is_refused_because_current_servers_refuse_it():
    d = only(check(deployment("    service:\n      name: docs.rag\n")), "FT130")
    assert "current servers refuse dots" in d.message


@pytest.mark.parametrize("replicas", [0, 1000])
def test_replicas_out_of_range(replicas):
    d = only(check(deployment(f"    service:\n      name: docs-rag-api\n      replicas: {replicas}\n")), "FT131")
    assert at(d)[0] == 9 and f"{replicas} replicas" in d.message and "write 1 to 64" in d.message


@pytest.mark.parametrize("path", ["../outside.yaml", "/abs/model-definition.yaml", "model-definition.json"])
def test_a_model_definition_path_outside_the_folder_or_not_yaml(path):
    d = only(
        check(deployment(f"    service:\n      name: docs-rag-api\n      model_definition_path: {path}\n")), "FT132"
    )
    assert at(d)[0] == 9


def test_a_model_folder_that_is_not_a_folder_name():
    d = only(check(deployment("    service:\n      name: docs-rag-api\n      model: 'my models'\n")), "FT133")
    assert at(d)[0] == 9


def test_the_real_export_validates_and_its_services_have_defaults(fasttrack_examples):
    path = next(p for p in fasttrack_examples if p.name.startswith("docs-rag"))
    result = check(path.read_text())
    assert not [d for d in result.diagnostics if d.is_error]
    api = service_spec("serve-fastapi", result.pipeline.task("serve-fastapi").service)
    assert (api.name, api.model, api.definition_path, api.replicas, api.open_to_public) == (
        "docs-rag-api",
        "docs-rag-api",  # no model folder in an export: one named like the service
        "model-definition-fastapi.yaml",
        1,
        True,
    )
    assert not api.definition_is_default and (api.max_surge, api.max_unavailable) == (1, 0)


def test_a_task_without_service_block_is_refused_when_run():
    with pytest.raises(ValueError, match="deployment task without a service: block"):
        service_spec("serve", None)


def test_two_deployment_tasks_naming_one_service():
    text = deployment("    service: {name: docs-rag-api}\n") + (
        "  - name: serve2\n    type: serving\n    environment: {image: python}\n    service: {name: docs-rag-api}\n"
    )
    d = only(check(text), "FT134")
    assert at(d)[0] == 11 and "the task on line 7 names too" in d.message
