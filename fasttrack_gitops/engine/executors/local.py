"""The local executor: each attempt is a `/bin/sh -c COMMAND` process group on this machine.

- The task runs in its own session (so its whole process group can be
  killed), with stdin from /dev/null and stdout + stderr in one pipe that goes
  to the log (masked, capped; see logcap.py).
- Its environment is ours minus FTG_SECRET_* (secrets reach a task only
  through its own env) and minus our own PIPELINE_* paths (when we run inside
  a FastTrack task ourselves), then the task's variables, then PIPELINE_*.
- When bubblewrap works here the task also sees the pipeline data folder
  where FastTrack mounts it (/pipeline/outputs, /pipeline/input1..N,
  /pipeline/vfroot) with the rest of the host filesystem unchanged: one
  bubblewrap sandbox per executor, with a launcher inside that starts each
  task in a mount namespace of its own (sandbox.py); where the launcher
  cannot work, a bubblewrap per task (bubblewrap.py). Without bubblewrap,
  PIPELINE_* point at the real folders.
- When the shell exits, whatever it left running in its group is killed; a
  timeout or a cancel sends SIGTERM to the group, then SIGKILL after a grace.
- A shell killed by signal N has exit_code -N (Python's convention) and the
  message "killed by signal N". Under a bubblewrap per task the shell is
  bwrap's child and bwrap exits 128+N instead, which is reported as a plain
  exit code, as a shell reports a command of its own that a signal killed.

No thread per attempt: the exit is watched through a pidfd (Linux >= 5.3)
on the event loop, the output through a non-blocking pipe read on the loop
(processes.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.core.taskenv import SECRET_ENV_PREFIX
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.base import (
    AttemptResult,
    AttemptSpec,
    Started,
    error_result,
    local_cache_index,
    local_task_outputs,
    oserror_message,
    stop_live_attempts,
    timed_out,
)
from fasttrack_gitops.engine.executors.bubblewrap import (
    Bubblewrap,
    bwrap_command,
    bwrap_setting,
    mounted_folders,
    sandbox_prefix,
)
from fasttrack_gitops.engine.executors.logcap import DEFAULT_HEAD, DEFAULT_TAIL, LogCapture
from fasttrack_gitops.engine.executors.processes import (
    ProcessGroup,
    output_pipe,
    process_handle,
    start_group,
    stop_orphan,
)
from fasttrack_gitops.engine.executors.sandbox import Launched, SandboxLauncher, start_early

if TYPE_CHECKING:
    from fasttrack_gitops.engine.executors.local_services import LocalServices

log = logging.getLogger("fasttrack_gitops.engine.local")

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
READ_CHUNK = 1 << 20


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        *,
        bwrap: bool | None = None,  # None: use bubblewrap when it works here; False: never; True: required
        launcher: bool = True,  # under bubblewrap: one sandbox with a launcher (sandbox.py); False: one per task
        shell: str = "/bin/sh",
        head: int = DEFAULT_HEAD,
        tail: int = DEFAULT_TAIL,
        grace: float = KILL_GRACE,
        capacity: Resources | None = None,
        keep_services: bool = False,  # deployment tasks' servers keep running after their job (run --keep-services)
        withhold: Iterable[str] = (),  # values no inherited variable may carry (the daemon's own credentials)
    ):
        self.bwrap = bwrap if bwrap is not None else bwrap_setting(os.environ.get("FTG_BWRAP", ""))
        self.shell = shell
        self.head = head
        self.tail = tail
        self.grace = grace
        self._capacity = capacity
        self._bubblewrap = Bubblewrap(shell, SandboxLauncher() if launcher else None)
        # Without the sandbox's launcher (no sandbox, or a bubblewrap per task): the plain launcher, so that no
        # task's process outlives ours (sandbox_init.py); where it cannot work (not Linux >= 5.3), a process group
        # each, started by us.
        self._plain: SandboxLauncher | None = SandboxLauncher() if hasattr(os, "pidfd_open") else None
        self._live: dict[asyncio.Future, asyncio.Future] = {}  # stop -> finished, per running attempt
        self._buffer: bytearray | None = None  # one read buffer for every attempt: reads happen on one thread
        self._keep_services = keep_services
        self._services: LocalServices | None = None  # deployment tasks' servers, once one runs
        # By value, not by name: the daemon's tokens sit in variables its configuration names (*_env), whatever
        # they are called, and a task that inherited one could act as the daemon (SECURITY.md).
        self._withheld_values = frozenset(v for v in withhold if v)
        self._inherited_from: dict[bytes, bytes] | None = None  # the raw environment _inherited was built from
        self._inherited: dict[str, str] = {}
        self._warming: asyncio.Task | None = None  # warm_up(), while it starts the launcher

    def capacity(self) -> Resources | None:
        return self._capacity

    cache_index = local_cache_index
    task_outputs = local_task_outputs

    def warm_up(self) -> None:
        """Start the task launcher now, in the background (issue 17: ~35 ms of a 1-task run's critical path were its
        start): the sandbox's, probing bubblewrap with it, or else the plain one. Whatever it finds (bubblewrap does
        not work here, say) is found as on a first task's start, which waits for it."""
        if self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(self._warm())
            # What went wrong is met again, and said, by the first attempt; retrieved here so it is not logged twice.
            self._warming.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _warm(self) -> None:
        if await self._sandbox_prefix() is None or await self._bubblewrap.running_launcher() is None:
            await self._plain_launcher()  # no sandbox, or a bubblewrap per task (started through the plain launcher)

    async def close(self) -> None:
        """Stop attempts still running (they end CANCELLED) and wait for them; stop services not kept; then the
        sandbox's launcher."""
        if self._warming is not None:  # bounded: the launcher's start times out (START_TIMEOUT)
            await asyncio.gather(self._warming, return_exceptions=True)
        await stop_live_attempts(self._live)
        if self._services is not None:
            await self._services.close()
        if self._bubblewrap.launcher is not None:
            await self._bubblewrap.launcher.close()
        if self._plain is not None:
            await self._plain.close()

    async def job_ended(self, job_id: str) -> None:
        """The job ended: its deployment tasks' servers are stopped (unless kept)."""
        if self._services is not None:
            await self._services.job_ended(job_id)

    @property
    def services(self) -> LocalServices:
        """Deployment tasks' servers (local_services.py, imported on first need: most runs have none)."""
        if self._services is None:
            from fasttrack_gitops.engine.executors.local_services import LocalServices

            self._services = LocalServices(keep=self._keep_services, environ_filter=self._withheld)
        return self._services

    @property
    def launcher(self) -> SandboxLauncher | None:
        """The sandbox's launcher (sandbox.py); None when tasks get a bubblewrap each, or none."""
        return self._bubblewrap.launcher

    @property
    def plain_launcher(self) -> SandboxLauncher | None:
        """The launcher of tasks run without the sandbox (sandbox.py); None where it cannot work."""
        return self._plain

    async def sandboxed(self) -> bool:
        """Whether attempts run under bubblewrap (probed once)."""
        return await self._sandbox_prefix() is not None

    async def reattach(
        self, spec: AttemptSpec, handle: Mapping | None, *, cancel: asyncio.Event, started: Started
    ) -> AttemptResult | None:
        """A process outlives its runner but not its pipe: it cannot be followed, so it is stopped, and the
        attempt is interrupted (the runner retries it when the task's retry policy allows)."""
        what = stop_orphan(handle)
        started_at = time.time()
        message = f"interrupted: the runner stopped while it ran; {what}"
        try:
            with open(spec.log_path, "ab") as log:  # after what the process wrote before its runner died
                log.write(f"\nfasttrack-gitops: {message}\n".encode())
        except OSError:
            pass
        return AttemptResult(Outcome.INTERRUPTED, None, started_at, time.time(), message)

    async def run(self, spec: AttemptSpec, *, cancel: asyncio.Event, started: Started) -> AttemptResult:
        started_at = time.time()
        if cancel.is_set():
            return AttemptResult(Outcome.CANCELLED, None, started_at, started_at, "cancelled before it started")
        if spec.task.is_service:  # a model server, ready when healthy (local_services.py)
            return await self.services.run(spec, cancel=cancel, started=started)
        problem = self._check(spec)
        if problem:
            return self._error(spec, started_at, problem)
        prefix = await self._sandbox_prefix()
        if prefix is None and self.bwrap:
            return self._error(
                spec, started_at, f"bubblewrap is required but does not work here: {self._bubblewrap.reason}"
            )
        try:
            log = LogCapture(spec.log_path, head=self.head, tail=self.tail, masks=spec.masks)
        except OSError as e:
            return AttemptResult(
                Outcome.ERROR,
                None,
                started_at,
                time.time(),
                masked(f"cannot write the log {spec.log_path}: {e.strerror}", spec.masks),
            )
        try:
            proc, read_fd = await self._spawn(spec, prefix)
        except OSError as e:
            message = f"cannot start the task: {oserror_message(e)}"
            log.write(f"fasttrack-gitops: {message}\n".encode())
            log.close()
            return AttemptResult(Outcome.ERROR, None, started_at, time.time(), masked(message, spec.masks))
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        finished = loop.create_future()
        self._live[stop] = finished
        if self._buffer is None:
            self._buffer = bytearray(READ_CHUNK)
        attempt = ProcessGroup(loop, proc, read_fd, log, self._buffer)
        try:
            started(process_handle(proc.pid, proc.start if isinstance(proc, Launched) else None))
            return await self._supervise(attempt, spec, started_at, cancel, stop)
        finally:
            attempt.abandon()  # only acts when we leave early (an exception, the run() task cancelled)
            del self._live[stop]
            finished.set_result(None)

    # -- one attempt --------------------------------------------------------

    async def _supervise(
        self, attempt: ProcessGroup, spec: AttemptSpec, started_at: float, cancel: asyncio.Event, stop: asyncio.Future
    ) -> AttemptResult:
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {attempt.exited, cancelled, stop, attempt.log_failed},
                timeout=spec.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            cancelled.cancel()
        if attempt.exited in done:
            outcome, message = None, ""
        elif attempt.log_failed in done:  # its output can no longer be kept: stop it rather than run blind
            outcome, message = Outcome.FAILED, log_failed(spec, attempt.log_failed.result())
        elif cancelled in done or stop in done:
            outcome, message = Outcome.CANCELLED, stop.result() if stop.done() else "cancelled"
        else:
            outcome, message = Outcome.TIMED_OUT, timed_out(spec.timeout or 0)
        if outcome is not None:
            attempt.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(attempt.exited), self.grace)
            except asyncio.TimeoutError:
                pass
            attempt.signal(signal.SIGKILL)
            await attempt.exited
        returncode = await attempt.finish()
        ended_at = time.time()
        if outcome is None and attempt.log_failed.done():  # the log's last write (at close) failed
            outcome, message = Outcome.FAILED, log_failed(spec, attempt.log_failed.result())
        if outcome is not None:
            return AttemptResult(outcome, returncode, started_at, ended_at, message)
        if returncode == 0:
            return AttemptResult(Outcome.SUCCEEDED, 0, started_at, ended_at)
        if returncode < 0:
            return AttemptResult(Outcome.FAILED, returncode, started_at, ended_at, f"killed by signal {-returncode}")
        return AttemptResult(Outcome.FAILED, returncode, started_at, ended_at)

    def _check(self, spec: AttemptSpec) -> str:
        if not spec.task.command:
            return f"task '{spec.task.name}' has no command"
        if not spec.workdir.is_dir():
            return f"working directory missing: {spec.workdir}"
        try:
            spec.outputs.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return f"cannot create the outputs folder: {oserror_message(e)}"
        return ""

    def _error(self, spec: AttemptSpec, started_at: float, message: str) -> AttemptResult:
        return error_result(spec, started_at, message, head=self.head, tail=self.tail)

    async def _spawn(self, spec: AttemptSpec, prefix: list[str] | None) -> tuple[subprocess.Popen | Launched, int]:
        env = self._inherited_environment()
        env.update(spec.env)
        workdir = os.path.abspath(spec.workdir)
        argv = [self.shell, "-c", spec.task.command or ""]
        binds: list[tuple[str, str]] = []
        if prefix is None:
            env.update(datafolder.variables(spec.outputs, spec.inputs, spec.vfroot))
            launcher = await self._plain_launcher()
        else:  # the folders appear where FastTrack mounts them
            env.update(datafolder.mounted_variables(len(spec.inputs)))
            launcher = await self._bubblewrap.running_launcher()
            if launcher is not None:
                binds = [(os.path.abspath(folder), target) for folder, target in mounted_folders(spec)]
            else:
                # A bubblewrap of its own, started through the plain launcher too: a bubblewrap we started
                # ourselves could miss our death (its --die-with-parent is set after it starts: killed in
                # between, we would leave it running, tests/engine/executors/orphans_test.py found).
                argv = bwrap_command(prefix, argv, spec, workdir)
                launcher = await self._plain_launcher()
        if launcher is None:
            return start_group(argv, cwd=workdir, env=env)
        read_fd, write_fd = output_pipe()
        try:
            return await launcher.spawn(argv, cwd=workdir, env=env, binds=binds, out=write_fd), read_fd
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)

    def _inherited_environment(self) -> dict[str, str]:
        """Our environment less what a task must not inherit (a copy). Built again only when our environment has
        changed: decoding os.environ item by item cost ~0.2 ms a task, a fifth of a trivial task's own cost.
        os.environ keeps its raw bytes in `_data` (CPython, all versions we support): comparing that is one C call."""
        raw = getattr(os.environ, "_data", None)
        if raw is None or raw != self._inherited_from:
            self._inherited = {k: v for k, v in os.environ.items() if not self._withheld(k)}
            self._inherited_from = dict(raw) if raw is not None else None
        return dict(self._inherited)

    def _withheld(self, name: str) -> bool:
        """Whether the task must not inherit our variable `name`: ours by name, or holding a withheld value."""
        return _withheld(name) or os.environ.get(name) in self._withheld_values

    async def _plain_launcher(self) -> SandboxLauncher | None:
        """The plain launcher, started on first need (and again if it died); None where it does not work."""
        launcher = self._plain
        if launcher is None or launcher.running:
            return launcher
        problem = await launcher.ensure(None, self.shell)
        if problem:
            log.warning("tasks run without their launcher (what they leave running may outlive us): %s", problem)
            self._plain = None
        return self._plain

    async def _sandbox_prefix(self) -> list[str] | None:
        """bwrap's argv prefix when attempts run under it: wanted (self.bwrap) and working here."""
        return None if self.bwrap is False else await self._bubblewrap.prefix()


def start_launcher_early() -> None:
    """For a command about to run tasks here with the default executor settings (`run`): start the task launcher
    that executor will want (sandbox.py: start_early), while the command still loads and validates."""
    if not hasattr(os, "pidfd_open"):
        return
    if bwrap_setting(os.environ.get("FTG_BWRAP", "")) is not False:
        prefix, _why_not = sandbox_prefix()
        if prefix is not None:
            start_early(prefix)
            return
    start_early(None)


def _withheld(name: str) -> bool:
    """A variable of ours the task must not inherit: a secret, or our own pipeline data folder paths."""
    return name.startswith(SECRET_ENV_PREFIX) or (
        name.startswith("PIPELINE_") and datafolder.VARIABLE.fullmatch(name) is not None
    )


def log_failed(spec: AttemptSpec, error: OSError) -> str:
    """Why an attempt failed when its log could not be written."""
    return masked(
        f"cannot write the log {spec.log_path} ({error.strerror or error}): the task was stopped; "
        "free space in the state folder (`fasttrack-gitops gc` removes old jobs) and run it again",
        spec.masks,
    )
