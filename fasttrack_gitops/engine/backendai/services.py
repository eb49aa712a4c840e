"""Model services (`/services`): create, read, errors, delete, token, by the server's dialect (backendai-services.md).

A 23.09 manager checks the create body with a strict schema: any key it does
not know is a 400. So the body is built per server (`create_body`), sending
each field only where that server accepts it, and `ServiceBody.withheld`
says which fields were left out and why (the log and the check say it).
`Dialect` holds what differs: 23.09 has no `model_definition_path` (the file
must be `model-definition.yaml` at the model folder's root), no
`runtime_variant`, and names may hold dots; its `active_routes` are the
healthy routes. Current servers (24.03.4+) take `model_definition_path`
and (24.03.5+) `runtime_variant`, answer create with 201, and list every
route in `active_routes`, so readiness is read from GraphQL `routings`.
26.x rolls a service out (`set_rolling_policy`, `modify_service`,
`deployment_status`: from the reference, not yet met live).

Errors that mean "this cluster cannot serve" become one clear line naming the
fix (`explain`): no coordinator (503), a resource group without the
`inference` session type, a name another user's service holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fasttrack_gitops.core.pipeline.services import ServiceSpec
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.graphql import gql

SERVICE = "/services/{id}"
_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Dialect:
    """What a manager release accepts of `/services` (backendai-services.md §6)."""

    manager: str  # e.g. "23.09.10"
    release: tuple[int, int, int]

    @classmethod
    def of(cls, manager: str) -> Dialect:
        match = _RELEASE.match(manager or "")
        release = (int(match[1]), int(match[2]), int(match[3] or 0)) if match else (23, 9, 0)
        return cls(manager, release)

    @property
    def strict(self) -> bool:
        """Unknown keys are a 400 (trafaret, 23.09); current servers ignore them."""
        return self.release < (24, 3, 0)

    @property
    def definition_path(self) -> bool:
        return self.release >= (24, 3, 4)

    @property
    def runtime_variant(self) -> bool:
        return self.release >= (24, 3, 5)

    @property
    def healthy_routes_listed(self) -> bool:
        """GET /services/{id} lists only healthy routes (23.09); later it lists every route."""
        return self.release < (24, 3, 0)

    @property
    def rolling(self) -> bool:
        """A rolling update exists: GraphQL modify_endpoint makes a new revision that the deployment controller
        rolls out, with /deployments/{id}/policy's max_surge / max_unavailable (sokovan, 26.x; from the
        reference, not yet tried on a live 26.x manager)."""
        return self.release >= (26, 4, 0)

    @property
    def health_status(self) -> bool:
        """GraphQL routings carry health_status (26.4.2+)."""
        return self.release >= (26, 4, 2)


@dataclass(frozen=True)
class ServiceBody:
    body: dict[str, Any]
    withheld: tuple[str, ...] = ()  # what the server could not be sent, in words


@dataclass(frozen=True)
class Deployment:
    """Everything a service is created from, besides its `service:` block (the task's session settings)."""

    spec: ServiceSpec
    image: str
    project: str | None = None
    domain: str | None = None
    scaling_group: str | None = None
    cluster_mode: str = "single-node"
    cluster_size: int = 1
    resources: Mapping[str, Any] = field(default_factory=dict)
    resource_opts: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    architecture: str | None = None


def create_body(d: Deployment, dialect: Dialect) -> ServiceBody:
    """The POST /services body this server accepts, and what it could not take."""
    spec = d.spec
    config: dict[str, Any] = {
        "model": spec.model,
        "model_mount_destination": spec.mount_destination,
        "environ": dict(d.environ),
        "resources": dict(d.resources),
        "resource_opts": dict(d.resource_opts),
    }
    if d.scaling_group:
        config["scaling_group"] = d.scaling_group
    body: dict[str, Any] = {
        "name": spec.name,
        "desired_session_count": spec.replicas,  # every version knows it; `replicas` is unconfirmed on 24.12-25.x
        "image": d.image,
        "group": d.project or "default",
        "domain": d.domain or "default",
        "cluster_size": d.cluster_size,
        "cluster_mode": d.cluster_mode,
        "open_to_public": spec.open_to_public,
        "config": config,
    }
    if d.architecture:
        body["arch"] = d.architecture
    withheld = []
    if dialect.definition_path:
        config["model_definition_path"] = spec.definition_path
    elif not spec.definition_is_default:
        withheld.append(
            f"model_definition_path {spec.definition_path} (Backend.AI {dialect.manager} reads only "
            "model-definition.yaml at the model folder's root: the file was copied there)"
        )
    if dialect.runtime_variant:
        body["runtime_variant"] = spec.runtime_variant
    elif spec.runtime_variant != "custom":
        withheld.append(
            f"runtime_variant {spec.runtime_variant} (Backend.AI {dialect.manager} knows no runtime variants: "
            "the model definition's start_command runs)"
        )
    if spec.mount_destination != "/models" and dialect.strict:
        withheld.append(
            f"model_mount_destination {spec.mount_destination} (Backend.AI 23.09 ignores it and mounts at /models)"
        )
    return ServiceBody(body, tuple(withheld))


async def dialect_of(client: Client) -> Dialect:
    server = client.server or await client.negotiate()
    return Dialect.of(server.manager)


async def create_service(client: Client, body: Mapping[str, Any], *, scaling_group: str | None) -> str:
    """POST /services; the new endpoint's id. A refusal that means the cluster cannot serve is explained."""
    try:
        answer = await client.request("POST", "/services", json=dict(body), idempotent=False)
    except errors.BackendAIError as exc:
        raise explain(exc, str(body.get("name")), scaling_group) from exc
    endpoint_id = answer.get("endpoint_id") if isinstance(answer, dict) else None
    if not endpoint_id:
        raise errors.BackendAIError(f"Backend.AI POST /services answered without an endpoint_id: {answer!r:.200}")
    return str(endpoint_id)


async def find_service(client: Client, name: str) -> dict[str, Any] | None:
    """Our own live service of that name (GET /services?name=), or None."""
    found = await client.request("GET", "/services", params={"name": name})
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


async def get_service(client: Client, endpoint_id: str) -> dict[str, Any]:
    return await client.request("GET", SERVICE, path_params={"id": endpoint_id})


async def service_errors(client: Client, endpoint_id: str) -> tuple[list[str], int]:
    """The routes that failed to start, each in words, and the manager's retry count."""
    answer = await client.request("GET", SERVICE + "/errors", path_params={"id": endpoint_id}) or {}
    found = []
    for item in answer.get("errors") or []:
        parts = item.get("error") or []
        parts = parts if isinstance(parts, list) else [parts]
        said = "; ".join(str(p.get("repr") or p.get("name")) if isinstance(p, dict) else str(p) for p in parts)
        found.append(f"session {item.get('session_id')}: {said or 'failed to start'}")
    return found, int(answer.get("retries") or 0)


async def delete_service(client: Client, endpoint_id: str) -> None:
    """DELETE /services/{id}; one already gone is fine."""
    try:
        await client.request("DELETE", SERVICE, path_params={"id": endpoint_id}, idempotent=True)
    except errors.NotFoundError:
        pass


async def generate_token(client: Client, endpoint_id: str, *, duration: str = "1h") -> str:
    """A token for a non-public service (POST /services/{id}/token). Never stored, logged or reported."""
    answer = await client.request(
        "POST", SERVICE + "/token", path_params={"id": endpoint_id}, json={"duration": duration}
    )
    return str(answer["token"])


MODIFY = (
    "mutation($id: UUID!, $props: ModifyEndpointInput!) { modify_endpoint(endpoint_id: $id, props: $props) { ok msg } }"
)


async def set_rolling_policy(
    client: Client, endpoint_id: str, *, max_surge: int | None, max_unavailable: int | None
) -> None:
    """PUT /deployments/{id}/policy: a rolling update with these bounds (the server's defaults for one not given)."""
    rolling = {k: v for k, v in (("max_surge", max_surge), ("max_unavailable", max_unavailable)) if v is not None}
    body = {"strategy": "ROLLING", "rolling_update": rolling}
    await client.request("PUT", "/deployments/{id}/policy", path_params={"id": endpoint_id}, json=body, idempotent=True)


async def modify_service(client: Client, endpoint_id: str, d: Deployment) -> None:
    """A new revision of the service from the task (GraphQL modify_endpoint); the deployment controller rolls it out."""
    props: dict[str, Any] = {
        "image": {"name": d.image},
        "resource_slots": json.dumps(dict(d.resources)),
        "resource_opts": json.dumps(dict(d.resource_opts)),
        "environ": json.dumps(dict(d.environ)),
        "replicas": d.spec.replicas,
        "cluster_mode": d.cluster_mode.upper().replace("-", "_"),
        "cluster_size": d.cluster_size,
        "open_to_public": d.spec.open_to_public,
        "model_definition_path": d.spec.definition_path,
        "runtime_variant": d.spec.runtime_variant,
    }
    if d.scaling_group:
        props["resource_group"] = d.scaling_group
    answer = await client.request(
        "POST", "/admin/gql", json={"query": MODIFY, "variables": {"id": endpoint_id, "props": props}}, idempotent=False
    )
    problems = (answer or {}).get("errors") if isinstance(answer, dict) else None
    result = ((answer or {}).get("data") or {}).get("modify_endpoint") or {} if isinstance(answer, dict) else {}
    if problems or not result.get("ok"):
        said = "; ".join(str(p.get("message", p)) for p in problems) if problems else str(result.get("msg"))
        raise errors.BackendAIError(
            f"Backend.AI refused to update the service: {said}", method="POST", path="/admin/gql"
        )


async def deployment_status(client: Client, endpoint_id: str) -> str:
    """The deployment's status (PENDING, DEPLOYING, READY, ...) from GET /deployments/{id}."""
    answer = await client.request("GET", "/deployments/{id}", path_params={"id": endpoint_id}) or {}
    deployment = answer.get("deployment", answer) if isinstance(answer, dict) else {}
    return str(deployment.get("status") or "").upper()


@dataclass(frozen=True)
class Readiness:
    healthy: int
    url: str | None


async def readiness(client: Client, endpoint_id: str, dialect: Dialect) -> Readiness:
    """How many routes are healthy now, and the endpoint's URL (None until the coordinator gave one)."""
    if dialect.healthy_routes_listed:
        info = await get_service(client, endpoint_id)
        return Readiness(len(info.get("active_routes") or []), info.get("service_endpoint") or None)
    fields = "status health_status" if dialect.health_status else "status"
    data = await gql(
        client,
        f"query($id: UUID!) {{ endpoint(endpoint_id: $id) {{ url routings {{ {fields} }} }} }}",
        {"id": endpoint_id},
    )
    endpoint = data.get("endpoint") or {}
    healthy = sum(_route_ready(r) for r in endpoint.get("routings") or [])
    return Readiness(healthy, endpoint.get("url") or None)


def _route_ready(route: Mapping[str, Any]) -> bool:
    status = str(route.get("status") or "").upper()
    health = str(route.get("health_status") or "").upper()
    if status == "HEALTHY":  # 24.x-25.x: one status
        return True
    return status == "RUNNING" and health in ("HEALTHY", "NOT_CHECKED", "")


def explain(exc: errors.BackendAIError, name: str, scaling_group: str | None) -> errors.BackendAIError:
    """The refusal in words that name the fix, for the refusals that mean this cluster cannot serve."""
    said = " ".join(str(x) for x in (exc.problem.title, exc.problem.msg) if x) if exc.problem else str(exc)
    group = f"resource group {scaling_group!r}" if scaling_group else "the resource group"
    low = said.lower()
    fields: errors.ErrorFields = {"status": exc.status, "problem": exc.problem, "method": exc.method, "path": exc.path}
    if "no coordinator" in low or "not ready to start model service" in low:
        return CannotServeError(
            f"Backend.AI cannot start model service {name!r}: {said} [{exc.status}]. The cluster has no app proxy "
            f"(coordinator) for {group}: an admin must set the resource group's wsproxy_addr and wsproxy_api_token "
            "(an app proxy must run), or pick a resource group that has one in environment.scaling-group",
            **fields,
        )
    if "session type" in low and "inference" in low:
        return CannotServeError(
            f"Backend.AI cannot start model service {name!r}: {said} [{exc.status}]. {group.capitalize()} does not "
            "allow the 'inference' session type: an admin must add it to the group's allowed session types, "
            "or pick another group in environment.scaling-group",
            **fields,
        )
    if "same name" in low or "duplicate" in low:
        return NameTakenError(
            f"the service name {name!r} is already used by another service on this cluster that is not yours "
            f"({said}): choose another service.name",
            **fields,
        )
    return exc


class CannotServeError(errors.BackendAIError):
    """The cluster cannot run model services as it is set up (no coordinator, no inference session type)."""


class NameTakenError(errors.BackendAIError):
    """A service of that name exists and is not ours."""
