"""How fast the local executor keeps a loud task's log: a gigabyte of output capped to its head and tail.

    python bench/log_bench.py [--gigabytes 1] [--runs 3]

One attempt of a task printing --gigabytes GB (`head -c N /dev/zero | tr
'\\0' x`) runs through LocalExecutor.run in this process, without
bubblewrap; the log keeps the first and last MiB and a line saying how much
was left out. As a reference, the same shell command with its output sent
to /dev/null. Prints the median seconds of both, our throughput, and how
much this process's peak resident memory grew (read from /proc; it should
stay flat: the output streams through, it is never held).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine.executors.base import AttemptSpec
from fasttrack_gitops.engine.executors.local import LocalExecutor


def memory_kib(field: str) -> int:
    """VmRSS or VmHWM (the peak) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}")


def attempt(folder: Path, command: str) -> float:
    """Seconds for one attempt of command through the local executor, its log under folder."""
    for name in ("work", "vfroot"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    spec = AttemptSpec(
        job_id="20261128-101530-3fa9c1",
        task=Task(name="loud", command=command),
        number=1,
        workdir=folder / "work",
        outputs=folder / "outputs",
        inputs=(),
        vfroot=folder / "vfroot",
        env={},
        log_path=folder / "loud.log",
        timeout=None,
    )

    async def main():
        return await LocalExecutor(bwrap=False).run(spec, cancel=asyncio.Event(), started=lambda handle=None: None)

    started = time.perf_counter()
    result = asyncio.run(main())
    took = time.perf_counter() - started
    if result.outcome != Outcome.SUCCEEDED:
        raise SystemExit(f"the attempt did not succeed: {result}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = int(args.gigabytes * 1e9)
    command = f"head -c {size} /dev/zero | tr '\\0' x; echo; echo the end"

    Path("/proc/self/clear_refs").write_text("5")  # the peak so far is forgotten: measure ours only
    before = memory_kib("VmRSS")
    ours, reference = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            ours.append(attempt(Path(tmp) / str(run), command))
            started = time.perf_counter()
            subprocess.run(["/bin/sh", "-c", command], stdout=subprocess.DEVNULL, check=True)
            reference.append(time.perf_counter() - started)
        log_size = (Path(tmp) / "0" / "loud.log").stat().st_size
    grown = memory_kib("VmHWM") - before
    mine, theirs = statistics.median(ours), statistics.median(reference)
    print(
        f"{args.gigabytes:g} GB of output into a {log_size / 2**20:.1f} MiB log: {mine:.2f} s ({size / mine / 1e6:.0f} MB/s)"
    )
    print(f"the same command into /dev/null: {theirs:.2f} s ({mine / theirs:.1f}x)")
    print(f"peak resident memory grew by {grown / 1024:.1f} MiB")
    print(f"(median of {args.runs} runs)")


if __name__ == "__main__":
    main()
