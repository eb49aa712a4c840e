"""The local executor's launcher: it starts each task, and ends every process of theirs when the executor goes.

Run by sandbox.py as `python -I -S sandbox_init.py FD MODE`; FD is a
SOCK_SEQPACKET socket to the executor. Standard library only, and nothing
of the package: it starts in a few milliseconds with no site-packages.

MODE `sandbox PROCFD`: inside one bubblewrap sandbox per executor (whose new
root has an empty /pipeline) in a PID namespace of its own. Why a launcher:
bubblewrap builds a whole new root for every process it starts, ~5 ms a task
on this kind of machine against ~0.7 ms for a plain shell. Here each task is
a fork of this small process that enters a user and mount namespace of its
own (~1 ms more than a plain fork and exec), mounts a tmpfs on /pipeline and
binds its folders into it (outputs, output, input1..N, vfroot), so
concurrent tasks each see their own /pipeline while sharing the sandbox's
root. The user namespace maps our own user id and group id to themselves, so
files keep their owners. The sandbox's PID namespace (bubblewrap
--unshare-pid --die-with-parent) is what makes "no orphans" hold: when the
executor's process dies, even of SIGKILL, bubblewrap dies with it, the
namespace's init with bubblewrap, and the kernel kills everything left in
the namespace: tasks, their background children, setsid escapees, double
forks. One namespace for the sandbox, not one per task, so a task costs no
more to start than before (a namespace per task needs an init of its own
per task: one more fork, and signals forwarded by hand). Pids inside are the
namespace's; the executor is told each task's pid as the host sees it (read
from the pidfd's fdinfo under the host's /proc, PROCFD), so it signals the
task's group and records its handle as it would a process of its own.

MODE `plain`: no sandbox (bubblewrap missing, or turned off), the launcher in
a session of its own. It is a child subreaper (PR_SET_CHILD_SUBREAPER), so
whatever a task leaves behind (a setsid escapee, a double fork) becomes its
child when its parent ends, and it reaps those as they end. When the
executor's end of the socket closes (the executor closed it, or its process
died, SIGKILL included), it kills every task's process group and every
process it has become the parent of, until it has no child left, then exits.
No cgroup needed, and nothing to do at the next start.

How a task's process starts (issue 17). A fork of this process costs
~0.4 ms here, and an exec from a forked Python ~0.6 ms more than from a
small process (it tears the copy down); posix_spawn (a vfork) starts a
process in ~0.1 ms. Without the sandbox the launcher starts each task with
posix_spawn, in a session of its own. In the sandbox a task needs namespaces
of its own, which posix_spawn cannot make: so a child of the launcher is
forked before its task is asked for (once a task's exit is sent, or when
nothing runs), makes them and an empty /pipeline, and waits; a request is
handed to it as it came, it binds the task's folders, starts the task with
posix_spawn and stays its parent, saying its pid and later how it ended
(launcher_child.py). bench/launcher_bench.py: 2.7 -> 0.9 ms a task without
the sandbox, 3.4 -> 1.2 ms with it (2.2 ms when a request comes at once
after the last task's exit: the fork ahead has had no time), against 0.6 ms
for a bare posix_spawn.
A task has no parent-death signal: in the sandbox its PID namespace ends it
with the launcher; without it the executor kills its group when it sees the
launcher killed from outside (sandbox.py). glibc's posix_spawn leaves its
internal signals 32 and 33 ignored in the task; nothing else is ignored or
blocked.

Messages, one JSON object per datagram (pids as the executor's host sees them):
  executor -> launcher  {"op": "spawn", "id": N, "argv": [...], "cwd": "...", "env": {...},
                         "binds": [[source, target], ...]} with one fd: the task's stdout and stderr
                         (over 64 KiB, the request comes in a memory file passed as a second fd)
                        {"op": "reap", "pid": P}: the executor has done with P's process group
  launcher -> executor  {"id": N, "pid": P, "start": T} (T: its start in clock ticks since boot, for its handle)
                        or {"id": N, "error": "..."}
                        {"exit": P, "returncode": R}: P ended (R < 0: killed by signal -R)
A task is left unreaped (a zombie: by the launcher, or in the sandbox by its
parent) until the executor says "reap": until then
its process id, and so its process group id, cannot be given to another
process, and the executor may still kill what the task left in its group.
When the executor's end of the socket closes, the launcher ends every
process of its tasks and exits.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import signal
import socket
import sys

if __package__:  # imported (type checks, tests)
    from fasttrack_gitops.engine.executors import launcher_child
else:  # run as a script (-I -S): its sibling by path, after the standard library, and nothing of the package
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    import launcher_child  # type: ignore[import-not-found,no-redef]

PR_SET_CHILD_SUBREAPER = 36


class Launcher:
    def __init__(self, sock: socket.socket, host_proc: int | None):
        self.sock = sock
        self.host_proc = host_proc  # the host's /proc (sandbox mode): where a task's host pid is read
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.pidfds: dict[int, int] = {}  # our pid -> pidfd, until reaped (ready children included)
        self.ours: dict[int, int] = {}  # plain mode: a task's pid -> itself, until reaped
        self.ready: launcher_child.Ready | None = None  # sandbox mode: the next task's process, forked ahead
        self.starting: dict[int, launcher_child.Ready] = {}  # its socket's fd -> one given its request, until it says
        self.tasks: dict[int, launcher_child.Ready] = {}  # sandbox mode: a task's host pid -> its parent, until reaped
        # Sandbox mode forks each task's process ahead (no posix_spawn can make namespaces); False for a while
        # after a fork failed, until one works again.
        self.forks_ahead = host_proc is not None
        self.running = 0  # tasks whose exit is not sent yet

    def serve(self) -> None:
        try:
            while True:
                # Fork the next task's process when nothing waits for us and no task runs (a task's exit would wait
                # for the fork); else once a task's exit is sent (_ended): the executor records it then, and asks
                # for the next task after, when the fork is done.
                idle = self.forks_ahead and self.ready is None and not self.starting and not self.running
                events = self.selector.select(0 if idle else None)
                if not events and idle:
                    self._fork_ahead()
                for key, _ in events:
                    if key.fileobj is self.sock:
                        if not self._message():
                            return
                    elif key.data is None:  # SIGCHLD (plain mode): a process we adopted may have ended
                        _drain(key.fd)
                        self._reap_adopted()
                    else:  # what was registered with it: a task ended, a child spoke, a child exited
                        key.data()
        finally:
            self._end_everything()

    def watch_adopted(self) -> None:
        """Plain mode: become the subreaper of our tasks' descendants, and reap those that end (SIGCHLD)."""
        launcher_child.check(launcher_child.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl")
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler of ours, so the wakeup fd hears of it
        self.selector.register(wake_read, selectors.EVENT_READ, None)

    def _message(self) -> bool:
        data, fds, _flags, _address = socket.recv_fds(self.sock, launcher_child.INLINE_MESSAGE, 2)
        if not data:
            return False
        request = json.loads(data)
        if request["op"] == "spawn" and self.host_proc is None:
            self._spawn_plain(request["id"], data, fds)
        elif request["op"] == "spawn":
            self._spawn(request["id"], data, fds)
        elif request["op"] == "reap" and self.host_proc is None:
            pid = self.ours.pop(request["pid"], None)
            pidfd = self.pidfds.pop(pid, None) if pid is not None else None
            if pidfd is not None:
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
                os.close(pidfd)
        elif request["op"] == "reap":
            child = self.tasks.pop(request["pid"], None)
            if child is not None:
                self._forget(child)
        return True

    def _spawn_plain(self, request_id: int, data: bytes, fds: list[int]) -> None:
        """Plain mode: the task started with posix_spawn (a vfork: ~0.1 ms here against ~1 ms for a fork of this
        process and an exec that tears its copy down), in a session of its own, answered at once."""
        try:
            request = launcher_child.request_of(data, fds)
            out = fds[0]
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, out, 2),
                (os.POSIX_SPAWN_CLOSE, out),  # it came without close-on-exec; ours are all close-on-exec
            ]
            os.chdir(request["cwd"])  # what it inherits: we are single-threaded, and go back at once
            try:
                pid = os.posix_spawn(
                    request["argv"][0],
                    request["argv"],
                    request["env"],
                    file_actions=actions,
                    setsid=True,  # its own process group, which the executor kills as a whole
                    setsigmask=(),
                    setsigdef=launcher_child.DEFAULT_SIGNALS,
                )
            finally:
                os.chdir("/")
        except OSError as e:
            self._send({"id": request_id, "error": e.strerror or str(e)})
            return
        finally:
            for fd in fds:
                os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.pidfds[pid] = pidfd
        self.ours[pid] = pid
        self.selector.register(pidfd, selectors.EVENT_READ, functools.partial(self._ended, pid))
        self.running += 1
        self._send({"id": request_id, "pid": pid, "start": self._start_ticks(pid)})

    def _fork_ready(self) -> None:
        """Fork the next task's process now (launcher_child.ready_child), so that a request finds one with its
        namespaces made, that only has to bind the task's folders and start it (a fork of this process and a
        user namespace take ~1-1.5 ms that no longer wait in a task's start)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            ours.close()
            launcher_child.ready_child(theirs)
        theirs.close()
        self.pidfds[pid] = os.pidfd_open(pid)  # never reaped as adopted (_reap_adopted)
        self.ready = launcher_child.Ready(pid, self.pidfds[pid], ours)

    def _spawn(self, request_id: int, data: bytes, fds: list[int]) -> None:
        """Hand a spawn request, as it came, to the child forked for it; answered when it says (_heard)."""
        try:
            child = self._take_ready(data, fds)
        except OSError as e:  # out of processes or memory: this task cannot start, others may later
            self._send({"id": request_id, "error": f"cannot start a process: {e.strerror or e}"})
            return
        finally:
            for fd in fds:
                os.close(fd)
        child.request_id = request_id
        self.starting[child.requests.fileno()] = child
        self.selector.register(child.requests, selectors.EVENT_READ, functools.partial(self._heard, child))

    def _take_ready(self, data: bytes, fds: list[int]) -> launcher_child.Ready:
        """The ready child, given the request; one forked now when there is none (the last one went to a request
        just before), or when the ready one died while it waited (killed from outside)."""
        for _ in range(2):
            if self.ready is None:
                self._fork_ready()
                self.forks_ahead = True
            child, self.ready = self.ready, None
            assert child is not None
            try:
                socket.send_fds(child.requests, [data], fds)
                return child
            except OSError:  # it is gone: reap it, and give the request to a new one
                self._forget(child)
        raise OSError(0, "the task's process ended before it started")

    def _heard(self, child: launcher_child.Ready) -> None:
        """What a child handed a request says: its task started (pid), ended (exit), could not start (error), or
        nothing more: it died (killed from outside)."""
        try:
            data = child.requests.recv(launcher_child.INLINE_MESSAGE)
        except OSError:
            data = b""
        said = json.loads(data) if data else {}
        if "pid" in said:
            child.task = said["pid"]
            pidfd = os.pidfd_open(said["pid"])  # our grandchild: only to read its host pid
            try:
                child.task_host = self._host_pid(pidfd)
            finally:
                os.close(pidfd)
            del self.starting[child.requests.fileno()]
            self.tasks[child.task_host] = child
            self.running += 1
            self._send({"id": child.request_id, "pid": child.task_host, "start": self._start_ticks(child.task_host)})
        elif "exit" in said:
            self.selector.unregister(child.requests)  # it says nothing more until told to reap (the socket closed)
            self._task_ended(child.task_host, said["exit"])
        else:
            self.selector.unregister(child.requests)
            if child.task_host is None:  # never started its task
                del self.starting[child.requests.fileno()]
                self._send({"id": child.request_id, "error": said.get("error", "its process ended before it started")})
                self._forget(child)
            else:  # it died under its task (killed from outside): the task's group goes with it, as it would
                _kill_group(child.task)
                self._task_ended(child.task_host, -signal.SIGKILL)

    def _forget(self, child: launcher_child.Ready) -> None:
        """A child that is done (it never started a task, or the executor is done with its task): its socket closed
        (one that waits on it reaps its task then, and exits), and itself reaped once it has exited, without
        waiting for it here (an exit tears down a copy of this process: ~0.5 ms)."""
        child.requests.close()
        self.selector.register(child.pidfd, selectors.EVENT_READ, functools.partial(self._reaped, child))

    def _reaped(self, child: launcher_child.Ready) -> None:
        self.selector.unregister(child.pidfd)
        os.waitid(os.P_PIDFD, child.pidfd, os.WEXITED)
        os.close(self.pidfds.pop(child.pid))

    def _host_pid(self, pidfd: int) -> int:
        """The pid the host gives the process behind pidfd: its fdinfo read under the host's /proc says."""
        fd = os.open(f"self/fdinfo/{pidfd}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.host_proc)
        with os.fdopen(fd) as f:
            for line in f:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
        raise OSError(0, "the kernel does not tell a pidfd's pid (Linux >= 5.3 does)")

    def _start_ticks(self, host_pid: int) -> int | None:
        """When the process started, in clock ticks since boot (the handle's guard against a reused pid)."""
        path = f"{host_pid}/stat" if self.host_proc is not None else f"/proc/{host_pid}/stat"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.host_proc)
        except OSError:
            return None
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
        fields = stat.rsplit(b")", 1)[-1].split()  # after the name, which may hold spaces
        return int(fields[19]) if len(fields) > 19 else None  # field 22 of proc(5)

    def _ended(self, host_pid: int) -> None:
        """Plain mode: a task (our child) ended; it stays a zombie, its group id ours, until the executor says reap."""
        pidfd = self.pidfds[self.ours[host_pid]]
        self.selector.unregister(pidfd)
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT)
        if info is None:  # cannot happen once the pidfd is readable; never lose the task
            returncode = -signal.SIGKILL
        elif info.si_code == os.CLD_EXITED:
            returncode = info.si_status
        else:  # CLD_KILLED, CLD_DUMPED
            returncode = -info.si_status
        self._task_ended(host_pid, returncode)

    def _task_ended(self, host_pid: int | None, returncode: int) -> None:
        self._send({"exit": host_pid, "returncode": returncode})
        self.running -= 1
        if self.forks_ahead and self.ready is None and not self.starting:
            self._fork_ahead()

    def _fork_ahead(self) -> None:
        """Fork the next task's process before it is asked for (when a fork fails, not again until a request
        asks for one: it says why)."""
        try:
            self._fork_ready()
        except OSError:  # out of processes or memory
            self.forks_ahead = False

    def _reap_adopted(self) -> None:
        """Reap the processes we adopted that have ended; never a task (its zombie holds its group id for us)."""
        for pid in _children():
            if pid not in self.pidfds:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _end_everything(self) -> None:
        """The executor is gone: kill every task's group, then every child we have (tasks, and in plain mode what
        their descendants left to us), again as long as killed ones leave us more, so that nothing outlives it."""
        leaders = [c.task for c in self.tasks.values()] if self.host_proc is not None else list(self.ours)
        for pid in leaders:  # still reserved: a group whose leader nobody has reaped
            _kill_group(pid)
        while children := _children():
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid cannot be anyone else's
                except OSError:
                    pass
            for pid in children:  # a killed process's children are ours before it can be reaped
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def _send(self, message: dict) -> None:
        self.sock.send(json.dumps(message).encode())


def _children() -> list[int]:
    """Our child processes, ended ones (zombies) included."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            return [int(pid) for pid in f.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: every process's parent, from /proc
        me, found = os.getpid(), []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return found


def _kill_group(pgid: int | None) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the terminal is the executor's to handle
    # Asked to stop (a service manager stopping us all, say): end the tasks' processes first, as at the end.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.set_inheritable(False)  # passed to us open across exec; no task may inherit it
    if sys.argv[2] == "sandbox":
        launcher = Launcher(sock, int(sys.argv[3]))
    else:
        launcher = Launcher(sock, None)
        launcher.watch_adopted()
    launcher.serve()


if __name__ == "__main__":
    main()
