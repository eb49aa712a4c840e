"""Compute sessions in the emulator: 23.09's validation, a real lifecycle, the event stream, GraphQL.

    sessions = install(emu)   # also emu.sessions; routes below, processes killed when emu stops

POST /session checks the body as 23.09's trafaret does (an unknown key is a
400 naming it; 24.03 adds config.mount_options, 25.x batch_timeout), then the
name clash, the resource slots, the image and the folders, and enqueues. Each
batch session then moves PENDING -> SCHEDULED -> PREPARING -> RUNNING ->
TERMINATING -> TERMINATED (`step` seconds apart) and RUNNING is a real
`/bin/sh -c startup_command` in a temp dir with `environ`, so the exit code
and the log are real. GET /session/{name} is 404 once it ended (23.09);
logs and GraphQL `compute_session` still answer. GET /events/session
streams what the manager streams (23.09: session_enqueued, kernel_* events,
exitCode on success/failure; 25.x: session_<status>, exitCode null), with
a `: ping` every `ping_interval` seconds.

`like_realstack=True` does what the real 23.09 stack of
scripts/realstack does where it differs from reading the code:
no session_enqueued, session_scheduled or session_started events (RUNNING
shows only as kernel_started), and GraphQL's container exit code is -1 (the
command's exit code is only in the session_success/failure event).

Faults, each for the next session or stream: `error_next(reason)`,
`stuck_next()` (PENDING until destroyed), `unknown_status_next("WARMING_UP")`
(shown instead of PREPARING), `quota_next()`, `drop_stream(after=N)`,
`silent_stream()` (headers, then nothing, not even pings).

A cluster of limited size (emulator_capacity.py) sets `gate`, which holds a
session PENDING until the emulated scheduler places it.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from engine.backendai.emulator import DROP, Emulator, GQLError, Reply, Stream

NAME = re.compile(r"^(?=.{4,64}$)\w[\w.-]*\w$", re.ASCII)
IMAGES = {"cr.backend.ai/stable/python:3.9-ubuntu20.04": ("python",)}  # the realstack's one image
ALIVE_GONE = ("TERMINATED", "CANCELLED")  # 23.09's GET /session leaves these out
_TOP = [
    ("name", "session_name", "clientSessionToken"),
    ("image", "lang"),
    ("arch", "architecture"),
    ("type", "sessionType"),
    ("group", "groupName", "group_name"),
    ("domain", "domainName", "domain_name"),
    ("cluster_size", "clusterSize"),
    ("cluster_mode", "clusterMode"),
    ("config",),
    ("tag",),
    ("enqueueOnly",),
    ("maxWaitSeconds",),
    ("starts_at", "startsAt"),
    ("reuseIfExists",),
    ("startupCommand",),
    ("bootstrap_script", "bootstrapScript"),
    ("dependencies",),
    ("callback_url", "callbackUrl", "callbackURL"),
    ("owner_access_key",),
]
_CONFIG = [
    ("mounts",),
    ("mount_map", "mountMap"),
    ("environ",),
    ("scaling_group", "scalingGroup"),
    ("resources",),
    ("resource_opts", "resourceOpts"),
    ("preopen_ports", "preopenPorts"),
    ("agent_list", "agentList"),
]
_NEWER = {  # what each release accepts beyond 23.09: (top-level keys, config keys)
    (24, 3): ([], [("mount_options", "mountOptions")]),
    (24, 12): ([("batch_timeout", "batchTimeout")], []),
    (25, 0): ([("priority",), ("is_preemptible",)], [("mount_ids",), ("mount_id_map", "mountIdMap")]),
}


@dataclass
class EmuSession:
    id: str
    name: str
    access_key: str
    body: dict[str, Any]  # the create request as sent
    image: str
    type: str
    config: dict[str, Any]
    root: Path  # work/ is the cwd; console.log beside it
    fault: tuple | None = None
    status: str = "PENDING"
    status_info: str = ""
    status_data: dict = field(default_factory=dict)
    kernel_data: dict = field(default_factory=dict)  # the main container's status_data (exit code)
    result: str = "UNDEFINED"
    kernel_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    terminated_at: datetime | None = None
    process: subprocess.Popen | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)  # stop the lifecycle where it is
    destroyed: bool = False  # user destroy of a running session: it still terminates in order

    @property
    def log(self) -> Path:
        return self.root / "console.log"


class Sessions:
    def __init__(
        self,
        emu: Emulator,
        *,
        step: float = 0.05,
        ping_interval: float = 15.0,
        grace: float = 1.0,
        like_realstack: bool = False,
    ):
        self.emu, self.step, self.ping_interval, self.grace = emu, step, ping_interval, grace
        self.pings_sent = 0  # keep-alives written, on every stream: a test counts them instead of sleeping
        self.like_realstack = like_realstack
        self.release = tuple(int(p) for p in emu.manager.split(".")[:2])
        self.modern = self.release >= (25, 0)  # 25.x event names, exitCode always null
        self.slots = {"cpu": "count", "mem": "bytes"}
        self.images = dict(IMAGES)
        self.resolve_mount = None  # set to name -> Path | None to check and link config.mounts
        self.gate = None  # set to session -> bool: holds it PENDING until placed (False: cancelled meanwhile)
        self.sessions: list[EmuSession] = []
        self._faults: list[tuple] = []
        self._stream_faults: list[tuple] = []
        self._subscribers: set[queue.Queue] = set()
        self.published: list[tuple[float, str, str]] = []  # (when, event, session name): every event streamed
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="emu-sessions-"))

    # -- faults and lookups ----------------------------------------------------------------------
    def error_next(self, reason: str = "failed-to-start", message: str = "KernelCreationFailed: no agent") -> None:
        self._faults.append(("error", reason, message))

    def stuck_next(self) -> None:
        self._faults.append(("stuck",))

    def unknown_status_next(self, raw: str = "WARMING_UP", hold: float = 0.5) -> None:
        self._faults.append(("unknown", raw, hold))

    def quota_next(self) -> None:
        self._faults.append(("quota",))

    def drop_stream(self, after: int = 0) -> None:
        self._stream_faults.append(("drop", after))

    def silent_stream(self) -> None:
        self._stream_faults.append(("silent",))

    def get(self, name_or_id: str) -> EmuSession:
        return next(s for s in reversed(self.sessions) if name_or_id in (s.name, s.id))

    def close(self) -> None:
        for s in self.sessions:
            s.cancelled.set()
            if s.process and s.process.poll() is None:
                _kill(s.process, signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=2)
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- POST /session ---------------------------------------------------------------------------
    def create(self, req) -> Reply:
        try:
            doc = json.loads(req.body or b"{}")
        except ValueError:
            return _invalid("Malformed body")
        top, config_keys = list(_TOP), list(_CONFIG)
        for release, (more_top, more_config) in _NEWER.items():
            if self.release >= release:
                top, config_keys = top + more_top, config_keys + more_config
        params, problems = _check(doc if isinstance(doc, dict) else {}, top, ("name", "image"))
        if isinstance(params.get("config", {}), dict):
            config, config_problems = _check(params.get("config", {}), config_keys, ())
            if config_problems:
                problems["config"] = config_problems
        else:
            config, problems["config"] = {}, "value is not a dict"
        problems.update(_types(params, config))
        if problems:
            return _invalid("Input validation error", problems)
        kind = params.get("type", "interactive")
        if kind == "batch" and not params.get("startupCommand"):
            return _invalid("Batch type session requires startup command")
        clash = next(
            (
                s
                for s in self.sessions
                if s.name == params["name"] and s.access_key == req.access_key and s.status not in ALIVE_GONE
            ),
            None,
        )
        image = self._image(params["image"])
        if clash:
            if params.get("reuseIfExists", True) and clash.image == image:
                return Reply.json(
                    {
                        "sessionId": clash.id,
                        "sessionName": clash.name,
                        "status": clash.status,
                        "service_ports": [],
                        "created": False,
                    },
                    201,
                )
            return Reply.problem(
                400, "session-already-exists", "The session already exists.", data={"existingSessionId": clash.id}
            )
        unknown = [slot for slot in (config.get("resources") or {}) if slot not in self.slots]
        if unknown:
            return _invalid(f"Invalid resource allocation: ('Unknown slot type', {unknown[0]!r})")
        if image is None:
            return Reply.problem(
                404, "object-not-found", "No such environment image.", f"Unknown image references: {params['image']}"
            )
        mounts = self._mounts(config)
        if isinstance(mounts, Reply):
            return mounts
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault and fault[0] == "quota":
            return Reply.problem(
                412 if self.release < (25, 0) else 400,
                "quota-exceeded",
                "You have reached your resource limit.",
                "Your resource request exceeds the keypair's total resource slots.",
            )
        s = EmuSession(
            str(uuid.uuid4()),
            params["name"],
            req.access_key,
            doc,
            image,
            kind,
            config,
            self._tmp / uuid.uuid4().hex,
            fault,
        )
        (s.root / "work").mkdir(parents=True)
        s.log.touch()
        with self._lock:
            self.sessions.append(s)
        if not self.like_realstack:
            self._publish(s, "session_pending" if self.modern else "session_enqueued")
        thread = threading.Thread(target=self._run, args=(s, mounts), daemon=True)
        self._threads.append(thread)
        thread.start()
        return Reply.json(
            {"sessionId": s.id, "sessionName": s.name, "status": "PENDING", "servicePorts": [], "created": True}, 201
        )

    def _image(self, ref: str) -> str | None:
        return next((canonical for canonical, aliases in self.images.items() if ref in (canonical, *aliases)), None)

    def _mounts(self, config: dict) -> dict[str, Path] | Reply:
        """kernel path -> host folder, when `resolve_mount` is set (23.09: an unknown folder is a 404)."""
        found = {}
        for entry in config.get("mounts") or ():
            name, _, sub = entry.partition("/")
            folder = self.resolve_mount(name) if self.resolve_mount else None
            if self.resolve_mount and folder is None:
                return Reply.problem(
                    404, "object-not-found", "No such virtual folder.", f"VFolder {name} is not found or not accessible"
                )
            if folder is not None:
                found[(config.get("mount_map") or {}).get(entry) or f"/home/work/{name}"] = Path(folder) / sub
        return found

    # -- the lifecycle ---------------------------------------------------------------------------
    def _run(self, s: EmuSession, mounts: dict[str, Path]) -> None:
        fault = s.fault or ("",)
        scheduled = [] if self.like_realstack else ["session_scheduled"]
        if fault[0] == "stuck" or (self.gate is not None and not self.gate(s)):
            return
        if not self._advance(s, "SCHEDULED", *scheduled):
            return
        if fault[0] == "unknown" and not self._advance(s, fault[1], f"session_{fault[1].lower()}"):
            return
        preparing = ["session_preparing"] if self.modern else ["kernel_preparing", "kernel_creating"]
        if not self._advance(s, "PREPARING", *preparing, hold=fault[2] if fault[0] == "unknown" else None):
            return
        env = self._environ(s, mounts)
        if fault[0] == "error":
            s.status_data = {"error": {"src": "agent", "name": "KernelCreationFailed", "repr": fault[2]}}
            self._advance(s, "ERROR", "kernel_cancelled", "session_cancelled", info=fault[1])
            return
        script = s.body.get("bootstrap_script", s.body.get("bootstrapScript"))
        if script:
            self._spawn(s, script, env).wait()
            if s.cancelled.is_set():
                return
        s.process = self._spawn(s, s.body["startupCommand"], env) if s.type == "batch" else None
        started = (
            ["session_started"]
            if self.modern
            else ["kernel_started", "session_started"][: 1 + (not self.like_realstack)]
        )
        if not self._advance(s, "RUNNING", *started, hold=0):
            return
        if s.process is None:  # interactive: runs until destroyed
            while not (s.destroyed or self.emu.stopping.wait(0.02)):
                pass
            code = None
        else:
            code = s.process.wait()
            code = 128 - code if code < 0 else code  # a signal death, as the agent reports it
        s.kernel_data = {"kernel": {"exit_code": -1 if self.like_realstack else code}}
        reason = "user-requested" if s.destroyed else "task-finished"
        if not s.destroyed and s.type == "batch":
            s.result = "SUCCESS" if code == 0 else "FAILURE"
            event = "session_success" if code == 0 else "session_failure"
            self._publish(s, event, "task-done" if code == 0 else "task-failed", None if self.modern else code)
        self._advance(s, "TERMINATING", "session_terminating", "kernel_terminating", info=reason, force=True)
        s.terminated_at = datetime.now(timezone.utc)
        self._advance(s, "TERMINATED", "kernel_terminated", "session_terminated", info=reason, force=True)

    def _spawn(self, s: EmuSession, command: str, env: dict[str, str]) -> subprocess.Popen:
        """`/bin/sh -c command` in the session's work dir, its own process group, output to the log."""
        with s.log.open("ab") as log:
            s.process = subprocess.Popen(
                ["/bin/sh", "-c", command], cwd=s.root / "work", env=env, stdout=log, stderr=log, start_new_session=True
            )
        return s.process

    def _advance(
        self,
        s: EmuSession,
        status: str,
        *events: str,
        info: str | None = None,
        hold: float | None = None,
        force: bool = False,
    ) -> bool:
        """After `hold` (default `step`) seconds, the next status and its events; False when cancelled."""
        if (s.cancelled.wait(self.step if hold is None else hold) and not force) or self.emu.stopping.is_set():
            return False
        with self._lock:
            if s.cancelled.is_set() and not force:
                return False
            s.status, s.status_info = status, info if info is not None else s.status_info
        reason = info or ""
        for event in (e for e in events if not (self.modern and e.startswith("kernel_"))):
            code = s.kernel_data.get("kernel", {}).get("exit_code") if event == "kernel_terminated" else None
            self._publish(s, event, reason, code)
        return True

    def _environ(self, s: EmuSession, mounts: dict[str, Path]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(s.root / "work"),
            **(s.config.get("environ") or {}),
            "BACKENDAI_SESSION_ID": s.id,
            "BACKENDAI_KERNEL_ID": s.kernel_id,
        }
        links = {}
        for dest, folder in mounts.items():  # the realstack's sandbox-less layout: work/.mounts/<basename>
            link = s.root / "work" / ".mounts" / Path(dest).name
            link.parent.mkdir(exist_ok=True)
            link.symlink_to(folder)
            links[dest] = str(link)
            env["BACKENDAI_VFOLDER_" + re.sub(r"\W", "_", Path(dest).name).upper()] = str(link)
        if links:
            env["BACKENDAI_MOUNTS"] = json.dumps(links)
        return env

    def _publish(self, s: EmuSession, event: str, reason: str = "", exit_code: int | None = None) -> None:
        row = {"session_id": s.id, "session_name": s.name, "access_key": s.access_key}
        if event.startswith("kernel_"):
            row.update(id=s.kernel_id, cluster_role="main", cluster_idx=0)
        with self._lock:
            subscribers = list(self._subscribers)
            self.published.append((time.time(), event, s.name))
        for subscriber in subscribers:
            subscriber.put((event, row, reason, exit_code))

    # -- GET, DELETE /session/{name}, logs ---------------------------------------------------------
    def _find(self, req, *, alive: bool) -> EmuSession | None:
        key = unquote(req.params["name"])  # as aiohttp's match_info gives it
        with self._lock:
            return next(
                (
                    s
                    for s in reversed(self.sessions)
                    if key in (s.name, s.id)
                    and s.access_key == req.access_key
                    and not (alive and s.status in ALIVE_GONE)
                ),
                None,
            )

    def info(self, req) -> Reply:
        s = self._find(req, alive=True)
        if s is None:
            return Reply.problem(404, "object-not-found", "No such session.")
        resources = s.config.get("resources") or {}
        slots = "{" + ", ".join(f"{k!r}: Decimal({str(v)!r})" for k, v in resources.items()) + "}"
        return Reply.json(
            {
                "domainName": s.body.get("domain", "default"),
                "groupId": "2de2b969-1d04-48a6-af16-0bc8adb3c831",
                "userId": "f38dea23-50fa-42a0-b5ae-338f5f4693f4",
                "lang": s.image,
                "image": s.image,
                "architecture": s.body.get("architecture", platform.machine()),
                "registry": s.image.split("/")[0],
                "tag": s.body.get("tag"),
                "containerId": s.kernel_id.replace("-", ""),
                "occupiedSlots": slots,
                "occupyingSlots": slots,
                "requestedSlots": slots,
                "occupiedShares": "{}",
                "environ": str(s.config.get("environ")),
                "resourceOpts": str(s.config.get("resource_opts")),
                "status": s.status,
                "statusInfo": str(s.status_info or None),
                "statusData": s.status_data,
                "age": int((datetime.now(timezone.utc) - s.created_at).total_seconds() * 1000),
                "creationTime": str(s.created_at),
                "terminationTime": None,
                "numQueriesExecuted": 0,
                "lastStat": None,
                "idleChecks": {},
            }
        )

    def logs(self, req) -> Reply:
        s = self._find(req, alive=True) or self._find(req, alive=False)  # allow_stale: finished ones too
        if s is None:
            return Reply.problem(404, "object-not-found", "No such session.")
        return Reply.json({"result": {"logs": s.log.read_text(errors="replace")}})

    def destroy(self, req) -> Reply:
        s = self._find(req, alive=True)
        if s is None:
            return Reply.problem(404, "object-not-found", "No such session.")
        forced = req.query.get("forced", "false").lower() in ("true", "1", "yes")
        with self._lock:
            if s.status == "PENDING":
                s.cancelled.set()
                s.status, s.status_info, s.terminated_at = "CANCELLED", "user-requested", datetime.now(timezone.utc)
                self._publish(s, "session_cancelled", "user-requested")
                return Reply.json({"stats": {}})
            if s.status != "RUNNING" and not forced:
                return Reply.problem(
                    403,
                    "generic-forbidden",
                    "Forbidden operation.",
                    "Cannot destroy sessions in scheduled/preparing/terminating/error status",
                )
            s.destroyed = True
            if s.status != "RUNNING":
                s.cancelled.set()
                s.status, s.status_info, s.terminated_at = "TERMINATED", "force-terminated", datetime.now(timezone.utc)
                self._publish(s, "session_terminated", "force-terminated")
        if s.process and s.process.poll() is None:
            _kill(s.process, signal.SIGTERM)
            try:
                s.process.wait(self.grace)
            except subprocess.TimeoutExpired:
                _kill(s.process, signal.SIGKILL)
                s.process.wait()
        return Reply.json({"stats": {"cpu_used": {"current": "0", "capacity": None}}})

    # -- GET /events/session ---------------------------------------------------------------------
    def events(self, req) -> Reply | Stream:
        allowed = [("name", "sessionName"), ("ownerAccessKey",), ("sessionId",), ("group", "groupName"), ("scope",)]
        params, problems = _check(req.query, allowed, ())
        scope = params.get("scope", "*")
        if scope not in ("*", "session", "kernel") and not (self.modern and scope == "session,kernel"):
            problems["scope"] = "value doesn't match any variant"
        session_id = params.get("sessionId")
        if session_id is not None and not _is_uuid(session_id):
            problems["sessionId"] = "value is not a valid UUID"
        if problems:
            return _invalid("Input validation error", problems)
        name, owner = params.get("name", "*"), params.get("ownerAccessKey") or req.access_key
        if self.modern:
            session_id = None  # 25.x filters on the name only

        def wanted(event: str, row: dict) -> bool:
            if scope in ("session", "kernel") and not event.startswith(scope + "_"):
                return False
            if session_id is not None:
                return row["session_id"] == session_id
            return name == "*" or (row["session_name"] == name and row["access_key"] == owner)

        subscriber: queue.Queue = queue.Queue()
        with self._lock:  # subscribed before the headers go out, as the manager does
            self._subscribers.add(subscriber)
        with self._lock:
            fault = self._stream_faults.pop(0) if self._stream_faults else None
        return Stream(
            200,
            self._sse(subscriber, wanted, fault),
            {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )

    def _sse(self, subscriber: queue.Queue, wanted, fault):
        try:
            if fault and fault[0] == "silent":
                self.emu.stopping.wait()
                return
            sent, ping_at = 0, time.monotonic() + self.ping_interval
            if fault and fault[1] == 0:
                yield DROP
                return
            while not self.emu.stopping.is_set():
                try:
                    event, row, reason, exit_code = subscriber.get(timeout=0.02)
                except queue.Empty:
                    if time.monotonic() >= ping_at:
                        ping_at = time.monotonic() + self.ping_interval
                        yield b": ping\r\n\r\n"  # aiohttp-sse's keep-alive, with its \r\n separator
                        self.pings_sent += 1
                    continue
                if not wanted(event, row):
                    continue
                payload = {
                    "reason": reason,
                    "sessionName": row["session_name"],
                    "ownerAccessKey": row["access_key"],
                    "sessionId": row["session_id"],
                    "exitCode": exit_code,
                }
                payload.update(
                    {
                        k: row[f]
                        for k, f in (("kernelId", "id"), ("clusterRole", "cluster_role"), ("clusterIdx", "cluster_idx"))
                        if row.get(f)
                    }
                )
                yield f"event: {event}\r\ndata: {json.dumps(payload)}\r\n\r\n".encode()
                sent += 1
                if fault and sent >= fault[1]:
                    yield DROP
                    return
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)

    # -- GraphQL compute_session(id:) -------------------------------------------------------------
    def compute_session(self, req, args: dict) -> dict | None:
        if not _is_uuid(str(args.get("id"))):
            raise GQLError(f"Variable '$id' got invalid value {args.get('id')!r}; UUID cannot represent it.")
        with self._lock:
            s = next((s for s in self.sessions if s.id == str(args["id"]) and s.access_key == req.access_key), None)
        return self._gql_row(s) if s else None

    def compute_session_list(self, req, args: dict) -> dict:
        """23.09's list: `status` a comma-separated list (default: the live ones), `filter` as its query language
        (only `name == "<name>"` here), newest first."""
        statuses = str(args.get("status") or "PENDING,SCHEDULED,PREPARING,RUNNING,RESTARTING,TERMINATING").split(",")
        name = None
        if args.get("filter"):
            match = re.fullmatch(r'\s*name\s*==\s*"([^"]*)"\s*', str(args["filter"]))
            if match is None:
                raise GQLError(f"Invalid filter expression: {args['filter']!r}")
            name = match.group(1)
        with self._lock:
            rows = [
                s
                for s in self.sessions
                if s.access_key == req.access_key and s.status in statuses and (name is None or s.name == name)
            ]
        rows.sort(key=lambda s: s.created_at, reverse=True)
        items = [self._gql_row(s) for s in rows[int(args.get("offset") or 0) :][: int(args.get("limit") or 20)]]
        return {"total_count": len(rows), "items": items}

    def _gql_row(self, s: EmuSession) -> dict:
        def when(t):
            return t.isoformat() if t else None

        container = {
            "id": s.kernel_id,
            "cluster_role": "main",
            "cluster_idx": 0,
            "status": s.status,
            "status_info": s.status_info or None,
            "status_data": json.dumps(s.kernel_data),
            "image": s.image,
            "container_id": s.kernel_id.replace("-", ""),
        }
        return {
            "id": s.id,
            "session_id": s.id,
            "name": s.name,
            "type": s.type.upper(),
            "tag": s.body.get("tag"),
            "image": s.image,
            "domain_name": s.body.get("domain", "default"),
            "access_key": s.access_key,
            "status": s.status,
            "status_info": s.status_info or None,
            "status_data": json.dumps(s.status_data),
            "result": s.result,
            "created_at": when(s.created_at),
            "terminated_at": when(s.terminated_at),
            "startup_command": s.body.get("startupCommand"),
            "containers": [container],
        }


