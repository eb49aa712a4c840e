"""The launcher inside the local executor's sandbox: it starts each task with /pipeline of its own.

Run by sandbox.py as `python -I -S sandbox_init.py FD` inside one bubblewrap
sandbox per executor (whose new root has an empty /pipeline); FD is a
SOCK_SEQPACKET socket to the executor. Standard library only, and nothing
of the package: it starts in a few milliseconds with no site-packages.

Why: bubblewrap builds a whole new root for every process it starts, ~5 ms
a task on this kind of machine against ~0.7 ms for a plain shell. Here each
task is a fork of this small process that enters a user and mount namespace
of its own (~1 ms more than a plain fork and exec), mounts a tmpfs on
/pipeline and binds its folders into it (outputs, output, input1..N,
vfroot), so concurrent tasks each see their own /pipeline while sharing the
sandbox's root. The user namespace maps our own user id and group id to
themselves, so files keep their owners; a task's shell is killed if this
launcher dies (PR_SET_PDEATHSIG), as it was under bubblewrap's
--die-with-parent, and what it started runs on in its process group until
the executor (or the next runner, from the attempt's handle) kills the group.

Messages, one JSON object per datagram:
  executor -> launcher  {"op": "spawn", "id": N, "argv": [...], "cwd": "...", "env": {...},
                         "binds": [[source, target], ...]} with one fd: the task's stdout and stderr
                         (over 64 KiB, the request comes in a memory file passed as a second fd)
                        {"op": "reap", "pid": P}: the executor has done with P's process group
  launcher -> executor  {"id": N, "pid": P} or {"id": N, "error": "..."}
                        {"exit": P, "returncode": R}: P ended (R < 0: killed by signal -R)
A task is left unreaped (a zombie) until the executor says "reap": until then
its process id, and so its process group id, cannot be given to another
process, and the executor may still kill what the task left in its group.
When the executor's end of the socket closes, the launcher exits.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
PR_SET_PDEATHSIG = 1
ROOT = b"/pipeline"
MAX_FD = 65536  # what closerange goes up to in the child (close_range(2) makes it one call)
INLINE_MESSAGE = 64 << 10  # the largest request sent as a datagram (sandbox.py); larger ones come by fd

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enter_own_pipeline(binds: list[list[str]]) -> None:
    """In the forked child: a user and mount namespace of its own, a fresh /pipeline, the task's folders in it."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _check(_libc.mount(b"tmpfs", ROOT, b"tmpfs", 0, b"mode=0755"), "mount tmpfs on /pipeline")
    for source, target in binds:
        os.makedirs(target, exist_ok=True)
        _check(_libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND | MS_REC, None), f"bind {target}")


def _child(request: dict, out: int, report: int) -> None:
    """The forked child: becomes the task (exec) or writes why it could not to `report` and exits 127."""
    try:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        os.setsid()  # its own process group, which the executor kills as a whole
        _enter_own_pipeline(request["binds"])
        os.chdir(request["cwd"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.closerange(3, report)  # the task inherits stdin, stdout and stderr only (report closes on exec)
        os.closerange(report + 1, MAX_FD)
        for signum in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)  # ignored here (or by Python); a task starts with the defaults
        os.execve(request["argv"][0], request["argv"], request["env"])
    except BaseException as e:  # noqa: BLE001 - whatever it is, the executor must hear it
        os.write(report, f"{getattr(e, 'strerror', None) or e}".encode(errors="replace")[:4000] or b"failed")
    finally:
        os._exit(127)


class Launcher:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.pidfds: dict[int, int] = {}  # pid -> pidfd, until reaped

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.sock:
                    if not self._message():
                        return  # its tasks' shells die with it (PR_SET_PDEATHSIG), as under --die-with-parent
                else:
                    self._ended(key.data)

    def _message(self) -> bool:
        data, fds, _flags, _address = socket.recv_fds(self.sock, INLINE_MESSAGE, 2)
        if not data:
            return False
        request = json.loads(data)
        if len(fds) == 2:  # a large request comes in a memory file, read from its start
            with os.fdopen(fds.pop(), "rb") as f:
                f.seek(0)
                request = json.loads(f.read())
        if request["op"] == "spawn":
            self._spawn(request, fds[0])
        elif request["op"] == "reap":
            pidfd = self.pidfds.pop(request["pid"], None)
            if pidfd is not None:
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
                os.close(pidfd)
        return True

    def _spawn(self, request: dict, out: int) -> None:
        report_read, report_write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(report_read)
            _child(request, out, report_write)
        os.close(report_write)
        os.close(out)
        why = b""
        while chunk := os.read(report_read, 4096):  # EOF when the exec succeeded (close-on-exec) or it failed
            why += chunk
        os.close(report_read)
        if why:
            os.waitpid(pid, 0)
            self._send({"id": request["id"], "error": why.decode(errors="replace")})
            return
        pidfd = os.pidfd_open(pid)
        self.pidfds[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        self._send({"id": request["id"], "pid": pid})

    def _ended(self, pid: int) -> None:
        pidfd = self.pidfds[pid]
        self.selector.unregister(pidfd)
        # WNOWAIT: it stays a zombie, so its process group id is ours until the executor says "reap"
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT)
        if info is None:  # cannot happen once the pidfd is readable; never lose the task
            returncode = -signal.SIGKILL
        elif info.si_code == os.CLD_EXITED:
            returncode = info.si_status
        else:  # CLD_KILLED, CLD_DUMPED
            returncode = -info.si_status
        self._send({"exit": pid, "returncode": returncode})

    def _send(self, message: dict) -> None:
        self.sock.send(json.dumps(message).encode())


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the terminal is the executor's to handle
    sock = socket.socket(fileno=int(sys.argv[1]))
    Launcher(sock).serve()


if __name__ == "__main__":
    main()
