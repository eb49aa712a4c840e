"""Model services in the emulator: `/services` as 23.09 and as current managers answer it (backendai-services.md).

    services = install(emu)   # after the vfolders (model folders are vfolders); also emu.services

The dialect follows the emulator's server: "23.09" is strict (trafaret: an
unknown key at the top or in `config` is a 400 naming it, create answers 200
`{"endpoint_id"}`, names may hold dots, the model definition must be
`model-definition.yml|yaml` at the model folder's root and pass 23.09's
strict schema, `active_routes` lists the healthy routes only); "26.4" is
current (pydantic: extra keys ignored, create answers 201 with the service,
`config.scaling_group` required, `model_definition_path` and
`runtime_variant` honoured, dots refused, `active_routes` lists every route,
readiness read through GraphQL `endpoint { url routings { status
health_status } }`).

Create checks, in the order the real 23.09 stack showed (tests/integration/services_test.py):
the resource group's session types (`inference_groups`; a group without
`inference` is 404 "No such scaling group."), the coordinator
(`coordinator = False` -> 503 "No coordinator configured for this resource
group"), the model folder (a usage_mode model vfolder by
name), its definition, then the name among every live service, also other
users' (`foreign_names`: 400 "Cannot create multiple services with same
name"). Every create body is kept in `bodies` with the server's version.

Each service's routes start PROVISIONING and `step` seconds later become
what `behaviour[name]` says (default "healthy"): "healthy" (and the endpoint
gets its URL), "fail" (FAILED_TO_START, listed by /errors with retries), or
"provisioning" (never leaves it). DELETE makes the service DESTROYING, and
`step` seconds later it is gone and its name free again.

A 26.x server also rolls out: GraphQL `modify_endpoint(endpoint_id, props)`
(props checked against ModifyEndpointInput: JSONString slots, environ) makes
a new revision, `GET /deployments/{id}` is DEPLOYING for `step` seconds
(for ever with behaviour "provisioning") while the old routes keep serving,
then READY; `PUT /deployments/{id}/policy` sets `{strategy: ROLLING,
rolling_update: {max_surge, max_unavailable}}`. Each rollout is kept in
`rollouts` with the policy it had.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml
from engine.backendai.manager_rules import Reply

NAME_23_09 = re.compile(r"^(?=.{4,24}$)\w[\w.-]*\w$", re.ASCII)
NAME_CURRENT = re.compile(r"^(?=.{4,24}$)\w[\w-]*\w$", re.ASCII)
_TOP_23_09 = [
    ("name", "service_name", "clientSessionToken"),
    ("desired_session_count", "desiredSessionCount"),
    ("image", "lang"),
    ("arch", "architecture"),
    ("group", "groupName", "group_name"),
    ("domain", "domainName", "domain_name"),
    ("cluster_size", "clusterSize"),
    ("cluster_mode", "clusterMode"),
    ("tag",),
    ("startup_command", "startupCommand"),
    ("bootstrap_script", "bootstrapScript"),
    ("callback_url", "callbackUrl", "callbackURL"),
    ("owner_access_key",),
    ("open_to_public",),
    ("config",),
]
_CONFIG_23_09 = [
    ("model",),
    ("model_version", "modelVersion"),
    ("model_mount_destination", "modelMountDestination"),
    ("environ",),
    ("scaling_group", "scalingGroup"),
    ("resources",),
    ("resource_opts", "resourceOpts"),
]
RUNTIME_VARIANTS = ("custom", "vllm", "nim", "cmd", "huggingface-tgi", "sglang", "modular-max")


@dataclass
class Service:
    id: str
    name: str
    owner: str
    desired: int
    public: bool
    body: dict
    created: float = field(default_factory=time.monotonic)
    revision: int = 1
    rolled_at: float | None = None  # the latest revision's rollout began then
    policy: dict | None = None
    destroying_at: float | None = None
    url: str | None = None


def install(emu, *, step: float = 0.05) -> Services:
    services = Services(emu, step)
    emu.services = services
    return services


class Services:
    def __init__(self, emu, step: float) -> None:
        self.emu, self.step = emu, step
        self.strict = emu.manager.startswith("23.")
        self.rolling = not self.strict and int(emu.manager.split(".")[0]) >= 26  # sokovan: revisions roll out
        self.rollouts: list[tuple[str, dict, dict | None]] = []  # (service name, props, its policy then)
        self.coordinator = True
        self.inference_groups = {"default"}  # resource groups whose allowed session types include inference
        self.foreign_names: set[str] = set()  # names other users' services hold
        self.behaviour: dict[str, str] = {}  # service name -> healthy | fail | provisioning
        self.services: dict[str, Service] = {}  # by id
        self.bodies: list[tuple[str, dict]] = []  # (manager version, create body) as received
        self.deleted: list[str] = []  # names, in order
        self.tokens = 0
        self.lock = threading.RLock()
        for method, pattern, handler in [
            ("POST", "/services", self.create),
            ("GET", "/services", self.list),
            ("GET", "/services/{id}", self.info),
            ("DELETE", "/services/{id}", self.delete),
            ("GET", "/services/{id}/errors", self.errors),
            ("POST", "/services/{id}/token", self.token),
        ]:
            emu.route(method, pattern, self._locked(handler))
        if not self.strict:
            emu.gql_field("endpoint", self._locked(self._gql_endpoint), "Endpoint")
        if self.rolling:
            emu.gql_mutation("modify_endpoint", self._locked(self._modify), "ModifyEndpoint")
            emu.route("GET", "/deployments/{id}", self._locked(self.deployment))
            emu.route("PUT", "/deployments/{id}/policy", self._locked(self.policy))

    def _locked(self, handler):
        def serve(req, *args):
            with self.lock:
                self._advance()
                return handler(req, *args)

        return serve

    # -- lifecycle ------------------------------------------------------------------------------
    def _advance(self) -> None:
        now = time.monotonic()
        for sid, s in list(self.services.items()):
            if s.destroying_at is not None and now - s.destroying_at >= self.step:
                del self.services[sid]
            elif s.destroying_at is None and self._state(s) == "healthy" and s.url is None:
                s.url = f"http://{s.name}.models.emulator.test"  # the coordinator registered it

    def _state(self, s: Service) -> str:
        if time.monotonic() - s.created < self.step:
            return "provisioning"
        return self.behaviour.get(s.name, "healthy")

    def _routes(self, s: Service) -> list[dict]:
        if s.destroying_at is not None:
            return []
        state = self._state(s)
        return [
            {
                "route_id": str(uuid.uuid5(uuid.UUID(s.id), str(i))),
                "session_id": str(uuid.uuid5(uuid.UUID(s.id), f"s{i}")),
                "traffic_ratio": 1.0,
                "status": state,
            }
            for i in range(s.desired)
        ]

    # -- routes ---------------------------------------------------------------------------------
    def create(self, req) -> Reply:
        body = req.json() or {}
        self.bodies.append((self.emu.manager, body))
        invalid = self._validate(body)
        if invalid is not None:
            return invalid
        config = body["config"]
        name = _first(body, "name", "service_name", "clientSessionToken")
        group = _first(config, "scaling_group", "scalingGroup") or "default"
        if group not in self.inference_groups:  # the realstack's answer, checked before the coordinator
            return Reply.problem(
                404,
                "object-not-found",
                "No such scaling group.",
                f"The scaling group '{group}' does not accept the session type 'SessionTypes.INFERENCE'. ",
            )
        if not self.coordinator:  # the realstack's words, typo included
            return Reply.problem(
                503, "service-unavailable", "Serivce unavailable.", "No coordinator configured for this resource group"
            )
        folder = self.emu.vfolders.folders.get(config.get("model"))
        if folder is None:
            return Reply.problem(404, "object-not-found", "No such virtual folder.", data=config.get("model"))
        if folder["usage_mode"] != "model":
            return _bad("Selected vFolder is not a model folder")
        root = self.emu.vfolders.directory(folder["name"])
        names = (
            (config.get("model_definition_path"),)
            if not self.strict and config.get("model_definition_path")
            else (
                "model-definition.yml",
                "model-definition.yaml",
            )
        )
        path = next((root / n for n in names if (root / n).is_file()), None)
        if path is None:
            return _bad("Model definition YAML file not found inside the model storage")
        try:
            problems = definition_errors(yaml.safe_load(path.read_bytes()), strict=self.strict)
        except yaml.YAMLError as exc:
            problems = [str(exc)]
        if problems:
            return _bad("Failed to validate model definition", data={"errors": problems})
        live = {s.name for s in self.services.values()} | self.foreign_names
        if name in live:
            return _bad("Cannot create multiple services with same name")
        desired = _first(body, "desired_session_count", "desiredSessionCount", "replicas")
        s = Service(str(uuid.uuid4()), name, req.access_key, int(desired), bool(body.get("open_to_public")), body)
        self.services[s.id] = s
        if self.strict:
            return Reply.json({"endpoint_id": s.id})
        return Reply.json(self._info(s), 201)

    def _validate(self, body: dict) -> Reply | None:
        if not isinstance(body.get("config"), dict):
            return _invalid({"config": "is required"})
        if self.strict:
            for where, node, allowed in (("", body, _TOP_23_09), ("config.", body["config"], _CONFIG_23_09)):
                known = {alias for aliases in allowed for alias in aliases}
                if extra := sorted(set(node) - known):
                    return _invalid({f"{where}{key}": f"{key} is not allowed key" for key in extra})
        name = _first(body, "name", "service_name", "clientSessionToken")
        rule = NAME_23_09 if self.strict else NAME_CURRENT
        if not isinstance(name, str) or not rule.match(name):
            return _invalid({"name": "value does not match pattern"})
        desired = _first(body, "desired_session_count", "desiredSessionCount", "replicas")
        if not isinstance(desired, int) or isinstance(desired, bool) or desired < 0:
            return _invalid({"desired_session_count": "is required (int)"})
        if not isinstance(_first(body, "image", "lang"), str):
            return _invalid({"image": "is required"})
        config = body["config"]
        if not isinstance(config.get("model"), str):
            return _invalid({"config.model": "is required"})
        if not self.strict:
            if not _first(config, "scaling_group", "scalingGroup"):
                return _invalid({"config.scaling_group": "Field required"})
            if body.get("runtime_variant", "custom") not in RUNTIME_VARIANTS:
                return _bad("Unknown runtime variant")
        for key, value in (config.get("resources") or {}).items():
            if isinstance(value, float) and not self.strict:  # 24.03-25.x: str or int; send fractions as strings
                return _invalid({f"config.resources.{key}": "str or int"})
        return None

    def list(self, req) -> Reply:
        name = req.query.get("name")
        return Reply.json(
            [
                {
                    "id": s.id,
                    "name": s.name,
                    "desired_session_count": s.desired,
                    "active_route_count": sum(r["status"] == "healthy" for r in self._routes(s)),
                    "service_endpoint": s.url,
                    "is_public": s.public,
                }
                for s in self.services.values()
                if s.owner == req.access_key and s.destroying_at is None and (name is None or s.name == name)
            ]
        )

    def _service(self, req) -> Service | Reply:
        s = self.services.get(unquote(req.params["id"]))
        if s is None or s.owner != req.access_key:
            return Reply.problem(404, "object-not-found", "No such model service.")
        return s

    def _info(self, s: Service) -> dict:
        routes = self._routes(s)
        if self.strict:
            active = [
                {k: r[k] for k in ("route_id", "session_id", "traffic_ratio")}
                for r in routes
                if r["status"] == "healthy"
            ]
        else:
            active = [{k: r[k] for k in ("route_id", "session_id", "traffic_ratio")} for r in routes]
        info = {
            "endpoint_id": s.id,
            "name": s.name,
            "desired_session_count": s.desired,
            "active_routes": active,
            "service_endpoint": s.url,
            "is_public": s.public,
        }
        if not self.strict:
            config = s.body["config"]
            info.update(
                replicas=s.desired,
                model_id=str(uuid.uuid4()),
                extra_mounts=[],
                model_definition_path=config.get("model_definition_path"),
                runtime_variant=s.body.get("runtime_variant", "custom"),
            )
        return info

    def info(self, req) -> Reply:
        s = self._service(req)
        return s if isinstance(s, Reply) else Reply.json(self._info(s))

    def errors(self, req) -> Reply:
        s = self._service(req)
        if isinstance(s, Reply):
            return s
        failed = [r for r in self._routes(s) if r["status"] == "fail"]
        return Reply.json(
            {
                "errors": [
                    {
                        "session_id": r["session_id"],
                        "error": [{"src": "agent", "name": "RuntimeError", "repr": "model service process exited (1)"}],
                    }
                    for r in failed
                ],
                "retries": 6 if failed else 0,
            }
        )

    def delete(self, req) -> Reply:
        s = self._service(req)
        if isinstance(s, Reply):
            return s
        if s.destroying_at is None:
            s.destroying_at = time.monotonic()
            self.deleted.append(s.name)
        return Reply.json({"success": True})

    def token(self, req) -> Reply:
        s = self._service(req)
        if isinstance(s, Reply):
            return s
        body = req.json() or {}
        allowed = {"duration", "valid_until"} if self.strict else {"duration", "valid_until", "expires_at"}
        if self.strict and (extra := sorted(set(body) - allowed)):
            return _invalid({key: f"{key} is not allowed key" for key in extra})
        if not (set(body) & allowed):
            return _invalid({"duration": "either duration or valid_until is required"})
        self.tokens += 1
        return Reply.json({"token": f"emu-token-{uuid.uuid4().hex}"})

    def _modify(self, req, args) -> dict:
        from engine.backendai.emulator import GQLError

        s = self.services.get(str(args.get("endpoint_id")))
        problem = _modify_errors(args.get("props"))
        if problem:
            raise GQLError(problem)
        if s is None or s.owner != req.access_key or s.destroying_at is not None:
            return {"ok": False, "msg": "no such endpoint"}
        props = args["props"]
        s.desired = int(props.get("replicas", props.get("desired_session_count", s.desired)))
        s.revision += 1
        s.rolled_at = time.monotonic()
        self.rollouts.append((s.name, props, s.policy))
        return {"ok": True, "msg": "success"}

    def deployment(self, req) -> Reply:
        s = self._service(req)
        if isinstance(s, Reply):
            return s
        deploying = s.rolled_at is not None and (
            time.monotonic() - s.rolled_at < self.step or self.behaviour.get(s.name) == "provisioning"
        )
        return Reply.json(
            {
                "id": s.id,
                "status": "DEPLOYING" if deploying else "READY",
                "network_config": {"url": s.url, "open_to_public": s.public},
                "replica_state": {
                    "desired_replica_count": s.desired,
                    "replica_ids": [r["route_id"] for r in self._routes(s)],
                },
            }
        )

    def policy(self, req) -> Reply:
        s = self._service(req)
        if isinstance(s, Reply):
            return s
        body = req.json() or {}
        rolling = body.get("rolling_update") or {}
        if body.get("strategy") not in ("ROLLING", "BLUE_GREEN") or not isinstance(rolling, dict):
            return _invalid({"strategy": "ROLLING or BLUE_GREEN"})
        if any(not isinstance(v, int) or v < 0 for v in rolling.values()) or set(rolling) - {
            "max_surge",
            "max_unavailable",
        }:
            return _invalid({"rolling_update": "max_surge, max_unavailable: int >= 0"})
        s.policy = body
        return Reply.json({"policy": body})

    def _gql_endpoint(self, req, args) -> dict | None:
        s = self.services.get(str(args.get("endpoint_id")))
        if s is None or s.owner != req.access_key:
            return None
        states = {
            "healthy": ("RUNNING", "HEALTHY"),
            "fail": ("FAILED_TO_START", "NOT_CHECKED"),
            "provisioning": ("PROVISIONING", "NOT_CHECKED"),
        }
        return {
            "url": s.url,
            "routings": [
                {"status": states[r["status"]][0], "health_status": states[r["status"]][1]} for r in self._routes(s)
            ],
        }


MODIFY_FIELDS = {  # HEAD's ModifyEndpointInput (gql_legacy/endpoint.py L1021-1042)
    "resource_slots", "resource_opts", "cluster_mode", "cluster_size", "replicas", "desired_session_count", "image",
    "name", "resource_group", "open_to_public", "model_definition_path", "extra_mounts", "environ", "runtime_variant",
}  # fmt: skip


def _modify_errors(props: Any) -> str | None:
    if not isinstance(props, dict):
        return "props: expected an input object"
    if extra := sorted(set(props) - MODIFY_FIELDS):
        return f"Field '{extra[0]}' is not defined by type 'ModifyEndpointInput'."
    for key in ("resource_slots", "resource_opts", "environ"):  # JSONString
        if key in props and not isinstance(props[key], str):
            return f"{key}: JSONString cannot represent a non-string value"
    if "image" in props and not (isinstance(props["image"], dict) and isinstance(props["image"].get("name"), str)):
        return "image: expected ImageRefType {name, registry, architecture}"
    return None


def _first(node: dict, *keys: str) -> Any:
    return next((node[k] for k in keys if k in node), None)


def _invalid(data: dict) -> Reply:
    return Reply.problem(
        400, "invalid-api-params", "Missing or invalid API parameters.", "Input validation error", data
    )


def _bad(msg: str, data: Any = None) -> Reply:
    return Reply.problem(400, "invalid-api-params", "Missing or invalid API parameters.", msg, data)


# 23.09's model_definition_iv (common/config.py L81-109), written from the reference, not from our checker:
# {key: (required, type check, nested rule)}; an unknown key anywhere but in an action's args is an error.
_HEALTH = {
    "path": (True, lambda v: isinstance(v, str), None),
    "max_retries": (False, lambda v: isinstance(v, int), None),
    "max_wait_time": (False, lambda v: isinstance(v, (int, float)), None),
    "expected_status_code": (False, lambda v: isinstance(v, int) and v >= 100, None),
}
_ACTION = {"action": (True, lambda v: isinstance(v, str), None), "args": (False, lambda v: isinstance(v, dict), None)}
_SERVICE = {
    "pre_start_actions": (False, lambda v: isinstance(v, list), _ACTION),
    "start_command": (True, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), None),
    "port": (True, lambda v: isinstance(v, int) and v >= 1, None),
    "health_check": (False, lambda v: v is None or isinstance(v, dict), _HEALTH),
}
_MODEL = {
    "name": (True, lambda v: isinstance(v, str), None),
    "model_path": (True, lambda v: isinstance(v, str), None),
    "service": (False, lambda v: v is None or isinstance(v, dict), _SERVICE),
}


def definition_errors(doc: Any, *, strict: bool) -> list[str]:
    """What 23.09 (strict) or a current manager (extra keys allowed, start_command also a string) refuses."""
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        return ["models: is required"]
    found: list[str] = []
    if strict and set(doc) - {"models"}:
        found.append(f"{sorted(set(doc) - {'models'})} is not allowed key")
    for model in doc["models"]:
        found += _against(model, _MODEL, strict)
    return found


def _against(node: Any, rule: dict, strict: bool) -> list[str]:
    if not isinstance(node, dict):
        return ["value is not a dict"]
    found = [f"{k} is not allowed key" for k in node if k not in rule] if strict else []
    for key, (required, ok, nested) in rule.items():
        if key not in node:
            if required:
                found.append(f"{key} is required")
            continue
        value = node[key]
        if key == "start_command" and not strict and isinstance(value, str):
            continue
        if not ok(value):
            found.append(f"{key}: wrong type")
        elif nested is not None and value is not None:
            for item in value if isinstance(value, list) else [value]:
                found += _against(item, nested, strict)
    return found
