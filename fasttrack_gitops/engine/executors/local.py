"""The local executor: each attempt is a `/bin/sh -c COMMAND` process group on this machine.

- The task runs in its own session (so its whole process group can be
  killed), with stdin from /dev/null and stdout + stderr in one pipe that goes
  to the log (masked, capped; see logcap.py).
- Its environment is ours minus FTG_SECRET_* (secrets reach a task only
  through its own env) and minus our own PIPELINE_* paths (when we run inside
  a FastTrack task ourselves), then the task's variables, then PIPELINE_*.
- When bubblewrap works here the task also sees the pipeline data folder
  where FastTrack mounts it (/pipeline/outputs, /pipeline/input1..N,
  /pipeline/vfroot) with the rest of the host filesystem unchanged; without
  it, PIPELINE_* point at the real folders.
- When the shell exits, whatever it left running in its group is killed; a
  timeout or a cancel sends SIGTERM to the group, then SIGKILL after a grace.
- A shell killed by signal N has exit_code -N (Python's convention) and the
  message "killed by signal N". Under bubblewrap the shell is bwrap's child
  and bwrap exits 128+N instead, which is reported as a plain exit code, as a
  shell reports a command of its own that a signal killed.

No thread per attempt: the exit is watched through a pidfd (Linux >= 5.3)
on the event loop, the output through a non-blocking pipe read on the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping

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
    stop_live_attempts,
    timed_out,
)
from fasttrack_gitops.engine.executors.logcap import DEFAULT_HEAD, DEFAULT_TAIL, LogCapture
from fasttrack_gitops.engine.executors.processes import process_handle, stop_orphan

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
DRAIN_TIMEOUT = 0.5  # seconds to wait for the pipe to close once the group is killed (a setsid escapee holds it)
READ_CHUNK = 1 << 20
PIPE_SIZE = 1 << 20  # fewer, larger reads of a chatty task (Linux; silently skipped where not allowed)
FLUSH_INTERVAL = 0.5  # seconds: how stale a followed log may be
PROBE_TIMEOUT = 10.0


def _bwrap_setting(value: str) -> bool | None:
    """FTG_BWRAP: 0 never use bubblewrap, 1 require it, unset or anything else: when it works."""
    return {"0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}.get(value.lower())


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        *,
        bwrap: bool | None = None,  # None: use bubblewrap when it works here; False: never; True: required
        shell: str = "/bin/sh",
        head: int = DEFAULT_HEAD,
        tail: int = DEFAULT_TAIL,
        grace: float = KILL_GRACE,
        capacity: Resources | None = None,
    ):
        self.bwrap = bwrap if bwrap is not None else _bwrap_setting(os.environ.get("FTG_BWRAP", ""))
        self.shell = shell
        self.head = head
        self.tail = tail
        self.grace = grace
        self._capacity = capacity
        self._sandbox: list[str] | None = None  # the bwrap argv prefix, once probed and working
        self._sandbox_reason = ""  # why not, when it does not work
        self._probed = False
        self._probe: asyncio.Future | None = None
        self._live: dict[asyncio.Future, asyncio.Future] = {}  # stop -> finished, per running attempt
        self._buffer: bytearray | None = None  # one read buffer for every attempt: reads happen on one thread

    def capacity(self) -> Resources | None:
        return self._capacity

    async def close(self) -> None:
        """Stop attempts still running (they end CANCELLED) and wait for them."""
        await stop_live_attempts(self._live)

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
        problem = self._check(spec)
        if problem:
            return self._error(spec, started_at, problem)
        prefix = await self._sandbox_prefix() if self.bwrap is not False else None
        if prefix is None and self.bwrap:
            return self._error(
                spec, started_at, f"bubblewrap is required but does not work here: {self._sandbox_reason}"
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
            proc, read_fd = self._spawn(spec, prefix)
        except OSError as e:
            message = f"cannot start the task: {_oserror(e)}"
            log.write(f"fasttrack-gitops: {message}\n".encode())
            log.close()
            return AttemptResult(Outcome.ERROR, None, started_at, time.time(), masked(message, spec.masks))
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        finished = loop.create_future()
        self._live[stop] = finished
        if self._buffer is None:
            self._buffer = bytearray(READ_CHUNK)
        attempt = _Attempt(loop, proc, read_fd, log, self._buffer)
        try:
            started(process_handle(proc.pid))
            return await self._supervise(attempt, spec, started_at, cancel, stop)
        finally:
            attempt.abandon()  # only acts when we leave early (an exception, the run() task cancelled)
            del self._live[stop]
            finished.set_result(None)

    # -- one attempt --------------------------------------------------------

    async def _supervise(
        self, attempt: _Attempt, spec: AttemptSpec, started_at: float, cancel: asyncio.Event, stop: asyncio.Future
    ) -> AttemptResult:
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {attempt.exited, cancelled, stop}, timeout=spec.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancelled.cancel()
        if attempt.exited in done:
            outcome, message = None, ""
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
            return f"cannot create the outputs folder: {_oserror(e)}"
        return ""

    def _error(self, spec: AttemptSpec, started_at: float, message: str) -> AttemptResult:
        return error_result(spec, started_at, message, head=self.head, tail=self.tail)

    def _spawn(self, spec: AttemptSpec, prefix: list[str] | None) -> tuple[subprocess.Popen, int]:
        env = {k: v for k, v in os.environ.items() if not _withheld(k)}
        env.update(spec.env)
        if prefix is not None:  # the folders appear where FastTrack mounts them
            env.update(datafolder.mounted_variables(len(spec.inputs)))
        else:
            env.update(datafolder.variables(spec.outputs, spec.inputs, spec.vfroot))
        workdir = os.path.abspath(spec.workdir)
        argv = [self.shell, "-c", spec.task.command or ""]
        if prefix is not None:
            binds: list[str] = []
            for source, target in datafolder.mounts(spec.outputs, spec.inputs, spec.vfroot):
                source.mkdir(parents=True, exist_ok=True)  # bwrap needs every source to exist
                binds += ["--bind", os.path.abspath(source), target]
            argv = [*prefix, *binds, "--chdir", workdir, "--", *argv]
        read_fd, write_fd = os.pipe()
        try:
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                try:
                    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass  # over the per-user pipe budget: the default size works, only slower
            os.set_blocking(read_fd, False)
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return proc, read_fd

    # -- bubblewrap ---------------------------------------------------------

    async def _sandbox_prefix(self) -> list[str] | None:
        if self.bwrap is False:
            return None
        if not self._probed:
            if self._probe is None:
                self._probe = asyncio.ensure_future(self._probe_bwrap())
            probe = self._probe
            try:
                self._sandbox, self._sandbox_reason = await asyncio.shield(probe)
            finally:
                if probe.done():
                    self._probe = None
            self._probed = True
        return self._sandbox

    async def _probe_bwrap(self) -> tuple[list[str] | None, str]:
        """Try bubblewrap once with a trivial command: it fails where user namespaces are not allowed."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            return None, "bwrap is not installed"
        if os.path.lexists(datafolder.ROOT):
            return None, f"this machine has its own {datafolder.ROOT}"
        prefix = [bwrap, "--die-with-parent", *_host_root_binds()]
        with tempfile.TemporaryDirectory(prefix="ftg-bwrap-probe-") as tmp:
            argv = [
                *prefix,
                "--bind",
                tmp,
                datafolder.OUTPUTS,
                "--chdir",
                tmp,
                "--",
                self.shell,
                "-c",
                f"test -d {datafolder.OUTPUTS}",
            ]
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            except OSError as e:
                return None, _oserror(e)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                return None, f"bwrap did not answer in {PROBE_TIMEOUT:g}s"
        if proc.returncode != 0:
            return None, err.decode(errors="replace").strip() or f"bwrap exited with {proc.returncode}"
        return prefix, ""