def install(emu: Emulator, **options: Any) -> Sessions:
    """Add the session routes to `emu` (its own slots list replaces GET /config/resource-slots)."""
    sessions = Sessions(emu, **options)
    emu.route("POST", "/session", sessions.create)
    emu.route("POST", "/session/_/create", sessions.create)
    emu.route("GET", "/session/{name}", sessions.info)
    emu.route("DELETE", "/session/{name}", sessions.destroy)
    emu.route("GET", "/session/{name}/logs", sessions.logs)
    emu.route("GET", "/events/session", sessions.events)
    emu.gql_field("compute_session", sessions.compute_session, "ComputeSession")
    emu.gql_field("compute_session_list", sessions.compute_session_list, "ComputeSessionList")
    emu.route("GET", "/config/resource-slots", lambda req: Reply.json(sessions.slots))
    emu.sessions = sessions  # type: ignore[attr-defined]
    folders = getattr(emu, "vfolders", None)  # emulator_vfolders installed first: mount its folders
    if folders is not None:
        sessions.resolve_mount = folders.resolve
    emu.on_close(sessions.close)
    return sessions


def _check(doc: dict, groups: list[tuple[str, ...]], required: tuple[str, ...]) -> tuple[dict, dict]:
    """trafaret's t.Dict with aliased keys: values under each group's first name, and the errors."""
    names = {alias: group[0] for group in groups for alias in group}
    values, problems = {}, {}
    for key, value in doc.items():
        if key in names:
            values[names[key]] = value
        else:
            problems[key] = f"{key} is not allowed key"
    problems.update({key: "is required" for key in required if key not in values})
    return values, problems


def _types(params: dict, config: dict) -> dict:
    problems = {}
    if "name" in params and not (isinstance(params["name"], str) and NAME.match(params["name"])):
        problems["name"] = f"does not match pattern {NAME.pattern}"
    if params.get("type", "interactive") not in ("interactive", "batch", "inference"):
        problems["type"] = "value is not a valid SessionTypes"
    if params.get("cluster_mode", "single-node") not in ("single-node", "multi-node"):
        problems["cluster_mode"] = "value is not a valid ClusterMode"
    if not str(params.get("cluster_size", 1)).isdigit() or int(params.get("cluster_size", 1)) < 1:
        problems["cluster_size"] = "value is less than 1"
    environ = config.get("environ") or {}
    if not isinstance(environ, dict) or not all(isinstance(v, str) for v in environ.values()):
        problems["config"] = {"environ": "value is not a string"}
    return problems


def _invalid(msg: str, data: Any = None) -> Reply:
    return Reply.problem(400, "invalid-api-params", "Missing or invalid API parameters.", msg, data)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _kill(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the whole group: sh and what it started
    except ProcessLookupError:
        pass
