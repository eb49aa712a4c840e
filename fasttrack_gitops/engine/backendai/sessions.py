"""Compute sessions on the manager: one batch session per task attempt (backendai-api.md §2).

    spec = SessionSpec(name=session_name(job_id, task, attempt), image="python",
                       startup_command="python train.py", resources={"cpu": 1, "mem": "1g"})
    created = await create_batch_session(client, spec)     # POST /session, enqueueOnly
    info = await session_info(client, spec.name)           # SessionInfo, or SessionGone once it ended
    outcome = await session_result(client, created.id)     # GraphQL: status, result, exit code
    text = await session_logs(client, spec.name)

What a session is asked to be (`SessionSpec`, `session_name`, the create body
each server version takes) is in session_spec.py; here are the calls, the
statuses and answers they return, and the refusals they raise. A field the
server cannot take is left out of the body and logged. Names and ids always
travel through `path_params`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.graphql import gql
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec, batch_session_body

log = logging.getLogger("fasttrack_gitops.engine.backendai")


class SessionStatus(str, Enum):
    """A session's status; UNKNOWN stands for a string this client does not know (kept raw beside it)."""

    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    PULLING = "PULLING"
    PREPARING = "PREPARING"
    PREPARED = "PREPARED"
    CREATING = "CREATING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    RUNNING_DEGRADED = "RUNNING_DEGRADED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    DEPRIORITIZING = "DEPRIORITIZING"  # 26.4+
    RESERVED = "RESERVED"  # 26.8+
    PREEMPTED = "PREEMPTED"
    RESCHEDULING = "RESCHEDULING"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, raw: object) -> SessionStatus:
        """The status for a server string; UNKNOWN (never an exception) for one we do not know."""
        try:
            return cls(str(raw).strip().upper())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_final(self) -> bool:
        """The session will not change any more (ERROR too: it stays until destroyed, but never runs)."""
        return self in (SessionStatus.TERMINATED, SessionStatus.CANCELLED, SessionStatus.ERROR)

    @property
    def is_waiting(self) -> bool:
        """Queued, not yet given resources (what a timeout stuck in PENDING reports)."""
        return self in _WAITING

    @property
    def holds_resources(self) -> bool:
        """The manager counts the session's slots as used (it was scheduled and has not ended; not PENDING)."""
        return (
            not (self.is_waiting or self.is_final or self is SessionStatus.UNKNOWN) or self is SessionStatus.SCHEDULED
        )


_WAITING = frozenset(
    {
        SessionStatus.PENDING,
        SessionStatus.SCHEDULED,
        SessionStatus.DEPRIORITIZING,
        SessionStatus.RESERVED,
        SessionStatus.PREEMPTED,
        SessionStatus.RESCHEDULING,
    }
)


class SessionResult(str, Enum):
    UNDEFINED = "UNDEFINED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @classmethod
    def parse(cls, raw: object) -> SessionResult:
        try:
            return cls(str(raw).strip().upper())
        except ValueError:
            return cls.UNDEFINED


class UnknownImageError(errors.NotFoundError):
    """The manager does not know the image (404 object-not-found on create)."""


class ResourceSlotError(errors.BackendAIError):
    """The session asks for a resource slot the cluster does not have (e.g. cuda.device, no GPUs)."""


