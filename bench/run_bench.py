"""Per-task orchestration overhead of the local executor, against `make -j2` on the same DAG, in one run.

    python bench/run_bench.py [--tasks 200] [--runs 3]

Three 200-task DAGs of trivial shell tasks (`true`): a chain, a fan
(1 -> 198 -> 1) and a random layered DAG. Each runs as a whole
`fasttrack-gitops run --max-parallel 2` process (start-up, validation, the
store, logs included) and as `make -j2` on a Makefile with the same edges.
Goal: ratio <= 2x. Prints the medians, the ratios and our milliseconds per task.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent


def chain(n: int) -> dict[str, list[str]]:
    return {f"t{i:03d}": ([f"t{i - 1:03d}"] if i else []) for i in range(n)}


def fan(n: int) -> dict[str, list[str]]:
    middle = [f"t{i:03d}" for i in range(1, n - 1)]
    return {"t000": [], **{m: ["t000"] for m in middle}, f"t{n - 1:03d}": middle}


def layered(n: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    graph: dict[str, list[str]] = {}
    layer: list[str] = []
    previous: list[str] = []
    for i in range(n):
        name = f"t{i:03d}"
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


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ours = str(Path(sys.executable).with_name("fasttrack-gitops"))
    make = shutil.which("make") or sys.exit("make is not installed")

    print(f"{'DAG':<10} {'ours':>8} {'make -j2':>9} {'ratio':>6} {'ms/task':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, graph in (("chain", chain(args.tasks)), ("fan", fan(args.tasks)), ("layered", layered(args.tasks))):
            folder = Path(tmp) / name
            folder.mkdir()
            (folder / "pipeline.yaml").write_text(pipeline_yaml(name, graph))
            (folder / "Makefile").write_text(makefile(graph))
            state = Path(tmp) / f"state-{name}"
            mine = statistics.median(
                timed([ours, "run", "pipeline.yaml", "--max-parallel", "2", "--state-dir", str(state)], folder)
                for _ in range(args.runs)
            )
            theirs = statistics.median(timed([make, "-j2", "-s"], folder) for _ in range(args.runs))
            print(f"{name:<10} {mine:>7.2f}s {theirs:>8.2f}s {mine / theirs:>5.1f}x {mine / args.tasks * 1000:>7.1f}")
    print(f"(median of {args.runs} runs; whole processes; goal <= 2x)")


if __name__ == "__main__":
    main()
