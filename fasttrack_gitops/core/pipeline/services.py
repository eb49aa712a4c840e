"""What a deployment (or serving) task asks for: its model service, read from `service:`, and checked. Pure.

A deployment task starts a model service instead of running a command. Its
`service:` block names the service, the model storage folder (`model`,
which FastTrack's GUI picks in a dialog, so exports do not carry it: absent,
the folder is named after the service), where the folder is mounted, the model
definition file in it, the runtime variant, the replicas and who may reach
it. `check` reports what a schema cannot say, with the line: a service name
the servers refuse (4-24 characters of `\\w[\\w-]*\\w`: 23.09 also allows dots,
current servers do not, so a name is checked by the stricter rule), replicas
out of range, a model definition path that leaves the model folder.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, NodePath, diagnostic, json_path
from fasttrack_gitops.core.pipeline.yamlsource import Document

# The name rule every server keeps: 23.09's `^(?=.{4,24}$)\w[\w.-]*\w$` without the dots that current servers refuse.
MAX_REPLICAS = 64  # beyond this a typo is likelier than a plan; the cluster's resource policy caps it lower anyway
DEFAULT_DEFINITION = "model-definition.yaml"
DEFINITION_NAMES = ("model-definition.yaml", "model-definition.yml")  # the only names 23.09 reads (folder root)
DEFAULT_MOUNT = "/models"
DEFAULT_READY_TIMEOUT = 1800.0  # seconds from creation, for a task without its own timeout


# Compiled on first use: only a pipeline with a deployment task has a service name or model folder to check.
@cache
def _service_name() -> re.Pattern[str]:
    return re.compile(r"(?=.{4,24}\Z)\w[\w-]*\w\Z", re.ASCII)


@cache
def _model_folder_name() -> re.Pattern[str]:
    """A vfolder name, as the manager checks it."""
    return re.compile(r"[\w.-]{1,64}\Z", re.ASCII)


@dataclass(frozen=True)
class ServiceSpec:
    """A deployment task's `service:` with every default filled in."""

    name: str
    model: str  # the model storage folder's name
    mount_destination: str = DEFAULT_MOUNT
    definition_path: str = DEFAULT_DEFINITION  # relative to the model folder's root
    runtime_variant: str = "custom"
    replicas: int = 1
    open_to_public: bool = False
    ephemeral: bool = False
    stage_inputs: bool = False  # copy the dependencies' outputs into the model folder too
    max_surge: int | None = None
    max_unavailable: int | None = None

    @property
    def definition_is_default(self) -> bool:
        """Whether 23.09 finds the definition by itself (it reads only these names at the folder's root)."""
        return self.definition_path in DEFINITION_NAMES


def service_spec(task_name: str, service: Mapping[str, Any] | None) -> ServiceSpec:
    """The task's service with defaults; ValueError (one line, what to do) when it has none."""
    if not service:
        raise ValueError(
            f"task '{task_name}' is a deployment task without a service: block; add service.name "
            "(and service.model, the model storage folder)"
        )
    name = str(service.get("name") or task_name)
    return ServiceSpec(
        name=name,
        model=str(service.get("model") or name),
        mount_destination=str(service.get("model_mount_destination") or DEFAULT_MOUNT),
        definition_path=posixpath.normpath(str(service.get("model_definition_path") or DEFAULT_DEFINITION)),
        runtime_variant=str(service.get("runtime_variant") or "custom"),
        replicas=int(service.get("replicas", 1)),
        open_to_public=bool(service.get("open_to_public", False)),
        ephemeral=bool(service.get("ephemeral", False)),
        stage_inputs=bool(service.get("stage_inputs", False)),
        max_surge=service.get("max_surge"),
        max_unavailable=service.get("max_unavailable"),
    )


def check(doc: Document, who: str, task: Mapping[str, Any], base: NodePath) -> Iterator[Diagnostic]:
    """The service block's values the schema cannot judge (it has checked their types)."""
    service = task.get("service")
    if not isinstance(service, dict):
        return
    where = base + ("service",)
    name = service.get("name")
    if isinstance(name, str) and not _service_name().match(name):
        yield _at(
            doc,
            "FT130",
            f"{who} has service name '{name}', which Backend.AI refuses: a service name is 4-24 characters of "
            "letters, digits, _ and -, starting and ending with a letter, digit or _ (current servers refuse dots)",
            where + ("name",),
        )
    replicas = service.get("replicas")
    if isinstance(replicas, int) and not isinstance(replicas, bool) and not 1 <= replicas <= MAX_REPLICAS:
        why = (
            "a service with no replicas never becomes ready"
            if replicas < 1
            else f"more than {MAX_REPLICAS} is surely a typo (the cluster's resource policy caps it lower)"
        )
        yield _at(
            doc, "FT131", f"{who} asks for {replicas} replicas: {why}; write 1 to {MAX_REPLICAS}", where + ("replicas",)
        )
    path = service.get("model_definition_path")
    if isinstance(path, str) and (
        path.startswith("/") or ".." in path.split("/") or not path.endswith((".yaml", ".yml"))
    ):
        yield _at(
            doc,
            "FT132",
            f"{who} has model_definition_path '{path}': write a .yaml or .yml file inside the model folder, "
            "relative to its root (e.g. model-definition.yaml)",
            where + ("model_definition_path",),
        )
    model = service.get("model")
    if isinstance(model, str) and not _model_folder_name().match(model):
        yield _at(
            doc,
            "FT133",
            f"{who} has model folder '{model}', which is not a folder name: 1-64 letters, digits, _, . and -",
            where + ("model",),
        )


def check_names(doc: Document, tasks: list[Any]) -> Iterator[Diagnostic]:
    """Two deployment tasks of one pipeline that name the same service would replace each other: FT134."""
    first: dict[str, int] = {}
    for i, task in enumerate(tasks):
        service = task.get("service") if isinstance(task, dict) else None
        name = service.get("name") if isinstance(service, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            line = doc.source.value(("tasks", first[name], "service", "name")).line
            yield _at(
                doc,
                "FT134",
                f"task '{task.get('name')}' names service '{name}', which the task on line {line} names too: "
                "one name is one service, so each deployment task needs its own service.name",
                ("tasks", i, "service", "name"),
            )
        else:
            first[name] = i


def _at(doc: Document, code: str, message: str, path: NodePath) -> Diagnostic:
    m = doc.source.value(path)
    return diagnostic(code, message, doc.file, m.line, m.column, json_path(path))
