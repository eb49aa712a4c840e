"""A deployment (or serving) task on Backend.AI: one attempt makes its model service ready.

What one attempt does (calls to the manager in brackets):

1. The model folder `service.model` is found or created with usage_mode
   model (engine/backendai/model_folders.py); the task's `code:` folder is
   staged into its root [uploads], where the manager looks for the model
   definition, and with `service.stage_inputs` the dependencies' outputs
   (copied from the pipeline data folder). The definition (`service.model_definition_path`, from the code
   folder, else already in the model folder) is checked before anything is
   created: missing, or invalid for this server (23.09 refuses unknown keys),
   is an ERROR naming the file. 23.09 reads only `model-definition.yaml`
   at the root: another path is copied to that name (and said).
2. The service is idempotent by name [GET /services?name=]: one of ours with
   that name is updated. On 26.x it is rolled out [PUT
   /deployments/{id}/policy with max_surge / max_unavailable; GraphQL
   modify_endpoint: a new revision] and ready when the deployment is READY
   again [GET /deployments/{id}]. Elsewhere (23.09 has no rolling update),
   or when the server refuses the rollout, the old one is deleted and a new
   one created (downtime; said in the log and the check); the name stays
   taken until the manager destroyed the old service, so creation is retried
   meanwhile. A name held by someone else's service is refused.
3. Create [POST /services, only the keys this server accepts]; the attempt
   has started. Then it is polled with backoff until enough routes are
   healthy and the endpoint has a URL [GET /services/{id} on 23.09, GraphQL
   routings later]; routes that failed to start fail it at once [GET
   /services/{id}/errors]. The timeout (the task's, else 30 minutes) counts
   from creation. A service that never became ready, or whose attempt was
   cancelled, is deleted [DELETE /services/{id}] (a rolled-out one is kept:
   its earlier revision served before).
4. Ready: SUCCEEDED, with the URL; for a service that is not public, how to
   get a token (never a token). `ephemeral: true` services are deleted when
   their job ends (`job_ended`, also on cancel).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path

import yaml

from fasttrack_gitops.core import model_definition
from fasttrack_gitops.core.job import Outcome, ServiceEndpoint
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.services import DEFAULT_READY_TIMEOUT, ServiceSpec, service_spec
from fasttrack_gitops.core.pipeline.units import format_size
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import errors, model_folders, services
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.executors.backendai.task_spec import resources
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec, Started, error_result, timed_out

log = logging.getLogger("fasttrack_gitops.engine.backendai")
NAME_FREE_WAIT = 120.0  # seconds to wait for a deleted service's name to be free again


class ServiceFailed(Exception):
    """The service will not become ready; the message says why."""


class _Cancelled(Exception):
    """The job was cancelled while the service was not ready yet."""


class Deployments:
    """The model services one Backend.AI executor made, per job (to delete ephemeral ones when the job ends)."""

    def __init__(
        self,
        client: Client,
        *,
        folder_host: str | None = None,
        folder_group: str | None = None,
        poll: float = 0.5,
        keep: bool = False,
    ):
        self.client = client
        self.keep = keep  # ephemeral services outlive their job
        self.folder_host, self.folder_group = folder_host, folder_group
        self.poll = poll  # the first wait between looks; it doubles up to 15 s
        self._ephemeral: dict[str, dict[str, str]] = {}  # job id -> {service name: endpoint id}
        # 23.09: model folder -> (service, definition) copied to its model-definition.yaml; one per folder
        self._copied: dict[str, tuple[str, bytes]] = {}

    async def run(
        self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started, endpoint_id: str | None = None
    ) -> AttemptResult:
        """Make the task's service ready; with `endpoint_id` (a runner that died had created it: reattach), follow
        that service to readiness instead of creating one."""
        started_at = time.time()
        task = spec.task
        try:
            service = service_spec(task.name, task.service)
        except ValueError as exc:
            return error_result(spec, started_at, str(exc))
        if not task.image:
            return error_result(
                spec, started_at, f"task '{task.name}' has no image: a model service needs environment.image"
            )
        notes: list[str] = []
        lines = _AttemptLog(spec)
        try:
            dialect = await services.dialect_of(self.client)
            rolling = False
            if endpoint_id is None:
                await self._prepare_model_folder(spec, service, dialect, notes, lines)
                endpoint_id, rolling = await self._create(spec, service, dialect, notes, lines)
                started({"service": service.name, "endpoint_id": endpoint_id})
            else:
                lines.write(f"fasttrack-gitops: following service {service.name} ({endpoint_id}) again")
        except (errors.BackendAIError, ServiceFailed, OSError) as exc:
            lines.write(f"fasttrack-gitops: {exc}")
            return AttemptResult(Outcome.ERROR, None, started_at, time.time(), masked(str(exc), spec.masks))
        if service.ephemeral and not self.keep:
            self._ephemeral.setdefault(spec.job_id, {})[service.name] = endpoint_id
        try:
            timeout = spec.timeout or DEFAULT_READY_TIMEOUT  # counted from the creation, just done
            url = await self._wait_ready(service, endpoint_id, dialect, timeout, cancel, lines, rolling=rolling)
        except asyncio.CancelledError:  # our caller gave up on us: leave no unfinished service behind
            await asyncio.shield(self._delete(endpoint_id, service.name, lines))
            raise
        except (ServiceFailed, errors.BackendAIError, _Cancelled) as exc:
            cancelled = isinstance(exc, _Cancelled)
            message = "cancelled" if cancelled else str(exc)
            outcome = Outcome.CANCELLED if cancelled else Outcome.FAILED
            if message.startswith("timed out"):
                outcome = Outcome.TIMED_OUT
            if rolling:  # the earlier revision served before: the server keeps what it can of it
                message += f"; the service {service.name} was left as the rolling update left it"
            else:
                await self._delete(endpoint_id, service.name, lines)
                self._ephemeral.get(spec.job_id, {}).pop(service.name, None)
                message += f"; the service {service.name} was deleted"
            lines.write(f"fasttrack-gitops: {message}")
            return AttemptResult(outcome, None, started_at, time.time(), masked(message, spec.masks))
        access = "" if service.open_to_public else _token_hint(endpoint_id)
        ready = f"service {service.name} is ready at {url}" + (
            "" if service.open_to_public else f" (not public: {access})"
        )
        lines.write(f"fasttrack-gitops: {ready}")
        endpoint = ServiceEndpoint(service.name, url, service.open_to_public, access, "; ".join(notes))
        return AttemptResult(Outcome.SUCCEEDED, 0, started_at, time.time(), masked(ready, spec.masks), endpoint)

    async def job_ended(self, job_id: str) -> None:
        """Delete the job's ephemeral services (the job ended, succeeded or not, or was cancelled)."""
        for name, endpoint_id in self._ephemeral.pop(job_id, {}).items():
            try:
                await services.delete_service(self.client, endpoint_id)
                log.info("ephemeral service %s (%s) deleted: its job %s ended", name, endpoint_id, job_id)
            except errors.BackendAIError as exc:
                log.warning("could not delete ephemeral service %s (%s): %s", name, endpoint_id, exc)

    # -- steps ------------------------------------------------------------------------------------

    async def _prepare_model_folder(
        self, spec: AttemptSpec, service: ServiceSpec, dialect: services.Dialect, notes: list[str], lines: _AttemptLog
    ) -> None:
        folder = service.model
        local = spec.workdir / service.definition_path
        content = await asyncio.to_thread(_read, local) if spec.task.code else None
        if content is None:
            content = await model_folders.read_file(self.client, folder, service.definition_path)
            if content is None:
                where = (
                    f"under the task's code folder {spec.task.code}/"
                    if spec.task.code
                    else "(give the task a code: folder)"
                )
                raise ServiceFailed(
                    f"the model definition {service.definition_path} is missing: put it {where}, "
                    f"or upload it to the model folder {folder}"
                )
        _check_definition(content, service.definition_path, dialect)
        await model_folders.ensure_model_folder(self.client, folder, host=self.folder_host, group=self.folder_group)
        if spec.task.code:
            count = await model_folders.stage(self.client, folder, spec.workdir)
            lines.write(f"fasttrack-gitops: staged {count} files of {spec.task.code}/ into model folder {folder}")
        if service.stage_inputs:
            pipeline_folder = datafolder.folder_name(spec.repository, spec.pipeline)
            for k, dependency in enumerate(spec.task.dependencies):
                job = spec.input_jobs[k] if spec.input_jobs else spec.job_id
                top = f"{datafolder.job_in_folder(job)}/{datafolder.task_outputs(dependency)}"
                count = await model_folders.copy_in(self.client, pipeline_folder, top, folder)
                lines.write(
                    f"fasttrack-gitops: staged {count} files of {dependency}'s outputs into model folder {folder}"
                )
        if not dialect.definition_path and not service.definition_is_default:
            other = self._copied.get(folder)
            if other is not None and other[0] != service.name and other[1] != content:
                raise ServiceFailed(
                    f"Backend.AI {dialect.manager} reads only model-definition.yaml at the model folder's root, and "
                    f"the service {other[0]} put its own definition there in model folder {folder}: give each "
                    "service its own service.model"
                )
            self._copied[folder] = (service.name, content)
            await model_folders.put_definition(self.client, folder, content)
            lines.write(
                f"fasttrack-gitops: Backend.AI {dialect.manager} reads only model-definition.yaml: copied "
                f"{service.definition_path} to it in model folder {folder}"
            )

    async def _create(
        self, spec: AttemptSpec, service: ServiceSpec, dialect: services.Dialect, notes: list[str], lines: _AttemptLog
    ) -> tuple[str, bool]:
        """The service's endpoint id, and whether it was rolled (an existing one updated in place)."""
        task = spec.task
        deployment = services.Deployment(
            spec=service,
            image=task.image or "",
            project=task.project,
            scaling_group=task.scaling_group,
            cluster_mode=task.cluster_mode,
            cluster_size=task.cluster_size,
            resources={k: str(v) if isinstance(v, float) else v for k, v in resources(task).items()},
            resource_opts={"shmem": format_size(task.resources.shmem)} if task.resources.shmem else {},
            environ=spec.env,
        )
        body = services.create_body(deployment, dialect)
        for what in body.withheld:
            notes.append(f"not sent: {what}")
            lines.write(f"fasttrack-gitops: Backend.AI {dialect.manager} was not sent {what}")
        existing = await services.find_service(self.client, service.name)
        if existing is not None:
            old = str(existing.get("id") or existing.get("endpoint_id"))
            why = f"Backend.AI {dialect.manager} has no rolling update"
            if dialect.rolling:
                try:
                    await self._roll(old, service, deployment, notes, lines)
                    return old, True
                except errors.BackendAIError as exc:  # a server that does not take it after all: the old way
                    why = f"Backend.AI {dialect.manager} refused the rolling update ({exc})"
            replaced = (
                f"replaced the service {service.name} ({old}) by deleting it and creating it again: {why}, "
                "so it was down meanwhile"
            )
            if service.max_surge is not None or service.max_unavailable is not None:
                replaced += " (max_surge / max_unavailable could not be honoured)"
            notes.append(replaced)
            lines.write(f"fasttrack-gitops: {replaced}")
            await services.delete_service(self.client, old)
        wait_until = time.monotonic() + (NAME_FREE_WAIT if existing is not None else 0)
        delay = self.poll
        while True:
            try:
                endpoint_id = await services.create_service(self.client, body.body, scaling_group=task.scaling_group)
                break
            except services.NameTakenError:
                if time.monotonic() >= wait_until:  # not ours, or ours never went away
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
        lines.write(
            f"fasttrack-gitops: created model service {service.name} ({endpoint_id}) on Backend.AI {dialect.manager}"
        )
        return endpoint_id, False

    async def _roll(
        self,
        endpoint_id: str,
        service: ServiceSpec,
        deployment: services.Deployment,
        notes: list[str],
        lines: _AttemptLog,
    ) -> None:
        """Update the service in place: its rolling policy (when the task bounds it), then a new revision."""
        bounds = ""
        if service.max_surge is not None or service.max_unavailable is not None:
            await services.set_rolling_policy(
                self.client, endpoint_id, max_surge=service.max_surge, max_unavailable=service.max_unavailable
            )
            bounds = f" (max_surge {service.max_surge}, max_unavailable {service.max_unavailable})"
        await services.modify_service(self.client, endpoint_id, deployment)
        rolled = f"updated the service {service.name} ({endpoint_id}) by a rolling update{bounds}"
        notes.append(rolled)
        lines.write(f"fasttrack-gitops: {rolled}")

    async def _wait_ready(
        self,
        service: ServiceSpec,
        endpoint_id: str,
        dialect: services.Dialect,
        timeout: float,
        cancel: asyncio.Event,
        lines: _AttemptLog,
        *,
        rolling: bool = False,
    ) -> str:
        """The URL once enough routes are healthy (and, for a rolling update, the deployment READY again)."""
        deadline = time.monotonic() + timeout
        delay = self.poll
        seen: tuple[int, bool] | None = None
        seen_status: str | None = None
        while True:
            state = await services.readiness(self.client, endpoint_id, dialect)
            if (state.healthy, bool(state.url)) != seen:
                seen = (state.healthy, bool(state.url))
                lines.write(
                    f"fasttrack-gitops: {state.healthy}/{service.replicas} routes healthy"
                    + (f", endpoint {state.url}" if state.url else ", no endpoint URL yet")
                )
            if state.healthy >= service.replicas and state.url:
                if not rolling:
                    return state.url
                status = await services.deployment_status(self.client, endpoint_id)
                if status == "READY":  # the new revision has replaced the old routes
                    return state.url
                if status != seen_status:
                    seen_status = status
                    lines.write(f"fasttrack-gitops: rolling update: the deployment is {status or 'not ready'}")
            failed, retries = await services.service_errors(self.client, endpoint_id)
            if failed:
                raise ServiceFailed(
                    f"the service {service.name} failed to start ({retries} retries): " + "; ".join(failed[:3])
                )
            now = time.monotonic()
            if now >= deadline:
                raise ServiceFailed(
                    f"{timed_out(timeout)} from its creation: the service {service.name} was not ready "
                    f"({state.healthy}/{service.replicas} routes healthy, {'an' if state.url else 'no'} endpoint URL)"
                )
            wait = min(delay * (0.8 + 0.4 * random.random()), deadline - now)
            try:
                await asyncio.wait_for(cancel.wait(), timeout=max(wait, 0.0))
            except asyncio.TimeoutError:
                pass
            else:
                raise _Cancelled
            delay = min(delay * 2, 15.0)

    async def _delete(self, endpoint_id: str, name: str, lines: _AttemptLog) -> None:
        try:
            await services.delete_service(self.client, endpoint_id)
        except errors.BackendAIError as exc:
            lines.write(f"fasttrack-gitops: could not delete the service {name} ({endpoint_id}): {exc}")


def _check_definition(content: bytes, path: str, dialect: services.Dialect) -> None:
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ServiceFailed(f"the model definition {path} is not valid YAML: {exc}") from exc
    found = model_definition.problems(doc, strict=dialect.strict)
    if found:
        server = f"Backend.AI {dialect.manager}"
        raise ServiceFailed(f"the model definition {path} is not valid for {server}: " + "; ".join(found))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _token_hint(endpoint_id: str) -> str:
    return f"get a token with `backend.ai service generate-token {endpoint_id}` or POST /services/{endpoint_id}/token"


class _AttemptLog:
    """The attempt's log: what was done, one line at a time, masked (a service has no log of its own here)."""

    def __init__(self, spec: AttemptSpec):
        self.path, self.masks = spec.log_path, spec.masks

    def write(self, line: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(masked(line, self.masks) + "\n")
        except OSError:
            pass
