"""The task launcher's own cost per task, against a bare fork and exec of the same shell, in one run.

    python bench/launcher_bench.py [--tasks 200]

A chain of trivial tasks (`sh -c true`) started one after another through the
task launcher (engine/executors/sandbox.py, sandbox_init.py), with the sandbox
(bubblewrap, each task in namespaces of its own) and without; per task, the
median time from the spawn request to the launcher's answer (the task has
exec'd), from there to its exit reaching us, and in all. The reference is the
same shell started with os.posix_spawn and waited for: what any process
launcher pays on this machine (make's floor). What is left above it is the
launcher's: a fork of a Python process, its namespaces, two messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time

from fasttrack_gitops.engine.executors.bubblewrap import Bubblewrap
from fasttrack_gitops.engine.executors.sandbox import SandboxLauncher

SHELL = "/bin/sh"


async def chain(
    launcher: SandboxLauncher, tasks: int, binds: list[tuple[str, str]], gap: float
) -> tuple[float, float, float]:
    spawned, exited, whole = [], [], []
    for _ in range(tasks):
        if gap:
            await asyncio.sleep(gap)  # the executor's own work between a task's end and its dependant's start
        start = time.perf_counter()
        read_fd, write_fd = os.pipe()
        task = await launcher.spawn([SHELL, "-c", "true"], cwd="/", env={"PATH": os.defpath}, binds=binds, out=write_fd)
        answered = time.perf_counter()
        os.close(write_fd)
        await task.exited
        task.poll()
        os.close(read_fd)
        end = time.perf_counter()
        spawned.append(answered - start)
        exited.append(end - answered)
        whole.append(end - start)
    return statistics.median(spawned) * 1e3, statistics.median(exited) * 1e3, statistics.median(whole) * 1e3


def bare(tasks: int) -> float:
    times = []
    for _ in range(tasks):
        start = time.perf_counter()
        os.waitpid(os.posix_spawn(SHELL, [SHELL, "-c", "true"], {"PATH": os.defpath}), 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


async def main(tasks: int) -> None:
    reference = bare(tasks)
    print(f"{'launcher':<10} {'answered':>9} {'exit':>7} {'per task':>9} {'vs posix_spawn':>15}")
    print(f"{'(none)':<10} {'':>9} {'':>7} {reference:>7.2f}ms {1:>14.1f}x   posix_spawn + wait")
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("outputs", "input1", "vfroot"):
            os.mkdir(os.path.join(tmp, sub))
        binds = [(os.path.join(tmp, s), f"/pipeline/{s}") for s in ("outputs", "input1", "vfroot")]
        plain = SandboxLauncher()
        problem = await plain.start(None, SHELL)
        if problem:
            raise SystemExit(problem)
        rows = [("plain", plain, [])]
        sandbox = Bubblewrap(SHELL, SandboxLauncher())
        if shutil.which("bwrap") and await sandbox.prefix() is not None:
            launcher = await sandbox.running_launcher()
            if launcher is not None:
                rows.append(("sandbox", launcher, binds))
        for label, launcher, folders in rows:
            for gap in (0.0, 0.001):
                answered, exited, whole = await chain(launcher, tasks, folders, gap)
                row = f"{label} +{gap * 1e3:.0f}ms"
                print(f"{row:<10} {answered:>7.2f}ms {exited:>5.2f}ms {whole:>7.2f}ms {whole / reference:>14.1f}x")
            await launcher.close()
    print(
        f"(medians of {tasks} tasks in a chain; +0ms: each request as soon as the last task's exit came, +1ms: a "
        "millisecond later, about what the runner takes to record an end and decide: the launcher forks the next "
        "task's process in that time)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    asyncio.run(main(parser.parse_args().tasks))
