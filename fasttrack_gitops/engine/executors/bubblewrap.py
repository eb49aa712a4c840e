"""The local executor's sandbox: bubblewrap, which shows a task the pipeline data folder where FastTrack mounts it.

Under bubblewrap a task sees its folders at /pipeline/outputs,
/pipeline/input1..N and /pipeline/vfroot (datafolder.mounts) with the rest
of the host filesystem unchanged: a new root holds a bind of every entry of
the host's / but /pipeline. Whether bubblewrap works here is found out once
per executor by running a trivial command under it: it fails where user
namespaces are not allowed, and it is not used on a machine that has its
own /pipeline. FTG_BWRAP chooses: 0 never, 1 required, unset when it works.

Every bubblewrap here (the launcher's, or one per task) also gets a PID
namespace of its own with a fresh /proc, and dies with our process
(--die-with-parent): when we die, even of SIGKILL, the namespace's init dies
and the kernel kills every process left in it, whatever session or group it
made for itself (issue 16: no orphans). The fresh /proc keeps a task's view
consistent: its pids ($$, os.getpid()) are the namespace's, and so are the
/proc/PID it reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.executors.base import AttemptSpec, oserror_message
from fasttrack_gitops.engine.executors.sandbox import SandboxLauncher

log = logging.getLogger("fasttrack_gitops.engine.local")

PROBE_TIMEOUT = 10.0


def sandbox_prefix() -> tuple[list[str] | None, str]:
    """The bubblewrap argv prefix to try (the host's root shown unchanged but /pipeline, a PID namespace of its own,
    dying with us), or None and why it cannot be."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap is not installed"
    if os.path.lexists(datafolder.ROOT):
        return None, f"this machine has its own {datafolder.ROOT}"
    return [bwrap, "--die-with-parent", "--unshare-pid", *_host_root_binds(), "--proc", "/proc"], ""


def bwrap_setting(value: str) -> bool | None:
    """FTG_BWRAP: 0 never use bubblewrap, 1 require it, unset or anything else: when it works."""
    return {"0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}.get(value.lower())


class Bubblewrap:
    """Whether bubblewrap works on this machine, probed once (on first need) with a task shell.

    With a launcher (sandbox.py), starting it is the probe: it runs a task under bubblewrap. When it
    cannot start (no nested user namespaces), the plain probe decides and each task gets a bubblewrap.
    """

    def __init__(self, shell: str, launcher: SandboxLauncher | None = None):
        self.shell = shell
        self.launcher = launcher  # None: a bubblewrap per task
        self.reason = ""  # why not, when it does not work
        self._prefix: list[str] | None = None  # the bwrap argv prefix, once probed and working
        self._probed = False
        self._probe_task: asyncio.Future | None = None

    async def prefix(self) -> list[str] | None:
        """The argv prefix that runs a command under bubblewrap; None when bubblewrap does not work here."""
        if not self._probed:
            if self._probe_task is None:  # attempts that start together share one probe
                self._probe_task = asyncio.ensure_future(self._probe())
            probe = self._probe_task
            try:
                self._prefix, self.reason = await asyncio.shield(probe)
            finally:
                if probe.done():
                    self._probe_task = None
            self._probed = True
        return self._prefix

    async def running_launcher(self) -> SandboxLauncher | None:
        """The launcher, once bubblewrap works with it; started again if it died (killed from outside)."""
        launcher = self.launcher
        if launcher is None or self._prefix is None:
            return None
        if not launcher.running:
            problem = await launcher.ensure(self._prefix, self.shell)
            if problem:
                log.warning("tasks get a bubblewrap sandbox each from now on: %s", problem)
                self.launcher = None
                return None
        return launcher

    async def _probe(self) -> tuple[list[str] | None, str]:
        """Try bubblewrap once with a trivial command: it fails where user namespaces are not allowed."""
        prefix, why_not = sandbox_prefix()
        if prefix is None:
            return None, why_not
        if self.launcher is not None:
            problem = await self.launcher.start(prefix, self.shell)
            if not problem:
                return prefix, ""
            log.info("tasks get a bubblewrap sandbox each: %s", problem)
            self.launcher = None
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
                return None, oserror_message(e)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                return None, f"bwrap did not answer in {PROBE_TIMEOUT:g}s"
        if proc.returncode != 0:
            return None, err.decode(errors="replace").strip() or f"bwrap exited with {proc.returncode}"
        return prefix, ""


def bwrap_command(prefix: list[str], argv: list[str], spec: AttemptSpec, workdir: str) -> list[str]:
    """argv under bubblewrap in workdir, the attempt's folders bound where FastTrack mounts them."""
    binds: list[str] = []
    for source, target in mounted_folders(spec):
        binds += ["--bind", os.path.abspath(source), target]
    return [*prefix, *binds, "--chdir", workdir, "--", *argv]


def mounted_folders(spec: AttemptSpec) -> list[tuple[Path, str]]:
    """(folder, where FastTrack mounts it) for the attempt; the folders are made when missing: a bind needs its
    source to exist."""
    found = datafolder.mounts(spec.outputs, spec.inputs, spec.vfroot)
    for source, _target in found:
        source.mkdir(parents=True, exist_ok=True)
    return found


def _host_root_binds() -> list[str]:
    """bwrap arguments that show the host's / unchanged, on a new root where /pipeline can be made.

    (Binding / itself would make bwrap create /pipeline on the host.)
    """
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if path in (datafolder.ROOT, "/proc"):  # /proc: a fresh one, of the sandbox's PID namespace
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif name == "dev":
            args += ["--dev-bind", path, path]
        elif os.path.isdir(path) or os.path.isfile(path):
            args += ["--bind", path, path]
    return args
