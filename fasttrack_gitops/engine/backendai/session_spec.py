"""What a batch session is asked to be: its `SessionSpec`, its deterministic name, and the POST /session body.

The body is built for the negotiated server (`ServerInfo`): a field the
server's validator would refuse (23.09 forbids unknown keys with a 400) is
left out and named, so the caller can log it. Pure: sessions.py sends it.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fasttrack_gitops.engine.backendai.versions import ServerInfo, parse_version

NAME_PATTERN = re.compile(r"^(?=.{4,64}$)\w[\w.-]*\w$", re.ASCII)  # the manager's session-name check
MOUNT_OPTIONS_API = "v8.20240315"  # config.mount_options: 24.03 and later
BATCH_TIMEOUT_MANAGER = (24, 12)  # batch_timeout: manager 24.12 and later (no API version marks it)


@dataclass(frozen=True)
class SessionSpec:
    """One batch session as a task attempt asks for it, refused here when the manager would refuse it."""

    name: str
    image: str
    startup_command: str
    architecture: str | None = None  # None: the manager's default (its own host's architecture)
    group: str | None = None  # the project name; None: the manager's default ("default")
    domain: str | None = None
    scaling_group: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)  # cpu, mem, cuda.shares, cuda.device
    resource_opts: Mapping[str, Any] = field(default_factory=dict)  # shmem
    cluster_mode: str = "single-node"
    cluster_size: int = 1
    environ: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[str, ...] = ()  # vfolder names ("name" or "name/sub/path")
    mount_map: Mapping[str, str] = field(default_factory=dict)  # vfolder name -> path (absolute, or under /home/work)
    mount_permissions: Mapping[str, str] = field(default_factory=dict)  # name -> ro|rw|wd; 24.03+ only
    bootstrap_script: str | None = None
    tag: str | None = None
    batch_timeout: int | None = None  # seconds; manager 24.12+ only (the executor keeps its own timeout)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mounts", tuple(self.mounts))
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"session name {self.name!r} is not 4-64 ASCII letters, digits, _ . - "
                "(starting and ending with a letter, digit or _); use session_name()"
            )
        if not self.image or not self.startup_command.strip():
            raise ValueError("a batch session needs an image and a non-empty startup command")
        if "shmem" in self.resources:
            raise ValueError("shmem goes in resource_opts, not in resources")
        if self.cluster_mode not in ("single-node", "multi-node") or self.cluster_size < 1:
            raise ValueError(
                f"cluster_mode must be single-node or multi-node and cluster_size >= 1, "
                f"not {self.cluster_mode!r} x {self.cluster_size}"
            )
        bad_env = sorted(k for k, v in self.environ.items() if not isinstance(k, str) or not isinstance(v, str))
        if bad_env:
            raise ValueError(f"environ values must be strings: {', '.join(map(str, bad_env))}")
        stray = sorted((set(self.mount_map) | set(self.mount_permissions)) - set(self.mounts))
        if stray:
            raise ValueError(f"mount_map/mount_permissions name folders that are not in mounts: {', '.join(stray)}")


def session_name(job_id: object, task: str, attempt: int, *, prefix: str = "ftg") -> str:
    """A deterministic session name: readable, within the manager's pattern, unique per (job, task, attempt).

    The readable part is folded to ASCII and cut to fit 64 characters; a hash of
    the exact inputs always ends the name, so two tasks that fold to the same
    text ("a b" and "a-b", "é" and "e") still get different names.
    """
    digest = hashlib.sha256(json.dumps([str(job_id), task, int(attempt)]).encode()).hexdigest()[:10]
    job = _slug(str(job_id))[:16].strip(".-") or "job"
    tail = f"-{int(attempt)}-{digest}"
    room = 64 - len(prefix) - len(job) - 2 - len(tail)
    task_part = _slug(task)[:room].strip(".-") or "task"
    return f"{prefix}-{job}-{task_part}{tail}"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.]+", "-", ascii_text).strip(".-")


def batch_session_body(spec: SessionSpec, server: ServerInfo) -> tuple[dict[str, Any], list[str]]:
    """The POST /session body for this server, and the names of the spec's fields it cannot take."""
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "type": "batch",
        "enqueueOnly": True,
        "startupCommand": spec.startup_command,
        "cluster_mode": spec.cluster_mode,
        "cluster_size": spec.cluster_size,
    }
    optional = {
        "architecture": spec.architecture,
        "group": spec.group,
        "domain": spec.domain,
        "tag": spec.tag,
        "bootstrap_script": spec.bootstrap_script,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    config: dict[str, Any] = {}
    for key, value in (
        ("resources", spec.resources),
        ("resource_opts", spec.resource_opts),
        ("scaling_group", spec.scaling_group),
        ("environ", spec.environ),
        ("mounts", list(spec.mounts)),
        ("mount_map", spec.mount_map),
    ):
        if value:
            config[key] = dict(value) if isinstance(value, Mapping) else value
    dropped = []
    if spec.mount_permissions:
        # Both parse: api_version is one of KNOWN_VERSIONS (choose_version picked it), as is MOUNT_OPTIONS_API.
        if parse_version(server.api_version) >= parse_version(MOUNT_OPTIONS_API):  # type: ignore[operator]
            config["mount_options"] = {
                name: {"type": "bind", "permission": permission} for name, permission in spec.mount_permissions.items()
            }
        else:
            dropped.append("mount_permissions")
    if spec.batch_timeout is not None:
        if _release(server.manager) >= BATCH_TIMEOUT_MANAGER:
            body["batch_timeout"] = int(spec.batch_timeout)
        else:
            dropped.append("batch_timeout")
    body["config"] = config
    return body, dropped


def _release(manager: str) -> tuple[int, int]:
    """'23.09.10' -> (23, 9); (0, 0) when unreadable (so no newer-only field is sent)."""
    match = re.match(r"(\d+)\.(\d+)", manager or "")
    return (int(match[1]), int(match[2])) if match else (0, 0)
