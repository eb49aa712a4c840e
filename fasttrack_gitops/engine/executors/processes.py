"""Local task processes: one started as a process group, followed to its end, and found again after a restart.

`start_group` runs a command as the leader of its own session (so its whole
process group can be killed), with stdin from /dev/null and stdout + stderr
in one non-blocking pipe; `ProcessGroup` follows it on the event loop, no
thread per process: its exit through a pidfd (Linux >= 5.3; else polled with
waitid(WNOWAIT)), its output read into the log as it comes, and kills the
group. The group is never signalled once its leader was reaped: its id may
belong to someone else then.

A runner killed with -9 leaves no task process running: the task launcher
(sandbox.py, sandbox_init.py) ends them when we die. Where it cannot work
(not Linux), each task's process group (leading its own session) runs on,
and the next runner stops it from the handle stored with the attempt: the
group leader's pid, its start time in clock ticks since boot and the boot
id, so a pid that the kernel has since given to another process is never
signalled. With the launcher that finds the group already ended.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fasttrack_gitops.engine.executors.logcap import LogCapture
from fasttrack_gitops.engine.executors.sandbox import Launched

DRAIN_TIMEOUT = 0.5  # seconds to wait for the pipe to close once the group is killed (a setsid escapee holds it)
PIPE_SIZE = 1 << 20  # fewer, larger reads of a chatty task (Linux; silently skipped where not allowed)
FLUSH_INTERVAL = 0.5  # seconds: how stale a followed log may be
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def output_pipe() -> tuple[int, int]:
    """A task's output pipe: the read end non-blocking (ours), the write end for its stdout and stderr."""
    read_fd, write_fd = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # over the per-user pipe budget: the default size works, only slower
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


def start_group(argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> tuple[subprocess.Popen, int]:
    """Start argv leading a new session; the process and the read end of its (non-blocking) output pipe."""
    read_fd, write_fd = output_pipe()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
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


class ProcessGroup:
    """One running process group: its exit, its output (into the log), its kill."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: subprocess.Popen | Launched,
        read_fd: int,
        log: LogCapture,
        buffer: bytearray,
    ):
        self.loop = loop
        self._buffer = buffer
        self._view = memoryview(buffer)
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the leader leads its own group
        self.log = log
        self.exited = loop.create_future()  # the leader ended (not yet reaped, so its group id stays ours)
        self.eof = loop.create_future()
        self.log_failed = loop.create_future()  # the OSError that stopped the log (a full disk)
        self._read_fd: int | None = read_fd
        self._flush: asyncio.TimerHandle | None = None
        self._pidfd: int | None = None
        self._poller: asyncio.Task | None = None
        loop.add_reader(read_fd, self._on_output)
        if isinstance(proc, Launched):  # not our child: its exit comes from the sandbox's launcher
            proc.exited.add_done_callback(lambda _: self._on_exit())
            return
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
        """After the leader exited: kill what it left in its group, reap it, drain and close the log."""
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
            try:
                self.log.write(self._view[:n])  # consumed before returning: the buffer is shared
            except OSError as e:  # the disk is full: the attempt fails (LocalExecutor); we keep draining the pipe
                if not self.log_failed.done():
                    self.log_failed.set_result(e)
            if self._flush is None:
                self._flush = self.loop.call_later(FLUSH_INTERVAL, self._flush_log)
        else:
            self.loop.remove_reader(self._read_fd)
            if not self.eof.done():
                self.eof.set_result(None)

    def _flush_log(self) -> None:
        self._flush = None
        try:
            self.log.flush()
        except OSError as e:
            if not self.log_failed.done():
                self.log_failed.set_result(e)

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
        try:
            self.log.close()
        except OSError as e:
            if not self.log_failed.done():
                self.log_failed.set_result(e)


def process_handle(pid: int, start: int | None = None) -> dict:
    """The handle of the process group led by pid (start time and boot id where /proc has them); `start` when
    known already (the task launcher reads it before the task is asked for)."""
    return {"pgid": pid, "start": start if start is not None else _start_ticks(pid), "boot": _boot_id()}


def stop_orphan(handle: Mapping | None) -> str:
    """Kill the attempt's process group if it is still the one the handle names; what was done, in words."""
    if not handle or type(handle.get("pgid")) is not int:
        return "no process was recorded for it"
    pgid = handle["pgid"]
    if pgid <= 1 or pgid == os.getpgrp():  # killpg(0) is our own group; never ours, nor init's, whatever is stored
        return f"the recorded process group {pgid} is not a task's own, so it was left alone"
    if handle.get("boot") is not None and handle.get("boot") != _boot_id():
        return f"its process group {pgid} ended with the machine's restart"
    # A pid is not reused while a process group of that id exists, so with the leader gone (no start
    # time) killpg can only reach our orphans; a leader with another start time is some other process.
    start = _start_ticks(pgid)
    if start is not None and handle.get("start") is not None and start != handle["start"]:
        return f"its process group {pgid} had already ended"
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return f"its process group {pgid} had already ended"
    except PermissionError:
        return f"its process group {pgid} could not be stopped (permission denied)"
    return f"its process group {pgid}, still running, was stopped"


def _start_ticks(pid: int) -> int | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = stat.rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[19]) if len(fields) > 19 else None  # field 22 of proc(5): starttime


@functools.cache  # it cannot change while we run; read once rather than per task
def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None
