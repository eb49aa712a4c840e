"""The local executor against `make -j2`, start-up against `python -c pass`, in one run on this machine.

    python bench/run_bench.py [--tasks 200] [--runs 5] [--rss-tasks 1000]

1. Three 200-task DAGs of trivial shell tasks (`true`): a chain, a fan
   (1 -> 198 -> 1) and a random layered DAG, each run as a whole
   `fasttrack-gitops run --max-parallel 2` process (start-up, validation, the
   store, logs included), with the sandbox (bubblewrap) and without, and as
   `make -j2` on a Makefile with the same edges. Prints the medians and the
   ratios (target <= 3x, moonshot 2x).
2. The critical path: in the chain, from a task's end (its attempt's
   `ended_at` in the store) to its dependant's start (`started_at`), median
   and p90 (target <= 1 ms).
3. Start-up: `--version`, `run --help`, `validate` and a 1-task `run`
   against `python -c pass` (targets: --version <= 1.5x, 1-task run <= 150 ms).
4. Memory: the peak RSS of `run` on a --rss-tasks layered DAG (target <= 80 MB).

The package's bytecode is compiled first, as installing a wheel does: with
PYTHONDONTWRITEBYTECODE set (as in this sandbox) an editable install would
otherwise compile some hundred modules at every start (~80 ms of CPU a
`run`), which measures the checkout rather than the tool.
"""

from __future__ import annotations

import argparse
import compileall
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent


def chain(n: int) -> dict[str, list[str]]:
    return {f"t{i:04d}": ([f"t{i - 1:04d}"] if i else []) for i in range(n)}


def fan(n: int) -> dict[str, list[str]]:
    middle = [f"t{i:04d}" for i in range(1, n - 1)]
    return {"t0000": [], **{m: ["t0000"] for m in middle}, f"t{n - 1:04d}": middle}


def layered(n: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    graph: dict[str, list[str]] = {}
    layer: list[str] = []
    previous: list[str] = []
    for i in range(n):
        name = f"t{i:04d}"
        graph[name] = sorted(rng.sample(previous, k=min(len(previous), rng.randint(1, 3)))) if previous else []
        layer.append(name)
        if len(layer) >= rng.randint(5, 20):
            previous, layer = layer, []
    return graph


def pipeline_yaml(name: str, graph: dict[str, list[str]]) -> str:
    tasks = [{"name": t, "command": "true", **({"dependencies": deps} if deps else {})} for t, deps in graph.items()]
    return yaml.safe_dump({"version": "26.4.4", "name": name, "tasks": tasks}, sort_keys=False)


def makefile(graph: dict[str, list[str]]) -> str:
    lines = [f".PHONY: all {' '.join(graph)}", f"all: {' '.join(graph)}"]
    lines += [f"{t}: {' '.join(deps)}\n\t@true" for t, deps in graph.items()]
    return "\n".join(lines) + "\n"


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}"
        )
    return elapsed


