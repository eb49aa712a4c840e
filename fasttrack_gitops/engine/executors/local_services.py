"""Deployment tasks on this machine: the model definition's server, run as a process, ready when healthy.

What the local executor does for a deployment (or serving) task, as a Backend.AI agent
would in the service's container (backendai-services.md §2):

1. The model folder `service.model` is a directory under the state folder
   (`<state>/models/<name>`, datafolder.model_folder); the task's `code:`
   folder is copied into it. The model definition
   (`service.model_definition_path`, default model-definition.yaml) is read
   there and checked (current servers' rules: a list or a string
   start_command); missing or invalid is an ERROR naming the file.
2. One service per name on this machine: one still running from an earlier
   job (`run --keep-services`, recorded in `<state>/services/<name>.json`) is
   stopped first. A port something else listens on is an ERROR naming it.
3. `pre_start_actions` run (write_file, write_tempfile, mkdir, run_command,
   log; paths under the mount destination, /models, are the model folder's),
   then `start_command` (an argv as given; a string through the definition's
   `shell`) in `model_path`, with BACKEND_MODEL_NAME / BACKEND_MODEL_PATH
   set, its output in `<state>/services/<name>.log`.
4. Ready when `health_check.path` answers `expected_status_code` on
   127.0.0.1:port (without a health check: when the port accepts connections).
   A server that exits, or fails more than `max_retries` probes after
   `initial_delay`, or is not ready within the task's timeout (default 30
   minutes), fails the attempt, with the end of its output (masked).
5. The URL is http://127.0.0.1:PORT. The process outlives its attempt: it is
   stopped when its job ends, unless the executor keeps services (`run
   --keep-services`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from fasttrack_gitops.core import model_definition
from fasttrack_gitops.core.job import Outcome, ServiceEndpoint
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.services import DEFAULT_READY_TIMEOUT, ServiceSpec, service_spec
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec, Started, error_result, timed_out
from fasttrack_gitops.engine.executors.processes import process_handle, stop_orphan

PROBE_INTERVAL = 0.2  # seconds between looks at a starting server (its own max_wait_time bounds each probe)
TAIL = 2000  # characters of a failed server's output shown


class ServiceError(Exception):
    """The local service cannot start or never became ready; the message says why."""


class _Cancelled(Exception):
    """The job was cancelled while the server was not ready yet."""


class LocalServices:
    """The model services the local executor runs, by job; stopped when their job ends unless kept."""

    def __init__(self, *, keep: bool = False, environ_filter=lambda name: False):
        self.keep = keep
        self.withheld = environ_filter  # our own variables a service must not inherit (secrets, our paths)
        # job id -> {service name: (its process, the state folder its record is in)}
        self._running: dict[str, dict[str, tuple[subprocess.Popen, Path]]] = {}

    async def run(self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started) -> AttemptResult:
        started_at = time.time()
        try:
            service = service_spec(spec.task.name, spec.task.service)
            state_dir = datafolder.state_of_job_folder(spec.vfroot.parent)
            folder = datafolder.model_folder(state_dir, service.model)
            definition = await asyncio.to_thread(self._prepare, spec, service, folder)
            proc, port, log = await asyncio.to_thread(self._start, spec, service, folder, definition, state_dir)
        except (ServiceError, OSError) as exc:
            return error_result(spec, started_at, str(exc))
        started(process_handle(proc.pid))
        self._running.setdefault(spec.job_id, {})[service.name] = (proc, state_dir)
        try:
            await self._wait_ready(spec, service, definition, proc, port, cancel)
        except asyncio.CancelledError:  # our caller gave up on us: leave no server behind
            self._stop(spec.job_id, service.name)
            raise
        except (ServiceError, _Cancelled) as exc:
            self._stop(spec.job_id, service.name)
            cancelled = isinstance(exc, _Cancelled)
            message = "cancelled" if cancelled else str(exc)
            tail = masked(_tail(log), spec.masks)
            _append(
                spec,
                f"fasttrack-gitops: {masked(message, spec.masks)}\n--- the end of the service's output ---\n{tail}",
            )
            outcome = (
                Outcome.CANCELLED
                if cancelled
                else Outcome.TIMED_OUT
                if message.startswith("timed out")
                else Outcome.FAILED
            )
            return AttemptResult(outcome, proc.poll(), started_at, time.time(), masked(message, spec.masks))
        url = f"http://127.0.0.1:{port}"
        ready = f"service {service.name} is ready at {url} (its output: {log})"
        _append(spec, f"fasttrack-gitops: {ready}")
        endpoint = ServiceEndpoint(
            service.name,
            url,
            True,
            "",
            "runs on this machine; stopped when the job ends"
            if not self.keep
            else "kept running after the job (run --keep-services)",
        )
        return AttemptResult(Outcome.SUCCEEDED, 0, started_at, time.time(), ready, endpoint)

    async def job_ended(self, job_id: str) -> None:
        """Stop the job's services unless they are kept."""
        if not self.keep:
            for name in list(self._running.get(job_id, {})):
                await asyncio.to_thread(self._stop, job_id, name)
        self._running.pop(job_id, None)

    async def close(self) -> None:
        for job_id in list(self._running):
            await self.job_ended(job_id)

    # -- steps (in a worker thread) ----------------------------------------------------------------

    def _prepare(self, spec: AttemptSpec, service: ServiceSpec, folder: Path) -> model_definition.ModelService:
        folder.mkdir(parents=True, exist_ok=True)
        if spec.task.code:
            shutil.copytree(spec.workdir, folder, dirs_exist_ok=True, symlinks=True)
        if service.stage_inputs:  # the dependencies' outputs, after the code
            for inputs in spec.inputs:
                if inputs.is_dir():
                    shutil.copytree(inputs, folder, dirs_exist_ok=True, symlinks=True)
        path = folder / service.definition_path
        where = f"the task's code folder {spec.task.code}/" if spec.task.code else f"the model folder {folder}"
        try:
            doc = yaml.safe_load(path.read_bytes())
        except FileNotFoundError:
            raise ServiceError(
                f"the model definition {service.definition_path} is missing: put it in {where}"
            ) from None
        except yaml.YAMLError as exc:
            raise ServiceError(f"the model definition {service.definition_path} is not valid YAML: {exc}") from exc
        found = model_definition.problems(doc, strict=False)
        if found:
            raise ServiceError(f"the model definition {service.definition_path} is not valid: " + "; ".join(found))
        return model_definition.service_of(doc)

    def _start(
        self, spec: AttemptSpec, service: ServiceSpec, folder: Path, d: model_definition.ModelService, state_dir: Path
    ) -> tuple[subprocess.Popen, int, Path]:
        services = state_dir / "services"
        services.mkdir(parents=True, exist_ok=True)
        record = services / f"{service.name}.json"
        replaced = False
        if record.exists():  # one service per name: an earlier job's, kept running, is replaced
            with contextlib.suppress(OSError, ValueError):
                replaced = "was stopped" in stop_orphan(json.loads(record.read_text()))
            record.unlink(missing_ok=True)
        _check_port(d.port, wait=2.0 if replaced else 0.0)
        cwd = _local(d.model_path, service.mount_destination, folder)
        env = {k: v for k, v in os.environ.items() if not self.withheld(k)}
        env.update(spec.env)
        env.update({"BACKEND_MODEL_NAME": d.model, "BACKEND_MODEL_PATH": str(cwd)})
        log = services / f"{service.name}.log"
        # The server's own output, as it wrote it (secrets it prints included): readable by us only; what we show
        # of it (the attempt's log, the reason) is masked.
        with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            for action in d.pre_start_actions:
                _run_action(action, service.mount_destination, folder, cwd, env, out)
            if isinstance(d.start_command, tuple):
                argv = [part.format_map({"model_path": str(cwd)}) for part in d.start_command]
            else:
                argv = [d.shell, "-c", d.start_command.replace("{model_path}", str(cwd))]
            cwd.mkdir(parents=True, exist_ok=True)
            try:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
                )
            except OSError as exc:
                raise ServiceError(
                    f"cannot start the service {service.name} ({argv[0]}): {exc.strerror or exc}"
                ) from exc
        record.write_text(json.dumps({**process_handle(proc.pid), "job": spec.job_id, "port": d.port}))
        return proc, d.port, log

    async def _wait_ready(
        self,
        spec: AttemptSpec,
        service: ServiceSpec,
        d: model_definition.ModelService,
        proc: subprocess.Popen,
        port: int,
        cancel: asyncio.Event,
    ) -> None:
        timeout = spec.timeout or DEFAULT_READY_TIMEOUT
        deadline = time.monotonic() + timeout
        health = d.health_check
        grace_until = time.monotonic() + (health.initial_delay if health else 0.0)
        failures = 0
        while True:
            if proc.poll() is not None:
                raise ServiceError(f"the service {service.name} exited with code {proc.returncode} before it was ready")
            ok, said = await asyncio.to_thread(_probe, port, health)
            if ok:
                return
            if health and time.monotonic() >= grace_until and said != "refused":
                failures += 1
                if failures > health.max_retries:
                    raise ServiceError(
                        f"the health check of {service.name} never passed: GET http://127.0.0.1:{port}{health.path} "
                        f"answered {said} {failures} times (expected {health.expected_status_code})"
                    )
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{timed_out(timeout)}: the service {service.name} was not ready on port {port} ({said})"
                )
            wait = min(health.max_wait_time if health and said != "refused" else PROBE_INTERVAL, PROBE_INTERVAL * 5)
            try:
                await asyncio.wait_for(cancel.wait(), timeout=wait)
            except asyncio.TimeoutError:
                continue
            raise _Cancelled

    def _stop(self, job_id: str, name: str) -> None:
        """Stop a service's whole process group and forget its record."""
        found = self._running.get(job_id, {}).pop(name, None)
        if found is None:
            return
        proc, state_dir = found
        if proc.poll() is None:
            stop_orphan(process_handle(proc.pid))
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        (state_dir / "services" / f"{name}.json").unlink(missing_ok=True)


