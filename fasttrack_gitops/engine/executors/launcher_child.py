"""What runs in a task's process before it becomes the task, for the task launcher (sandbox_init.py).

Standard library only, and nothing of the package: the launcher, run as a
script, loads this file by path. A "ready" child (sandbox mode) is forked by
the launcher before its task is asked for: it enters namespaces of its own
with an empty /pipeline, waits for its one request, binds the task's folders
and execs (sandbox_init.py says why it is forked ahead).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ROOT = b"/pipeline"
MAX_FD = 65536  # what closerange goes up to in the child (close_range(2) makes it one call)
# Ignored here (or by Python): a task starts with their default handling.
DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM)
INLINE_MESSAGE = 64 << 10  # the largest request sent as a datagram (sandbox.py); larger ones come by fd

libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def enter_own_namespace() -> None:
    """In a forked child: a user and mount namespace of its own, with a fresh, empty /pipeline."""
    uid, gid = os.geteuid(), os.getegid()
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    check(libc.mount(b"tmpfs", ROOT, b"tmpfs", 0, b"mode=0755"), "mount tmpfs on /pipeline")


def bind_folders(binds: list[list[str]]) -> None:
    """The task's folders into its own /pipeline (outputs, output, input1..N, vfroot)."""
    for source, target in binds:
        try:
            os.mkdir(target)
        except FileExistsError:
            pass
        except FileNotFoundError:  # deeper than /pipeline's first level
            os.makedirs(target, exist_ok=True)
        check(libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND | MS_REC, None), f"bind {target}")


def ready_child(requests: socket.socket) -> None:
    """A child forked before its task is asked for (sandbox_init.py: Launcher._fork_ready). It does now what no
    request changes (a parent-death signal, a session of its own, namespaces of its own with an empty /pipeline),
    waits for its one request, binds the task's folders and starts the task with posix_spawn (a vfork: it shares
    this process's memory until it execs, so its exec tears nothing down, ~0.5 ms less than an exec from here).
    It then stays the task's parent: it says the task's pid, then how it ended, leaving it a zombie (its
    process group id stays reserved) until the launcher closes the socket, then reaps it. Messages to the
    launcher, one JSON object each: {"pid": P} (a pid of the sandbox's namespace), {"exit": R}, or {"error": "..."}
    when the task could not start. Never returns."""
    try:
        os.closerange(3, requests.fileno())  # nothing of the launcher's (its socket, its selector) while it waits
        os.closerange(requests.fileno() + 1, MAX_FD)
        problem = ""
        try:
            check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
            os.setsid()  # apart from the launcher's group, and from the task's own
            enter_own_namespace()
        except OSError as e:  # said when its request comes: that task fails with this reason
            problem = f"{e.strerror or e}"
        data, fds, _flags, _address = socket.recv_fds(requests, INLINE_MESSAGE, 2)
        if not data:  # the launcher ended, or no longer needs it
            os._exit(0)
        if problem:
            raise OSError(0, problem)
        request = request_of(data, fds)
        bind_folders(request["binds"])
        os.chdir(request["cwd"])
        out = fds[0]
        pid = os.posix_spawn(
            request["argv"][0],
            request["argv"],
            request["env"],
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, out, 2),
                (os.POSIX_SPAWN_CLOSE, out),  # it came without close-on-exec; the socket closes on exec
            ],
            setsid=True,  # its own process group, which the executor kills as a whole
            setsigmask=(),
            setsigdef=DEFAULT_SIGNALS,
        )
    except BaseException as e:  # noqa: BLE001 - whatever it is, the executor must hear it
        _say(requests, {"error": f"{getattr(e, 'strerror', None) or e}"[:4000] or "failed"})
        os._exit(127)
    try:
        os.close(out)
        _say(requests, {"pid": pid})
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, left a zombie
        returncode = -signal.SIGKILL if info is None else info.si_status
        if info is not None and info.si_code != os.CLD_EXITED:  # CLD_KILLED, CLD_DUMPED
            returncode = -info.si_status
        _say(requests, {"exit": returncode})
        while requests.recv(1):  # until the launcher closes the socket: the executor is done with its group
            pass
        os.waitid(os.P_PID, pid, os.WEXITED)
    finally:
        os._exit(0)


def _say(requests: socket.socket, message: dict) -> None:
    try:
        requests.send(json.dumps(message).encode())
    except OSError:  # the launcher is gone; this process dies with it (its parent-death signal)
        pass


def request_of(data: bytes, fds: list[int]) -> dict:
    """A spawn request: the datagram, or, when large, the memory file that came as its second fd (from its start:
    the launcher read it before)."""
    if len(fds) == 2:
        with os.fdopen(fds.pop(), "rb") as f:
            f.seek(0)
            return json.loads(f.read())
    return json.loads(data)


class Ready:
    """A child forked ahead of its task (ready_child), as the launcher knows it."""

    def __init__(self, pid: int, pidfd: int, requests: socket.socket):
        self.pid, self.pidfd = pid, pidfd  # its own (the launcher's child)
        self.requests = requests  # its request goes out here, and what it says comes back
        self.request_id = 0  # the spawn it was given
        self.task: int | None = None  # the task's pid in the sandbox's namespace, once started
        self.task_host: int | None = None  # and as the host sees it (what the executor is told)
