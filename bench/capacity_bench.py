"""Capacity-aware dispatch on Backend.AI: an 18-task fan on a 2-CPU cluster, asking for 1, 4 and 16 sessions at once.

    python bench/capacity_bench.py [--tasks 18] [--cpus 2] [--sleep 0.5] [--pass-interval 1.0] [--runs 1]

The Backend.AI 23.09 emulator (tests/engine/backendai) stands for the real
stack of backendai-api.md, "Capacity": one scaling group with `--cpus` CPU
slots; a session that does not fit when it is enqueued waits PENDING for
the next scheduler pass, every `--pass-interval` seconds (23.09: 10 s). Each
task asks for `cpu: 1` and sleeps `--sleep` seconds. Each figure is a whole
`fasttrack-gitops run --executor backendai --max-parallel N` process, on a
fresh emulator: with check-presets answered (capacity-aware, what we ship),
and with it answering 404 (the fallback: asking for as many as are ready, as
before). Target: --max-parallel 4 and 16 take <= 0.6x the time of
--max-parallel 1 with 2 slots; asking for more than fits must not be slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from benchlib import emulator_env, git

PROJECT = Path(__file__).resolve().parent.parent
IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the emulator's (and the real stack's) image
PARALLEL = (1, 4, 16)


def make_repo(root: Path, tasks: int, sleep: float) -> None:
    fan = [
        {
            "name": f"t{i:02d}",
            "command": f"sleep {sleep}",
            "resources": {"cpu": 1, "mem": "256m"},
            "environment": {"image": IMAGE},
        }
        for i in range(tasks)
    ]
    (root / "pipelines").mkdir(parents=True)
    text = yaml.safe_dump({"version": "26.4.4", "name": "fan", "tasks": fan}, sort_keys=False)
    (root / "pipelines" / "fan.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fan")


def one_run(root: Path, state: Path, parallel: int, args: argparse.Namespace, *, capacity: bool) -> tuple[float, int]:
    """(wall seconds of the whole process, the most sessions asked for and not ended at once)."""
    from engine.backendai.emulator import Emulator, Reply
    from engine.backendai.emulator_capacity import install as install_capacity
    from engine.backendai.emulator_sessions import install as install_sessions
    from engine.backendai.emulator_vfolders import install as install_vfolders

    with Emulator(rate_limit=100_000) as emu:
        install_sessions(emu, step=0.05)
        with install_vfolders(emu):
            cluster = install_capacity(emu, {"default": {"cpu": args.cpus}}, pass_interval=args.pass_interval)
            if not capacity:  # an older manager: the route is not there
                emu.route(
                    "POST",
                    "/resource/check-presets",
                    lambda req: Reply.problem(404, "url-not-found", "Unknown URL path.", data=req.path),
                )
            env = emulator_env(emu)
            command = [
                str(Path(sys.executable).with_name("fasttrack-gitops")),
                "run",
                "pipelines/fan.yaml",
                "--executor",
                "backendai",
                "--max-parallel",
                str(parallel),
                "--state-dir",
                str(state),
                "--format",
                "json",
            ]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0 or json.loads(done.stdout)["status"] != "succeeded":
                sys.exit(f"the job failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            return wall, cluster.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=18)
    parser.add_argument("--cpus", type=float, default=2)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--pass-interval", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT / "tests"))
    print(
        f"{args.tasks}-task fan of cpu: 1 tasks (sleep {args.sleep:g}), {args.cpus:g} CPU slots, "
        f"scheduler pass every {args.pass_interval:g} s"
    )
    print(f"{'':<26} {'--max-parallel':>14} {'wall':>8} {'ratio':>6} {'peak asked':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root, args.tasks, args.sleep)
        for capacity, label in ((True, "capacity-aware"), (False, "without (check-presets 404)")):
            reference = None
            for parallel in PARALLEL:
                results = [
                    one_run(root, Path(tmp) / f"state-{capacity}-{parallel}-{i}", parallel, args, capacity=capacity)
                    for i in range(args.runs)
                ]
                wall = statistics.median(w for w, _ in results)
                peak = max(p for _, p in results)
                reference = reference or wall
                print(f"{label:<26} {parallel:>14} {wall:>7.2f}s {wall / reference:>5.2f}x {peak:>11}")
    print(f"(median of {args.runs} run(s); whole processes; target <= 0.6x of --max-parallel 1)")


if __name__ == "__main__":
    main()
