"""The local executor's task launcher: one small process per executor that starts each task and outlives none.

The launcher (sandbox_init.py, its protocol and modes there) runs either
under bubblewrap, with the host's root shown unchanged, an empty /pipeline
and a PID namespace of its own, where each task starts in a user and mount
namespace of its own made before it was asked for (~1.2 ms a task against
~5 ms for a bubblewrap of its own, bench/launcher_bench.py); or, without a
sandbox, as a plain process (a child subreaper) that starts each task with
posix_spawn (~0.9 ms) and ends every process its tasks left once we are
gone. Either way nothing a task started outlives our process, even when
it is killed with SIGKILL (issue 16: no orphans). The sandboxed launcher
starts on the executor's first task, from the loop's thread (bubblewrap's
--die-with-parent follows the thread that started it), and is used only once
a probe task has seen /pipeline/outputs in it; where it cannot work (no
nested user namespaces), the executor falls back to a bubblewrap per task
(bubblewrap.py).

`Launched` stands for subprocess.Popen where processes.ProcessGroup needs
one: the task is the launcher's child, not ours, so its exit comes as a
message; its process group id stays reserved (the launcher does not reap it)
until `poll()` has been answered, so killing the group after its leader
ended never reaches another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from fasttrack_gitops.engine import datafolder

log = logging.getLogger("fasttrack_gitops.engine.local")

LAUNCHER = Path(__file__).with_name("sandbox_init.py")
START_TIMEOUT = 10.0  # seconds for the launcher and its probe task
STOP_TIMEOUT = 5.0  # seconds for the launcher to end its tasks' processes and exit once its socket is closed
INLINE_REQUEST = 64 << 10  # bytes of a spawn request sent as the datagram itself (a large environment goes by fd)


def _settle(future: asyncio.Future[None]) -> None:
    """The socket can take a request again (a writability callback may come more than once)."""
    if not future.done():
        future.set_result(None)


class LauncherGone(OSError):
    """The launcher ended (or never answered): no task can start through it."""


class Launched:
    """A task started by the launcher, as much of subprocess.Popen as ProcessGroup uses."""

    def __init__(self, sandbox: SandboxLauncher, pid: int, start: int | None = None):
        self.sandbox = sandbox
        self.pid = pid
        self.start = start  # when it started, in clock ticks since boot (the launcher read it: processes.py)
        self.returncode: int | None = None  # set once the executor has taken the exit (poll)
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reap_when_ended = False

    def poll(self) -> int | None:
        """Its exit code once it ended (then the launcher may reap it: we are done signalling its group); before
        that None, and it is reaped as soon as it ends (the executor gave up on it: ProcessGroup.abandon)."""
        if self.returncode is None:
            if self.exited.done():
                self.returncode = self.exited.result()
                self.sandbox.reap(self.pid)
            elif not self._reap_when_ended:
                self._reap_when_ended = True
                self.exited.add_done_callback(lambda _: self.poll())
        return self.returncode

    def wait(self) -> int:  # ProcessGroup calls it only when poll() had no answer after `exited`: never here
        raise RuntimeError("a launched task's exit is awaited through `exited`, not waited for")


class SandboxLauncher:
    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[Launched | str]] = {}  # spawn id -> the task, or why not
        self._tasks: dict[int, Launched] = {}  # pid -> the task, until its exit came
        self._sending = asyncio.Lock()  # requests go one at a time (_send)
        self._queued: set[asyncio.Future] = set()  # reap requests waiting for room in the socket
        self._restart: asyncio.Future[str] | None = None  # the start under way (ensure)
        self._started = False  # ensure() started it before
        self._plain = False  # started without a sandbox (its tasks have no parent-death signal: _kill_groups)

    async def start(self, prefix: Sequence[str] | None, shell: str) -> str:
        """Start the launcher and run a probe task through it; "" when it works, else why not (then it is closed).

        `prefix`: the bubblewrap argv that shows the host's root in a PID namespace of its own (bubblewrap.py),
        or None for the plain launcher (no sandbox; sandbox_init.py says what each mode does)."""
        self._plain = prefix is None
        early = _take_early(prefix)
        if early is not None:  # started at the command's start (start_early), while it still loaded
            ours, self._process = early
        else:
            try:
                ours, self._process = _launch(prefix)
            except OSError as e:
                return f"cannot start the task launcher: {e.strerror or e}"
        self._sock = ours
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_message)
        try:
            problem = await asyncio.wait_for(self._probe(shell, sandboxed=prefix is not None), START_TIMEOUT)
        except asyncio.TimeoutError:
            problem = f"the task launcher did not answer in {START_TIMEOUT:g}s"
        if problem:
            await self.close()
        return problem

    async def ensure(self, prefix: Sequence[str] | None, shell: str) -> str:
        """start() on first need, or again after the launcher died (killed from outside); attempts that need it at
        once share one start; "" when it runs, else why not."""
        if self._sock is not None:
            return ""
        if self._restart is None:
            if self._process is not None or self._started:
                log.warning("the task launcher ended; starting another")
            self._started = True
            self._restart = asyncio.ensure_future(self.start(prefix, shell))
        restart = self._restart
        try:
            return await asyncio.shield(restart)
        finally:
            if restart.done() and self._restart is restart:
                self._restart = None

    async def spawn(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], binds: Sequence[tuple[str, str]], out: int
    ) -> Launched:
        """Start argv in its own /pipeline view (binds: folder -> where it appears), its output to fd `out`."""
        if self._sock is None:
            raise LauncherGone(0, "the task launcher is not running")
        request_id = next(self._ids)
        reply = self._replies[request_id] = asyncio.get_running_loop().create_future()
        message = {"op": "spawn", "id": request_id, "argv": list(argv), "cwd": cwd, "env": dict(env)}
        message["binds"] = [list(b) for b in binds]
        data = json.dumps(message).encode()
        try:
            if len(data) <= INLINE_REQUEST:
                await self._send(data, [out])
            else:  # beyond what one datagram carries (the socket's buffer): the request in a memory file
                with _memory_file(data) as request_fd:
                    await self._send(json.dumps({"op": "spawn", "id": request_id}).encode(), [out, request_fd])
            answer = await reply
        except OSError as e:
            self._replies.pop(request_id, None)
            raise LauncherGone(e.errno or 0, f"the task launcher is gone ({e.strerror or e})") from e
        if isinstance(answer, str):
            raise OSError(0, answer)
        return answer

    async def _send(self, data: bytes, fds: list[int]) -> None:
        """One request to the launcher. When its queue is full (EAGAIN: a wide fan of tasks starts at once and the
        launcher is still forking the first ones), wait until the socket takes more instead of failing the task.
        One sender at a time: the loop keeps one writability callback per socket."""
        loop = asyncio.get_running_loop()
        async with self._sending:
            while True:
                if self._sock is None:
                    raise LauncherGone(0, "the task launcher is not running")
                try:
                    if fds:
                        socket.send_fds(self._sock, [data], fds)
                    else:
                        self._sock.send(data)
                    return
                except BlockingIOError:
                    writable: asyncio.Future[None] = loop.create_future()
                    fileno = self._sock.fileno()
                    loop.add_writer(fileno, _settle, writable)
                    try:
                        await asyncio.wait_for(writable, START_TIMEOUT)
                    except asyncio.TimeoutError:
                        raise LauncherGone(0, f"the task launcher took no request for {START_TIMEOUT:g}s") from None
                    finally:
                        loop.remove_writer(fileno)

    @property
    def running(self) -> bool:
        return self._sock is not None

    @property
    def pid(self) -> int | None:
        """The process id of its bubblewrap (the launcher's parent), while it runs."""
        return self._process.pid if self._process is not None else None

    def reap(self, pid: int) -> None:
        """Tell the launcher it may reap `pid`; queued behind other requests when its socket is full (a zombie left
        unreaped would hold its pid until the launcher ends)."""
        if self._sock is None:
            return  # the launcher is gone, and its zombies with it
        data = json.dumps({"op": "reap", "pid": pid}).encode()
        if not self._sending.locked():
            try:
                self._sock.send(data)
                return
            except BlockingIOError:
                pass
            except OSError:
                return
        queued = asyncio.ensure_future(self._send(data, []))
        self._queued.add(queued)
        queued.add_done_callback(self._reaped)

    def _reaped(self, queued: asyncio.Future) -> None:
        self._queued.discard(queued)
        if not queued.cancelled():
            queued.exception()  # the launcher gone: nothing to reap any more (retrieved, so never logged)

    async def close(self) -> None:
        """Close our end and end the launcher, which ends whatever still runs through it."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._fail_all("the task launcher was closed")
        if self._process is not None:
            # Its tasks were stopped already (the executor closes it last). The end of its socket tells it to kill
            # what they left behind and exit (under bubblewrap, its PID namespace ends with it); killed only if it
            # does not: the plain launcher killed could not end what its tasks left.
            process, self._process = self._process, None
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
            if process.stderr is not None:
                process.stderr.close()

    async def _probe(self, shell: str, *, sandboxed: bool) -> str:
        """A first task through the launcher; in the sandbox, it must see a folder bound in its own /pipeline."""
        command = f"test -d {datafolder.OUTPUTS}" if sandboxed else "exit 0"
        binds = [(str(LAUNCHER.parent), datafolder.OUTPUTS)] if sandboxed else []  # any folder there is
        try:
            with open(os.devnull, "w") as devnull:
                task = await self.spawn(
                    [shell, "-c", command], cwd="/", env={"PATH": os.defpath}, binds=binds, out=devnull.fileno()
                )
            returncode = await task.exited
            task.poll()
        except OSError as e:
            return e.strerror or str(e)
        return "" if returncode == 0 else f"the probe task in the task launcher exited with {returncode}"

    def _on_message(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the launcher ended: nothing more will start or end through it
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
                self._sock.close()
                self._sock = None
                if self._plain:
                    self._kill_groups()
                self._fail_all(self._why_gone())
                return
            message = json.loads(data)
            if "exit" in message:
                task = self._tasks.pop(message["exit"], None)
                if task is not None and not task.exited.done():
                    task.exited.set_result(message["returncode"])
            else:  # the task is known from here on: its exit may be the very next message
                reply = self._replies.pop(message["id"], None)
                answer: Launched | str = message.get("error", "")
                if "pid" in message:
                    answer = self._tasks[message["pid"]] = Launched(self, message["pid"], message.get("start"))
                if reply is not None and not reply.done():
                    reply.set_result(answer)

    def _kill_groups(self) -> None:
        """The plain launcher died (killed from outside): its tasks, started with posix_spawn, have no parent-death
        signal, so their groups are killed here. Their ids are still theirs: a group outlives its leader while any
        process of it runs, and the leader's exit never reached us, so it ended at most just now."""
        for pid in self._tasks:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _fail_all(self, why: str) -> None:
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(LauncherGone(0, why))
        self._replies.clear()
        for task in self._tasks.values():  # their processes were killed with the launcher
            if not task.exited.done():
                task.exited.set_result(-9)
        self._tasks.clear()

    def _why_gone(self) -> str:
        process = self._process
        if process is not None and process.poll() is not None and process.stderr is not None:
            said = process.stderr.read().decode(errors="replace").strip()
            return f"the task launcher ended ({said or f'exit {process.returncode}'})"
        return "the task launcher ended"


def _launch(prefix: Sequence[str] | None) -> tuple[socket.socket, subprocess.Popen]:
    """Start the launcher's process (under bubblewrap when `prefix`); our end of its socket, and the process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fds = [theirs.fileno()]  # pass_fds keeps their numbers; bubblewrap passes them on
    try:
        if prefix is None:
            # A session of its own: a signal to our process group (a ^C, `kill -- -PGID`) must leave it alive
            # to end our tasks' processes once we are gone.
            argv = [sys.executable, "-I", "-S", str(LAUNCHER), str(theirs.fileno()), "plain"]
        else:
            fds.append(os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))  # the host's /proc
            argv = [*prefix, "--dir", datafolder.ROOT, "--", sys.executable, "-I", "-S", str(LAUNCHER)]
            argv += [str(theirs.fileno()), "sandbox", str(fds[1])]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=fds,
            start_new_session=prefix is None,
            # Nothing of ours: each task's environment comes with its request, and the launcher, unlike us,
            # is dumpable, so a task could read the launcher's /proc/<pid>/environ (SECURITY.md).
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
        for fd in fds[1:]:
            os.close(fd)
    return ours, process


# A launcher started before any executor wanted it (start_early), with the prefix it was started with.
_early: tuple[tuple[str, ...] | None, socket.socket, subprocess.Popen] | None = None


def start_early(prefix: Sequence[str] | None) -> None:
    """Start a launcher now, from a command that will run tasks and has yet to load most of itself: its Python
    starts on another core meanwhile (~30 ms of a 1-task run's critical path, bench/run_bench.py). The first
    SandboxLauncher started with the same prefix takes it; one not taken ends when this process does (its socket
    closes: sandbox_init.py). One at a time: a second call ends the first one's."""
    global _early
    _end_early()
    try:
        ours, process = _launch(prefix)
    except OSError:
        return  # started again, and the failure said, when a task needs it
    _early = (tuple(prefix) if prefix is not None else None, ours, process)


def _take_early(prefix: Sequence[str] | None) -> tuple[socket.socket, subprocess.Popen] | None:
    global _early
    if _early is None or _early[0] != (tuple(prefix) if prefix is not None else None):
        return None
    _key, ours, process = _early
    _early = None
    return ours, process


def _end_early() -> None:
    """The launcher started early and never taken: its socket closed, it exits (under bubblewrap, it and all)."""
    global _early
    if _early is not None:
        _key, ours, process = _early
        _early = None
        ours.close()
        if process.stderr is not None:
            process.stderr.close()


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[int]:
    """A file in memory holding `data`, read from its start by whoever receives the descriptor."""
    fd = os.memfd_create("ftg-spawn-request", os.MFD_CLOEXEC)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(fd, view[written:])
        yield fd
    finally:
        os.close(fd)