class SessionExistsError(errors.BackendAIError):
    """A live session already has this name (with another image, or reuse refused)."""

    def __init__(self, message: str, *, existing_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.existing_id = existing_id


@dataclass(frozen=True)
class CreatedSession:
    id: str
    name: str
    status: SessionStatus
    status_raw: str
    created: bool  # False: a live session of that name and image already existed and was reused
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class SessionInfo:
    """GET /session/{name} while the session is alive; several fields are Python-repr strings upstream."""

    name: str
    status: SessionStatus
    status_raw: str
    status_info: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class SessionGone:
    """The manager has no live session of that name or id: on 23.09, a finished one too."""

    name: str
    message: str


@dataclass(frozen=True)
class SessionOutcome:
    """What GraphQL `compute_session` says, also after termination."""

    id: str
    name: str | None
    status: SessionStatus
    status_raw: str
    status_info: str | None
    result: SessionResult
    exit_code: int | None  # the main container's (status_data.kernel.exit_code)
    status_data: Mapping[str, Any]
    error: str | None = None  # status_data.error of a session in ERROR

    @property
    def reason(self) -> str:
        """status_info, and the error when there is one: the server's words for why it ended."""
        return "; ".join(part for part in (self.status_info, self.error) if part) or self.status_raw


async def create_batch_session(client, spec: SessionSpec) -> CreatedSession:
    """Enqueue a batch session (it returns at once, PENDING); refusals raise a BackendAIError subclass."""
    server = client.server or await client.negotiate()
    body, dropped = batch_session_body(spec, server)
    for name in dropped:
        log.warning(
            "session %s: %s is not supported by Backend.AI %s (API %s); not sent",
            spec.name,
            name,
            server.manager,
            server.api_version,
        )
    try:
        doc = await client.request("POST", "/session", json=body)
    except errors.BackendAIError as exc:
        refined = _creation_error(exc, spec)
        if refined is exc:
            raise
        raise refined from exc
    status = str(doc.get("status", ""))
    return CreatedSession(
        str(doc["sessionId"]),
        str(doc.get("sessionName") or spec.name),
        SessionStatus.parse(status),
        status,
        bool(doc.get("created", True)),
        doc,
    )


def _creation_error(exc: errors.BackendAIError, spec: SessionSpec) -> errors.BackendAIError:
    problem = exc.problem
    said = problem.describe() if problem else str(exc)
    text = " ".join(filter(None, (problem.title, problem.msg))).lower() if problem else ""
    fields: errors.ErrorFields = {"status": exc.status, "problem": problem, "method": exc.method, "path": exc.path}
    where = f"session {spec.name}"
    if exc.status == 404 and exc.slug == "object-not-found" and "image" in text:
        return UnknownImageError(
            f"Backend.AI does not know the image {spec.image!r} ({where}): {said}; check the task's "
            "environment.image against the images (or aliases) the cluster has",
            **fields,
        )
    if exc.slug == "invalid-api-params" and ("resource allocation" in text or "slot type" in text):
        asked = [slot for slot in spec.resources if slot.lower() in text] or sorted(spec.resources)
        return ResourceSlotError(
            f"the Backend.AI cluster has no resource slot {', '.join(asked)} ({where}): {said}; "
            "see the slots it offers with `fasttrack-gitops doctor` (GET /config/resource-slots)",
            **fields,
        )
    if exc.slug == "session-already-exists":
        existing = problem.data.get("existingSessionId") if problem and isinstance(problem.data, dict) else None
        return SessionExistsError(
            f"a live Backend.AI session is already named {spec.name} ({said}); destroy it or use another attempt",
            existing_id=existing,
            **fields,
        )
    return exc


async def session_info(client, name: str) -> SessionInfo | SessionGone:
    """GET /session/{name}: the live session, or SessionGone (404: finished, cancelled or never there)."""
    try:
        doc = await client.request("GET", "/session/{name}", path_params={"name": name})
    except errors.NotFoundError as exc:
        if exc.slug == "object-not-found":
            return SessionGone(name, exc.problem.describe() if exc.problem else str(exc))
        raise  # url-not-found, too-many-sessions-matched: not an answer about this session
    status = str(doc.get("status", ""))
    info = doc.get("statusInfo")
    return SessionInfo(name, SessionStatus.parse(status), status, None if info in (None, "None") else str(info), doc)


async def session_logs(client, name: str) -> str:
    """The container log (stdout and stderr) of a live or finished session, by name or id."""
    doc = await client.request("GET", "/session/{name}/logs", path_params={"name": name})
    logs = (doc or {}).get("result", {}).get("logs") if isinstance(doc, dict) else None
    return logs if isinstance(logs, str) else ""


async def destroy_session(client, name: str, *, forced: bool = False) -> Mapping[str, Any] | None:
    """DELETE /session/{name}: its last stats, or None when it was already gone (404)."""
    params = {"forced": "true"} if forced else None
    try:
        doc = await client.request("DELETE", "/session/{name}", path_params={"name": name}, params=params)
    except errors.NotFoundError as exc:
        if exc.slug == "object-not-found":
            return None
        raise
    return doc.get("stats", doc) if isinstance(doc, dict) else {}


COMPUTE_SESSION_QUERY = """query($id: UUID!) {
  compute_session(id: $id) {
    id name status status_info status_data result
    containers { cluster_role cluster_idx status status_data }
  }
}"""


async def session_result(client, session_id: str) -> SessionOutcome | SessionGone:
    """GraphQL compute_session by id: status, result and exit code, also after termination."""
    data = await gql(client, COMPUTE_SESSION_QUERY, {"id": str(session_id)})
    doc = data.get("compute_session")
    if not isinstance(doc, dict):
        return SessionGone(str(session_id), f"GraphQL compute_session knows no session {session_id}")
    status_data = _json_object(doc.get("status_data"))
    containers = sorted(
        (c for c in doc.get("containers") or () if isinstance(c, dict)),
        key=lambda c: (c.get("cluster_role") != "main", c.get("cluster_idx") or 0),
    )
    exit_code = next(
        (code for c in containers if (code := _exit_code(_json_object(c.get("status_data")))) is not None),
        _exit_code(status_data),
    )
    error = status_data.get("error")
    if isinstance(error, dict):
        error = error.get("repr") or error.get("name")
    status = str(doc.get("status", ""))
    return SessionOutcome(
        str(doc.get("id") or session_id),
        doc.get("name"),
        SessionStatus.parse(status),
        status,
        doc.get("status_info"),
        SessionResult.parse(doc.get("result")),
        exit_code,
        status_data,
        str(error) if error else None,
    )


def _json_object(value: Any) -> dict[str, Any]:
    """status_data: a JSON string in GraphQL (JSONString), a dict in REST, or null."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _exit_code(status_data: Mapping[str, Any]) -> int | None:
    kernel = status_data.get("kernel")
    code = kernel.get("exit_code") if isinstance(kernel, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


# Every status 23.09 knows (its GraphQL refuses a name it does not): with it the list includes ended sessions.
STATUSES_2309 = "PENDING,SCHEDULED,PREPARING,RUNNING,RESTARTING,TERMINATING,TERMINATED,ERROR,CANCELLED"
SESSIONS_NAMED_QUERY = """query($f: String, $s: String) {
  compute_session_list(limit: 20, offset: 0, filter: $f, status: $s, order: "-created_at") {
    items { id name status result }
  }
}"""


@dataclass(frozen=True)
class NamedSession:
    """A session of a given name, live or ended, as GraphQL lists it."""

    id: str
    status: SessionStatus
    status_raw: str


async def sessions_named(client, name: str) -> list[NamedSession]:
    """Every session of this name the keypair made, newest first, ended ones included (GraphQL
    compute_session_list filtered by name: what GET /session, which finds live ones only, cannot say).
    GraphQLError on a manager whose schema cannot list so (23.09's can)."""
    data = await gql(client, SESSIONS_NAMED_QUERY, {"f": f'name == "{name}"', "s": STATUSES_2309})
    listed = data.get("compute_session_list")
    items = listed.get("items") if isinstance(listed, dict) else None
    return [
        NamedSession(str(item["id"]), SessionStatus.parse(item.get("status")), str(item.get("status", "")))
        for item in items or ()
        if isinstance(item, dict) and item.get("name") == name and item.get("id")
    ]
