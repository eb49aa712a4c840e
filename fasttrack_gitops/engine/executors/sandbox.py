"""One bubblewrap sandbox per local executor, with a launcher inside that gives each task its own /pipeline.

The launcher (sandbox_init.py, its protocol there) runs under bubblewrap
with the host's root shown unchanged and an empty /pipeline; each task is a
fork of it in a mount namespace of its own. A task costs ~2 ms to start
this way against ~5 ms for a bubblewrap of its own (bench/run_bench.py,
"sandbox on"). The launcher starts on the executor's first task, from the
loop's thread (bubblewrap's --die-with-parent follows the thread that
started it), and is used only once a probe task has seen /pipeline/outputs
in it; where it cannot work (no nested user namespaces), the executor falls
back to a bubblewrap per task (bubblewrap.py).

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
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from fasttrack_gitops.engine import datafolder

LAUNCHER = Path(__file__).with_name("sandbox_init.py")
START_TIMEOUT = 10.0  # seconds for the launcher and its probe task
INLINE_REQUEST = 64 << 10  # bytes of a spawn request sent as the datagram itself (a large environment goes by fd)


def _settle(future: asyncio.Future[None]) -> None:
    """The socket can take a request again (a writability callback may come more than once)."""
    if not future.done():
        future.set_result(None)


class LauncherGone(OSError):
    """The launcher ended (or never answered): no task can start through it."""


class Launched:
    """A task started by the launcher, as much of subprocess.Popen as ProcessGroup uses."""

    def __init__(self, sandbox: SandboxLauncher, pid: int):
        self.sandbox = sandbox
        self.pid = pid
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

    async def start(self, prefix: Sequence[str], shell: str) -> str:
        """Start the launcher under bubblewrap (`prefix`: its argv that shows the host's root, bubblewrap.py) and
        run a probe task in it; "" when it works, else why not (then it is closed)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [*prefix, "--dir", datafolder.ROOT, "--", sys.executable, "-I", "-S", str(LAUNCHER)]
                + [str(theirs.fileno())],  # pass_fds keeps its number; bubblewrap passes it on
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
            )
        except OSError as e:
            ours.close()
            return f"cannot start the sandbox launcher: {e.strerror or e}"
        finally:
            theirs.close()
        self._sock = ours
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_message)
        try:
            problem = await asyncio.wait_for(self._probe(shell), START_TIMEOUT)
        except asyncio.TimeoutError:
            problem = f"the sandbox launcher did not answer in {START_TIMEOUT:g}s"
        if problem:
            await self.close()
        return problem

    async def spawn(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], binds: Sequence[tuple[str, str]], out: int
    ) -> Launched:
        """Start argv in its own /pipeline view (binds: folder -> where it appears), its output to fd `out`."""
        if self._sock is None:
            raise LauncherGone(0, "the sandbox launcher is not running")
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
            raise LauncherGone(e.errno or 0, f"the sandbox launcher is gone ({e.strerror or e})") from e
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
                    raise LauncherGone(0, "the sandbox launcher is not running")
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
                        raise LauncherGone(0, f"the sandbox launcher took no request for {START_TIMEOUT:g}s") from None
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
        """Close our end and end the launcher (and whatever still runs through it)."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._fail_all("the sandbox launcher was closed")
        if self._process is not None:
            # Its tasks were stopped already (the executor closes it last): bubblewrap killed, the launcher dies with
            # it (--die-with-parent) rather than winding down on its own.
            process, self._process = self._process, None
            process.kill()
            await asyncio.to_thread(process.wait)
            if process.stderr is not None:
                process.stderr.close()

    async def _probe(self, shell: str) -> str:
        try:
            with open(os.devnull, "w") as devnull:
                task = await self.spawn(
                    [shell, "-c", f"test -d {datafolder.OUTPUTS}"],
                    cwd="/",
                    env={"PATH": os.defpath},
                    binds=[(str(LAUNCHER.parent), datafolder.OUTPUTS)],  # any folder there is
                    out=devnull.fileno(),
                )
            returncode = await task.exited
            task.poll()
        except OSError as e:
            return e.strerror or str(e)
        return "" if returncode == 0 else f"the probe task in the sandbox launcher exited with {returncode}"

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
                    answer = self._tasks[message["pid"]] = Launched(self, message["pid"])
                if reply is not None and not reply.done():
                    reply.set_result(answer)

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
            return f"the sandbox launcher ended ({said or f'exit {process.returncode}'})"
        return "the sandbox launcher ended"


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
