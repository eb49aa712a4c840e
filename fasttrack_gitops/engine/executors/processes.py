"""Handles of local task processes: how a restarted runner recognises, and stops, an attempt's process group.

A runner killed with -9 leaves its tasks' process groups running (each leads
its own session). The handle stored with the attempt names the group leader
by pid, its start time in clock ticks since boot and the boot id, so a pid
that the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def process_handle(pid: int) -> dict:
    """The handle of the process group led by pid (start time and boot id where /proc has them)."""
    return {"pgid": pid, "start": _start_ticks(pid), "boot": _boot_id()}


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
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[19])  # field 22 of proc(5): starttime


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None
