"""How fast `validate` is, against check-jsonschema on the same schema and files, measured in one run.

    pip install -e '.[bench]' && python bench/validate_bench.py [--runs N]

Targets (issue 2): `validate examples-repo/` as a whole process <= 0.3 s; a
generated 1,000-task pipeline <= 0.5 s. Prints medians of N runs and the
ratio to check-jsonschema (lower is better for us; check-jsonschema checks
the schema only, we also check the DAG and the rest). Then, in this process:
check_pipeline of the generated pipeline, of a 1,000-task chain (the deepest
DAG), and of a billion-laughs alias bomb, which is refused before expanding.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import pipeline  # noqa: E402


def tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if not which:
        sys.exit(f"{name} is not installed; run: pip install -e '.[bench]'")
    return which


def wall(cmd: list[str], runs: int, expect: int = 0) -> float:
    """Median wall-clock seconds of a whole process (one warm-up run first)."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=PROJECT, capture_output=True)
        elapsed = time.perf_counter() - start
        if done.returncode != expect:
            sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout.decode()}{done.stderr.decode()}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def in_process(raw: bytes, runs: int, refused_with: str | None = None) -> float:
    """Median seconds of check_pipeline in this process; the file must pass, or be refused with that one code."""
    from fasttrack_gitops.core.pipeline import check_pipeline

    check_pipeline(raw, "generated.yaml")  # warm caches (schema validators)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = check_pipeline(raw, "generated.yaml")
        times.append(time.perf_counter() - start)
        if refused_with is None:
            assert result.ok, result.diagnostics[:3]
        else:
            assert [d.code for d in result.diagnostics] == [refused_with], result.diagnostics[:3]
    return statistics.median(times)


def chain(tasks: int) -> bytes:
    """A pipeline whose tasks each depend on the one before: the deepest DAG of its size."""
    steps = [{"name": f"t{i}", "command": "x", **({"dependencies": [f"t{i - 1}"]} if i else {})} for i in range(tasks)]
    return yaml.safe_dump({"version": "26.4.4", "name": "chain", "tasks": steps}).encode()


def billion_laughs() -> bytes:
    """Nine levels of nine aliases each: 9**9 nodes if expanded; the loader counts them and refuses (FT008)."""
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, prev in zip("bcdefghi", "abcdefgh"):
        lines.append(f"x-{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ('version: "1"\nname: bomb\n' + "\n".join(lines) + "\ntasks:\n  - name: a\n    command: x\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()

    ours = tool("fasttrack-gitops")
    reference = tool("check-jsonschema")
    schema = str(PROJECT / "schemas" / "pipeline.schema.json")
    example_files = sorted(str(p) for p in (PROJECT / "examples-repo" / "pipelines").glob("*.yaml"))

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "generated.yaml"
        big.write_text(yaml.safe_dump(pipeline(args.tasks), sort_keys=False))
        size_kib = big.stat().st_size / 1024

        rows = [
            (
                "validate examples-repo/",
                wall([ours, "validate", "examples-repo"], args.runs),
                wall([reference, "--schemafile", schema, *example_files], args.runs),
                0.3,
            ),
            (
                f"validate {args.tasks}-task pipeline ({size_kib:.0f} KiB)",
                wall([ours, "validate", str(big)], args.runs),
                wall([reference, "--schemafile", schema, str(big)], args.runs),
                0.5,
            ),
        ]
        inproc = [
            (f"{args.tasks} tasks", in_process(big.read_bytes(), args.runs)),
            (f"{args.tasks}-task chain", in_process(chain(args.tasks), args.runs)),
            ("alias bomb refused", in_process(billion_laughs(), args.runs, refused_with="FT008")),
        ]

    print(f"{'case':<44} {'ours':>8} {'check-jsonschema':>17} {'ratio':>7} {'target':>8}")
    for name, mine, theirs, target in rows:
        verdict = "ok" if mine <= target else "OVER"
        print(
            f"{name:<44} {mine * 1000:>6.0f}ms {theirs * 1000:>15.0f}ms {mine / theirs:>6.2f}x "
            f"{target * 1000:>5.0f}ms {verdict}"
        )
    for name, seconds in inproc:
        print(f"{'check_pipeline in process, ' + name:<44} {seconds * 1000:>6.1f}ms")
    print(f"(median of {args.runs} runs each; whole processes include interpreter start-up)")


if __name__ == "__main__":
    main()
