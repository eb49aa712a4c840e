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


def ready_child(requests: socket.socket, report: int) -> None:
    """A child forked before its task is asked for (sandbox_init.py: Launcher._fork_ready): it does now what no task's request
    changes (its parent-death signal, a session of its own, its own namespaces and /pipeline),
    waits for its one request, and becomes the task (exec), or writes to `report` why it could not and exits
    127. Never returns."""
    try:
        keep = sorted((requests.fileno(), report))
        os.closerange(3, keep[0])  # nothing of the launcher's (its socket, its selector) while it waits
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, MAX_FD)
        problem = ""
        try:
            check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
            os.setsid()  # its own process group, which the executor kills as a whole
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
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[0], 2)
        os.closerange(3, report)  # the task inherits stdin, stdout and stderr only (report closes on exec)
        os.closerange(report + 1, MAX_FD)
        for signum in DEFAULT_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os.execve(request["argv"][0], request["argv"], request["env"])
    except BaseException as e:  # noqa: BLE001 - whatever it is, the executor must hear it
        os.write(report, f"{getattr(e, 'strerror', None) or e}".encode(errors="replace")[:4000] or b"failed")
    finally:
        os._exit(127)


def request_of(data: bytes, fds: list[int]) -> dict:
    """A spawn request: the datagram, or, when large, the memory file that came as its second fd (from its start:
    the launcher read it before)."""
    if len(fds) == 2:
        with os.fdopen(fds.pop(), "rb") as f:
            f.seek(0)
            return json.loads(f.read())
    return json.loads(data)


class Ready:
    """A child forked ahead of its task: its pids and pidfd known already, waiting for its request."""

    def __init__(self, pid: int, pidfd: int, host_pid: int, start: int | None, requests: socket.socket, report: int):
        self.pid, self.pidfd, self.host_pid, self.start = pid, pidfd, host_pid, start
        self.requests = requests  # where its one request goes
        self.report = report  # EOF once it exec'd; else why it could not
        self.request_id = 0  # the spawn it was given