def _host_root_binds() -> list[str]:
    """bwrap arguments that show the host's / unchanged, on a new root where /pipeline can be made.

    (Binding / itself would make bwrap create /pipeline on the host.)
    """
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if path == datafolder.ROOT:
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif name == "dev":
            args += ["--dev-bind", path, path]
        elif os.path.isdir(path) or os.path.isfile(path):
            args += ["--bind", path, path]
    return args


class _Attempt:
    """One running process group: its exit, its output, its kill."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen, read_fd: int, log: LogCapture, buffer: bytearray
    ):
        self.loop = loop
        self._buffer = buffer
        self._view = memoryview(buffer)
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the shell leads its own group
        self.log = log
        self.exited = loop.create_future()  # the shell ended (not yet reaped, so its group id stays ours)
        self.eof = loop.create_future()
        self._read_fd: int | None = read_fd
        self._flush: asyncio.TimerHandle | None = None
        self._pidfd: int | None = None
        self._poller: asyncio.Task | None = None
        loop.add_reader(read_fd, self._on_output)
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: poll with waitid(WNOWAIT)
            self._poller = loop.create_task(self._poll_exit())
        else:
            loop.add_reader(self._pidfd, self._on_exit)

    def signal(self, sig: int) -> None:
        """Signal the whole group (a no-op once it is gone)."""
        if self.proc.returncode is not None:
            return  # reaped: the group id may belong to someone else now
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def finish(self) -> int:
        """After the shell exited: kill what it left in its group, reap it, drain and close the log."""
        self.signal(signal.SIGKILL)
        returncode = self.proc.poll()
        if returncode is None:  # exited but not reapable yet: cannot happen after `exited`, but never hang
            returncode = await self.loop.run_in_executor(None, self.proc.wait)
        if not self.eof.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.eof), DRAIN_TIMEOUT)
            except asyncio.TimeoutError:
                pass
        self._close_output()
        return returncode

    def abandon(self) -> None:
        """Leaving early (an exception or our own cancellation): kill everything now, release fds."""
        if self.proc.returncode is None:
            self.signal(signal.SIGKILL)
            self.proc.poll()  # reaped now if already dead; otherwise subprocess reaps it later
        self._stop_watching_exit()
        self._close_output()

    def _on_output(self) -> None:
        assert self._read_fd is not None  # the reader is removed before the fd is closed
        try:
            n = os.readv(self._read_fd, [self._buffer])
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if n:
            self.log.write(self._view[:n])  # consumed before returning: the buffer is shared
            if self._flush is None:
                self._flush = self.loop.call_later(FLUSH_INTERVAL, self._flush_log)
        else:
            self.loop.remove_reader(self._read_fd)
            if not self.eof.done():
                self.eof.set_result(None)

    def _flush_log(self) -> None:
        self._flush = None
        self.log.flush()

    def _on_exit(self) -> None:
        self._stop_watching_exit()
        if not self.exited.done():
            self.exited.set_result(None)

    async def _poll_exit(self) -> None:
        delay = 0.001
        while True:
            try:  # WNOHANG: never blocks; WNOWAIT: leaves it unreaped, so its group id stays ours
                if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):  # noqa: ASYNC222
                    break
            except ChildProcessError:  # someone else reaped it
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._poller = None
        self._on_exit()

    def _stop_watching_exit(self) -> None:
        if self._pidfd is not None:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    def _close_output(self) -> None:
        if self._read_fd is not None:
            self.loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self.log.close()


def _withheld(name: str) -> bool:
    """A variable of ours the task must not inherit: a secret, or our own pipeline data folder paths."""
    return name.startswith(SECRET_ENV_PREFIX) or (
        name.startswith("PIPELINE_") and datafolder.VARIABLE.fullmatch(name) is not None
    )


def _oserror(e: OSError) -> str:
    return f"{e.strerror or e}: {e.filename}" if e.filename else (e.strerror or str(e))