def median_of(runs: int, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    return statistics.median(timed(cmd, cwd, env) for _ in range(runs))


def gaps_ms(state: Path) -> list[float]:
    """For each task of the last chain job: its start minus its dependency's end, in ms (the store's clock)."""
    with sqlite3.connect(state / "state.db") as db:
        job = db.execute("SELECT id FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()[0]
        rows = db.execute(
            "SELECT task, started_at, ended_at FROM attempts WHERE job_id = ? ORDER BY task", (job,)
        ).fetchall()
    return [(rows[i][1] - rows[i - 1][2]) * 1000 for i in range(1, len(rows))]


def environ(sandbox: bool) -> dict[str, str]:
    import os

    return {**os.environ, "FTG_BWRAP": "1" if sandbox else "0"}


def shapes(args: argparse.Namespace, ours: str, make: str, tmp: Path) -> None:
    sandbox = [True, False] if shutil.which("bwrap") else [False]
    print(f"{'DAG':<9} {'sandbox':<8} {'ours':>7} {'make -j2':>9} {'ratio':>6} {'ms/task':>8}")
    for name, graph in (("chain", chain(args.tasks)), ("fan", fan(args.tasks)), ("layered", layered(args.tasks))):
        folder = tmp / name
        folder.mkdir()
        (folder / "pipeline.yaml").write_text(pipeline_yaml(name, graph))
        (folder / "Makefile").write_text(makefile(graph))
        theirs = median_of(args.runs, [make, "-j2", "-s"], folder)
        for on in sandbox:
            state = tmp / f"state-{name}-{on}"
            cmd = [ours, "run", "pipeline.yaml", "--max-parallel", "2", "--state-dir", str(state)]
            mine = median_of(args.runs, cmd, folder, environ(on))
            label = "on" if on else "off"
            print(
                f"{name:<9} {label:<8} {mine:>6.2f}s {theirs:>8.2f}s {mine / theirs:>5.1f}x {mine / args.tasks * 1e3:>7.2f}"
            )
            if name == "chain":
                gaps = sorted(gaps_ms(state))
                p90 = gaps[int(len(gaps) * 0.9)]
                print(
                    f"{'':<9} {'':<8} critical path: end -> dependant's start median {statistics.median(gaps):.2f} ms, "
                    f"p90 {p90:.2f} ms"
                )
    print(f"(medians of {args.runs} runs; whole processes; target <= 3x make -j2, moonshot 2x; critical path <= 1 ms)")


def startup(args: argparse.Namespace, ours: str, tmp: Path) -> None:
    one = tmp / "one"
    one.mkdir()
    (one / "pipeline.yaml").write_text(pipeline_yaml("one", chain(1)))
    runs = max(args.runs, 11)
    python = median_of(runs, [sys.executable, "-c", "pass"], one)
    state = str(tmp / "state-one")
    print(f"\n{'start-up':<24} {'median':>8} {'vs python -c pass':>18}")
    print(f"{'python -c pass':<24} {python * 1e3:>6.1f}ms {1:>17.1f}x")
    for label, cmd in (
        ("--version", [ours, "--version"]),
        ("run --help", [ours, "run", "--help"]),
        ("validate", [ours, "validate", "pipeline.yaml"]),
        ("run (1 task)", [ours, "run", "pipeline.yaml", "--state-dir", state]),
    ):
        t = median_of(runs, cmd, one)
        print(f"{label:<24} {t * 1e3:>6.1f}ms {t / python:>17.1f}x")
    print("(targets: --version <= 1.5x python -c pass; a 1-task run <= 150 ms)")


def memory(args: argparse.Namespace, ours: str, tmp: Path) -> None:
    big = tmp / "big"
    big.mkdir()
    (big / "pipeline.yaml").write_text(pipeline_yaml("big", layered(args.rss_tasks)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cmd = [ours, "run", "pipeline.yaml", "--max-parallel", "2", "--state-dir", str(tmp / "state-big")]
    elapsed = timed(cmd, big, environ(False))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux: the largest child so far
    note = "" if peak > before else " (no larger than an earlier child: a lower bound)"
    print(
        f"\nmemory: run of {args.rss_tasks} tasks peaked at {peak / 1024:.0f} MB RSS in {elapsed:.1f}s{note} "
        "(target <= 80 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rss-tasks", type=int, default=1000)
    args = parser.parse_args()
    ours = str(Path(sys.executable).with_name("fasttrack-gitops"))
    make = shutil.which("make") or sys.exit("make is not installed")
    compileall.compile_dir(PROJECT / "fasttrack_gitops", quiet=1)  # what a wheel's installation leaves
    with tempfile.TemporaryDirectory() as tmp:
        memory(args, ours, Path(tmp))  # first: RUSAGE_CHILDREN's peak then is this run's alone
        shapes(args, ours, make, Path(tmp))
        startup(args, ours, Path(tmp))


if __name__ == "__main__":
    main()