def _check_port(port: int, *, wait: float = 0.0) -> None:
    """ServiceError when something listens on the port (`wait`: seconds for a server just stopped to let go)."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As servers bind (HTTPServer, uvicorn): connections in TIME_WAIT, such as our own health probes',
            # do not count; a listening socket does.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                return
            except OSError as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise ServiceError(
                    f"port {port} is already in use on this machine ({exc.strerror}): stop what listens there "
                    "(a service kept with --keep-services, another program), or change the model definition's port"
                ) from None


def _probe(port: int, health: model_definition.HealthCheck | None) -> tuple[bool, str]:
    """(ready, what was seen): the health path's status, or for no health check an open port."""
    try:
        if health is None:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True, "open"
        import http.client  # here: a run with no deployment task never loads the HTTP client (start-up time)

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=health.max_wait_time)
        try:
            connection.request("GET", health.path)
            status = connection.getresponse().status
        finally:
            connection.close()
        return status == health.expected_status_code, f"HTTP {status}"
    except ConnectionRefusedError:
        return False, "refused"
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__


def _local(path: str, mount: str, folder: Path) -> Path:
    """A container path under the mount destination, as a path in the local model folder."""
    pure, base = PurePosixPath(path), PurePosixPath(mount)
    if pure == base or base in pure.parents:
        rel = pure.relative_to(base)
        if ".." in rel.parts:
            raise ServiceError(f"{path} leaves the model folder")
        return folder / rel
    return Path(path) if not pure.is_absolute() else folder / pure.relative_to("/")


