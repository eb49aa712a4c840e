"""The task cache: what a re-run executes and what it costs, locally and on the Backend.AI emulator; `plan` at scale.

    python bench/cache_bench.py [--tasks 50] [--plan-tasks 1000] [--skip-backendai] [--plan-only]

A git repository holds a `cache: true` pipeline of N tasks (a layered DAG, as
run_bench.py makes it); each task has its own code folder, copies its
value.txt and its inputs' outputs to its outputs and appends its name to runs.log, so "executed" is
what the processes did. Each step is a whole `fasttrack-gitops run` process:

1. cold: every task runs (the reference the others are a ratio of);
2. unchanged: targets 0 executed, <= 1 s wall;
3. one mid-DAG task's value.txt changed: exactly that task and its descendants run;
4. that task's code changed again with byte-identical outputs: only that task runs (early cutoff).

Then the unchanged re-run on the Backend.AI 23.09 emulator (tests/engine/backendai):
target 0 `POST /session`. Then `plan --format json` of a generated 1,000-task
pipeline: target <= 0.5 s for the whole process (the in-process time is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from benchlib import emulator_env, git

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "bench"))
from run_bench import layered  # noqa: E402

IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the emulator's (and the real stack's) image


def console() -> str:
    return str(Path(sys.executable).with_name("fasttrack-gitops"))


def pipeline(graph: dict[str, list[str]], runs: Path, *, image: bool = False) -> str:
    tasks = []
    for name, deps in graph.items():
        task = {
            "name": name,
            "code": f"tasks/{name}",
            # out.txt: its own value, then its inputs' out.txt: a change flows to every descendant
            "command": f'echo {name} >> "{runs}"; cat value.txt '
            + "".join(f'"$PIPELINE_INPUT{k}/out.txt" ' for k in range(1, len(deps) + 1))
            + '> "$PIPELINE_OUTPUT_ROOT/out.txt"',
            **({"dependencies": deps} if deps else {}),
        }
        if image:
            task["environment"] = {"image": IMAGE}
            task["resources"] = {"cpu": 0.1, "mem": "64m"}
        tasks.append(task)
    return yaml.safe_dump({"version": "26.4.4", "name": "bench", "cache": True, "tasks": tasks}, sort_keys=False)


def make_repo(root: Path, graph: dict[str, list[str]], runs: Path, *, image: bool = False) -> None:
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines/bench.yaml").write_text(pipeline(graph, runs, image=image))
    for name in graph:
        (root / "tasks" / name).mkdir(parents=True)
        (root / "tasks" / name / "value.txt").write_text(f"{name}\n")
    git(root, "init", "-q", "-b", "main")
    commit(root)


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bench")


def run(root: Path, state: Path, runs: Path, *extra: str, env: dict | None = None) -> tuple[float, list[str], dict]:
    """(wall seconds, tasks executed, the job record) of one `run` process."""
    runs.write_text("")
    started = time.perf_counter()
    done = subprocess.run(
        [console(), "run", str(root / "pipelines/bench.yaml"), "--state-dir", str(state), "--format", "json", *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, runs.read_text().split(), json.loads(done.stdout)


def descendants(graph: dict[str, list[str]], root: str) -> set[str]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for name, deps in graph.items():
            if name not in found and found.intersection(deps):
                found.add(name)
                changed = True
    return found


def local_steps(n: int, tmp: Path) -> None:
    graph = layered(n)
    runs, root, state = tmp / "runs.log", tmp / "repo", tmp / "state"
    make_repo(root, graph, runs)
    env = {**os.environ, "FTG_BWRAP": os.environ.get("FTG_BWRAP", "0")}
    middle = list(graph)[n // 2]
    expected = descendants(graph, middle)

    cold, executed, _ = run(root, state, runs, env=env)
    print(f"local, {n} tasks, cache: true")
    print(f"  1 cold run:                  {cold:6.2f} s   executed {len(executed):3d}   (reference)")
    assert len(executed) == n, executed

    warm, executed, record = run(root, state, runs, env=env)
    reused = sum(t["status"] == "reused" for t in record["tasks"])
    print(
        f"  2 unchanged:                 {warm:6.2f} s   executed {len(executed):3d}   reused {reused}   "
        f"{warm / cold:.2f}x of cold   (target: 0 executed, <= 1 s)"
    )

    (root / "tasks" / middle / "value.txt").write_text(f"{middle} changed\n")
    commit(root)
    wall, executed, _ = run(root, state, runs, env=env)
    exact = set(executed) == expected
    print(
        f"  3 {middle} changed:             {wall:6.2f} s   executed {len(executed):3d}   "
        f"= {middle} and its {len(expected) - 1} descendants: {exact}"
    )

    (root / "tasks" / middle / "NOTES.md").write_text("a note that changes the code tree, not the outputs\n")
    commit(root)
    wall, executed, _ = run(root, state, runs, env=env)
    print(
        f"  4 {middle} code, same output:   {wall:6.2f} s   executed {len(executed):3d}   "
        f"only {middle} (early cutoff): {executed == [middle]}"
    )


def backendai_steps(n: int, tmp: Path) -> None:
    sys.path.insert(0, str(PROJECT / "tests"))
    from engine.backendai.emulator import Emulator
    from engine.backendai.emulator_sessions import install as install_sessions
    from engine.backendai.emulator_vfolders import install as install_vfolders

    graph = layered(n)
    runs, root, state = tmp / "runs-bai.log", tmp / "repo-bai", tmp / "state-bai"
    make_repo(root, graph, runs, image=True)
    # A keypair's rate_limit is the admin's to set (scripts/realstack sets 1,000,000 per 900 s); the emulator's
    # default of 1,000 is a test's, too few for two runs of 50 tasks.
    with Emulator(rate_limit=30_000) as emu:
        install_sessions(emu, step=0.01)
        with install_vfolders(emu):
            env = emulator_env(emu)
            cold, executed, _ = run(root, state, runs, "--executor", "backendai", env=env)
            created, cold_requests = sum(r.method == "POST" for r in emu.requests_to("/session")), len(emu.requests)
            warm, executed_again, record = run(root, state, runs, "--executor", "backendai", env=env)
            again = sum(r.method == "POST" for r in emu.requests_to("/session")) - created
            warm_requests = len(emu.requests) - cold_requests
    reused = sum(t["status"] == "reused" for t in record["tasks"])
    print(f"Backend.AI 23.09 emulator, {n} tasks")
    print(f"  1 cold run:   {cold:6.2f} s   POST /session {created:3d}   API requests {cold_requests:5d}")
    print(
        f"  2 unchanged:  {warm:6.2f} s   POST /session {again:3d}   API requests {warm_requests:5d}   "
        f"reused {reused}   {warm / cold:.2f}x of cold   (target: 0 sessions)"
    )


def plan_steps(n: int, tmp: Path) -> None:
    """`plan --format json` of an n-task pipeline before any run: the whole process, best of 5 after one
    warm-up (which writes the bytecode a real install ships; PYTHONDONTWRITEBYTECODE is dropped for it)."""
    graph = layered(n)
    root = tmp / "repo-plan"
    make_repo(root, graph, tmp / "unused.log")
    state = tmp / "state-plan"
    argv = ["plan", str(root / "pipelines/bench.yaml"), "--state-dir", str(state), "--format", "json"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    walls = []
    for _ in range(6):
        started = time.perf_counter()
        done = subprocess.run([console(), *argv], capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"plan failed ({done.returncode}): {done.stderr[-2000:]}")
    planned = json.loads(done.stdout)
    assert len(planned["tasks"]) == n and planned["counts"]["run"] == n, planned["counts"]
    # In-process: what plan itself costs after Python and the package have started.
    sys.path.insert(0, str(PROJECT))
    from fasttrack_gitops.cli import main

    best = float("inf")
    for _ in range(3):
        sink = open(os.devnull, "w")  # noqa: SIM115 - closed below; keeps the table out of the figures
        saved, sys.stdout = sys.stdout, sink
        try:
            started = time.perf_counter()
            main(argv)
            best = min(best, time.perf_counter() - started)
        finally:
            sys.stdout = saved
            sink.close()
    process = min(walls[1:])
    print(
        f"plan, {n} tasks: {process:.3f} s as a process (best of 5; median {sorted(walls[1:])[2]:.3f} s; "
        f"target <= 0.5 s: {'met' if process <= 0.5 else 'MISSED'}), {best:.3f} s in-process; "
        f"{len(planned['tasks'])} tasks planned"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--plan-tasks", type=int, default=1000)
    parser.add_argument("--skip-backendai", action="store_true")
    parser.add_argument("--plan-only", action="store_true", help="only `plan` at --plan-tasks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftg-cache-bench-") as tmp:
        if args.plan_only:
            plan_steps(args.plan_tasks, Path(tmp))
            return
        local_steps(args.tasks, Path(tmp))
        if not args.skip_backendai:
            backendai_steps(args.tasks, Path(tmp))
        plan_steps(args.plan_tasks, Path(tmp))


if __name__ == "__main__":
    main()
