"""The critical path on Backend.AI: from a session's terminal event to POST /session of its dependant.

    python bench/critical_path_bench.py [--tasks 20] [--runs 1]

A chain of `--tasks` tasks runs as a whole `fasttrack-gitops run --executor
backendai` process against the Backend.AI 23.09 emulator (tests/engine/backendai),
twice: every task sharing one code folder, and every task with a code folder
of its own (a tree each to upload). The emulator timestamps what it streams
and what it receives; for each task after the first the figure is the time
from its dependency's terminal event (`session_terminated`: a session has
ended when the stream says so and GraphQL agrees, executors/backendai/watch.py)
to the POST /session that creates its own session. Target: median <= 50 ms,
and no worse with a code folder per task (the upload of a tree happens before
its session is needed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from benchlib import emulator_env, git

PROJECT = Path(__file__).resolve().parent.parent
IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the emulator's (and the real stack's) image
TERMINAL = "session_terminated"


def make_repo(root: Path, tasks: int, *, own_code: bool) -> None:
    chain = []
    for i in range(tasks):
        code = f"tasks/t{i:02d}" if own_code else "tasks/shared"
        (root / code).mkdir(parents=True, exist_ok=True)
        (root / code / "main.sh").write_text(f"echo step {i}\n")
        task = {"name": f"t{i:02d}", "command": "sh main.sh", "code": code, "environment": {"image": IMAGE}}
        task["resources"] = {"cpu": 1, "mem": "256m"}
        if i:
            task["dependencies"] = [f"t{i - 1:02d}"]
        chain.append(task)
    (root / "pipelines").mkdir(parents=True)
    text = yaml.safe_dump({"version": "26.4.4", "name": "chain", "tasks": chain}, sort_keys=False)
    (root / "pipelines" / "chain.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "chain")


def session_name(body: bytes) -> str:
    data = json.loads(body)
    return data.get("sessionName") or data.get("name") or data.get("clientSessionToken") or ""


def task_of(name: str, tasks: int) -> str | None:
    """Which task a session name belongs to (ftg-<job>-<task>-<attempt>-<digest>)."""
    return next((f"t{i:02d}" for i in range(tasks) if f"-t{i:02d}-" in name), None)


def one_run(root: Path, state: Path, tasks: int) -> tuple[list[float], float]:
    """(ms from each dependency's terminal event to its dependant's POST /session, wall seconds)."""
    from engine.backendai.emulator import Emulator
    from engine.backendai.emulator_sessions import install as install_sessions
    from engine.backendai.emulator_vfolders import install as install_vfolders

    with Emulator(rate_limit=100_000) as emu:
        sessions = install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            env = emulator_env(emu)
            command = [
                str(Path(sys.executable).with_name("fasttrack-gitops")),
                *("run", "pipelines/chain.yaml", "--executor", "backendai", "--state-dir", str(state)),
                *("--format", "json"),
            ]
            import time

            start = time.perf_counter()
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0 or json.loads(done.stdout)["status"] != "succeeded":
                sys.exit(f"the job failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            created = {
                task_of(session_name(r.body), tasks): r.at
                for r in emu.requests
                if r.method == "POST" and r.target.split("?")[0] in ("/session", "/session/_/create")
            }
            ended = {task_of(name, tasks): at for at, event, name in sessions.published if event == TERMINAL}
    gaps = [(created[f"t{i:02d}"] - ended[f"t{i - 1:02d}"]) * 1000 for i in range(1, tasks)]
    return gaps, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT / "tests"))
    print(f"a chain of {args.tasks} tasks on the Backend.AI 23.09 emulator")
    print(f"{'code folders':<22} {'median':>8} {'p90':>8} {'max':>8} {'wall':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for own_code, label in ((False, "one, shared"), (True, "one per task")):
            root = Path(tmp) / f"repo-{own_code}"
            make_repo(root, args.tasks, own_code=own_code)
            gaps: list[float] = []
            walls = []
            for i in range(args.runs):
                found, wall = one_run(root, Path(tmp) / f"state-{own_code}-{i}", args.tasks)
                gaps += found
                walls.append(wall)
            gaps.sort()
            p90 = gaps[int(len(gaps) * 0.9)]
            print(
                f"{label:<22} {statistics.median(gaps):>6.1f}ms {p90:>6.1f}ms {gaps[-1]:>6.1f}ms "
                f"{statistics.median(walls):>6.2f}s"
            )
    print(f"(terminal event `{TERMINAL}` -> the dependant's POST /session; target: median <= 50 ms)")


if __name__ == "__main__":
    main()