def _run_action(action: Any, mount: str, folder: Path, cwd: Path, env: dict, out) -> None:
    """One of the agent's pre_start_actions (kernel/service_actions.py), locally."""
    kind, args = action.get("action"), action.get("args") or {}
    if kind == "write_file":
        target = _local(str(args["filename"]), mount, folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a" if args.get("append") else "w") as handle:
            handle.write(str(args.get("body", "")))
        target.chmod(int(str(args.get("mode", "644")), 8))
    elif kind == "write_tempfile":
        with tempfile.NamedTemporaryFile("w", delete=False, dir=cwd if cwd.is_dir() else None) as handle:
            handle.write(str(args.get("body", "")))
    elif kind == "mkdir":
        _local(str(args["path"]), mount, folder).mkdir(parents=True, exist_ok=True)
    elif kind == "run_command":
        command = args.get("command")
        argv = [str(x) for x in command] if isinstance(command, list) else ["/bin/sh", "-c", str(command)]
        done = subprocess.run(argv, cwd=cwd if cwd.is_dir() else folder, env=env, stdout=out, stderr=out, check=False)
        if done.returncode != 0:
            raise ServiceError(f"the pre-start action {argv[0]} failed with exit code {done.returncode}")
    elif kind == "log":
        out.write(f"{args.get('message', '')}\n".encode())


def _append(spec: AttemptSpec, text: str) -> None:
    with contextlib.suppress(OSError), open(spec.log_path, "a", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-TAIL:]
    except OSError:
        return ""
