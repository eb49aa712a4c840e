"""A Backend.AI model definition file (`model-definition.yaml`): checked before a service starts from it. Pure.

What the server reads (backendai-services.md §2): `models: [{name, model_path,
service: {pre_start_actions, start_command, port, health_check: {path,
max_retries, max_wait_time, expected_status_code}}}]`. 23.09 checks it with a
strict schema: an unknown key anywhere but in an action's `args` is refused
(so no `metadata`, `interval`, `initial_delay`, `shell`, `enable`), and
`start_command` must be a list. Current servers allow extra keys and a
string `start_command`. `problems(doc, strict=True)` says, in words, what a
23.09 manager would refuse, so the refusal comes before anything is created,
naming the file; `service_of` gives the first model's service for the local
executor, which runs it itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("write_file", "write_tempfile", "run_command", "mkdir", "log")  # the agent's service actions
_MODEL_KEYS = {"name", "model_path", "service"}
_SERVICE_KEYS = {"pre_start_actions", "start_command", "port", "health_check"}
_HEALTH_KEYS = {"path", "max_retries", "max_wait_time", "expected_status_code"}
_NEWER_MODEL_KEYS = {"metadata"}
_NEWER_SERVICE_KEYS = {"shell", "command"}
_NEWER_HEALTH_KEYS = {"interval", "initial_delay", "enable"}


@dataclass(frozen=True)
class HealthCheck:
    path: str
    max_retries: int = 10
    max_wait_time: float = 5.0  # seconds per probe, and between probes (23.09's meaning)
    expected_status_code: int = 200
    initial_delay: float = 0.0  # current servers: a grace period before failures count


@dataclass(frozen=True)
class ModelService:
    """The first model's `service` of a checked definition."""

    model: str  # the model's name
    model_path: str  # where the service runs (its cwd), inside the container: under the mount destination
    start_command: tuple[str, ...] | str  # an argv, or (current servers) one shell line
    port: int
    pre_start_actions: tuple[Mapping[str, Any], ...] = ()
    health_check: HealthCheck | None = None
    shell: str = "/bin/bash"
    extra: Mapping[str, Any] = field(default_factory=dict)


def problems(doc: Any, *, strict: bool) -> list[str]:
    """What is wrong with a loaded definition, in words ([] when it is fine); `strict`: by 23.09's schema."""
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list) or not doc["models"]:
        return ["it needs a top-level 'models:' list with at least one model"]
    found = []
    if strict and (extra := sorted(set(doc) - {"models"})):
        found.append(f"unknown key(s) {', '.join(extra)} at the top (23.09 allows only 'models')")
    for i, model in enumerate(doc["models"]):
        where = f"models[{i}]"
        if not isinstance(model, dict):
            found.append(f"{where} is not a mapping")
            continue
        found += _keys(model, _MODEL_KEYS, _NEWER_MODEL_KEYS, where, strict)
        for key in ("name", "model_path"):
            if not isinstance(model.get(key), str) or not model.get(key):
                found.append(f"{where}.{key} is required (a string)")
        service = model.get("service")
        if service is None:
            found.append(f"{where}.service is missing: without it the service never becomes healthy")
            continue
        if not isinstance(service, dict):
            found.append(f"{where}.service is not a mapping")
            continue
        found += _service_problems(service, f"{where}.service", strict)
    return found


def _service_problems(service: dict[str, Any], where: str, strict: bool) -> list[str]:
    found = _keys(service, _SERVICE_KEYS, _NEWER_SERVICE_KEYS, where, strict)
    command = service.get("start_command", service.get("command") if not strict else None)
    if isinstance(command, list):
        if not command or not all(isinstance(part, str) for part in command):
            found.append(f"{where}.start_command must be a non-empty list of strings")
    elif isinstance(command, str) and not strict:
        if not command.strip():
            found.append(f"{where}.start_command is empty")
    elif isinstance(command, str):
        found.append(f"{where}.start_command is a string; 23.09 needs a list (an argv), e.g. [python, serve.py]")
    else:
        found.append(f"{where}.start_command is required: the command that starts the server")
    port = service.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        found.append(f"{where}.port is required: the port the server listens on (1-65535)")
    actions = service.get("pre_start_actions") or []
    if not isinstance(actions, list):
        found.append(f"{where}.pre_start_actions must be a list")
        actions = []
    for j, action in enumerate(actions):
        if not isinstance(action, dict) or action.get("action") not in ACTIONS:
            found.append(f"{where}.pre_start_actions[{j}].action must be one of {', '.join(ACTIONS)}")
        elif strict and (extra := sorted(set(action) - {"action", "args"})):
            found.append(f"{where}.pre_start_actions[{j}] has unknown key(s) {', '.join(extra)}")
    health = service.get("health_check")
    if health is not None:
        if not isinstance(health, dict):
            found.append(f"{where}.health_check is not a mapping")
        else:
            found += _keys(health, _HEALTH_KEYS, _NEWER_HEALTH_KEYS, f"{where}.health_check", strict)
            if not isinstance(health.get("path"), str) or not health["path"].startswith("/"):
                found.append(f"{where}.health_check.path is required: the URL path to probe, e.g. /health")
            code = health.get("expected_status_code", 200)
            if not isinstance(code, int) or code < 100:
                found.append(f"{where}.health_check.expected_status_code must be an HTTP status (>= 100)")
    return found


def _keys(node: dict[str, Any], known: set[str], newer: set[str], where: str, strict: bool) -> list[str]:
    if not strict:
        return []  # current servers ignore keys they do not know
    unknown = sorted(set(node) - known)
    if not unknown:
        return []
    later = [k for k in unknown if k in newer]
    hint = f" ({', '.join(later)} came after 23.09: remove them for this server)" if later else ""
    return [f"{where} has unknown key(s) {', '.join(unknown)}{hint}"]


def service_of(doc: Mapping[str, Any]) -> ModelService:
    """The first model's service of a definition `problems(doc, strict=False)` passed."""
    model = doc["models"][0]
    service = model["service"]
    command = service.get("start_command", service.get("command"))
    health = service.get("health_check")
    return ModelService(
        model=model["name"],
        model_path=model["model_path"],
        start_command=tuple(command) if isinstance(command, list) else str(command),
        port=int(service["port"]),
        pre_start_actions=tuple(service.get("pre_start_actions") or ()),
        health_check=HealthCheck(
            path=health["path"],
            max_retries=int(health.get("max_retries", 10)),
            max_wait_time=float(health.get("max_wait_time", 5.0)),
            expected_status_code=int(health.get("expected_status_code", 200)),
            initial_delay=float(health.get("initial_delay", 0.0)),
        )
        if isinstance(health, dict) and health.get("enable", True) is not False
        else None,
        shell=str(service.get("shell") or "/bin/bash"),
    )
