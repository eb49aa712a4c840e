"""report: render input 1's comparison.json as a markdown report.

Writes report.md to the outputs folder and prints it, so it also shows up in
the task's log.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def output_dir() -> Path:
    """The pipeline data folder this task writes to (/pipeline/outputs on FastTrack)."""
    path = Path(os.environ.get("PIPELINE_OUTPUT_ROOT", "/pipeline/outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def input_dir(k: int) -> Path:
    """Outputs of the k-th task in `dependencies` (k from 1), i.e. /pipeline/input{k}."""
    fallback = os.environ.get("PIPELINE_INPUT_ROOT") if k == 1 else None
    return Path(os.environ.get(f"PIPELINE_INPUT{k}") or fallback or f"/pipeline/input{k}")


def render(comparison: dict) -> str:
    metric, winner = comparison["metric"], comparison["winner"]
    lines = [
        "# Model comparison",
        "",
        f"**Winner: `{winner}`** by {metric}, margin {comparison['margin']:+.4f}.",
        "",
        "| model | accuracy | f1 | precision | recall | log loss | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in comparison["candidates"]:
        name = f"**{c['model']}**" if c["model"] == winner else c["model"]
        lines.append(f"| {name} | {c['accuracy']:.4f} | {c['f1']:.4f} | {c['precision']:.4f} | "
                     f"{c['recall']:.4f} | {c['log_loss']:.4f} | {c['train_seconds']:.3f} |")
    first = comparison["candidates"][0]
    lines += ["", f"Test set: {first['n_test']} rows; training set: {first['n_train']} rows."]
    return "\n".join(lines) + "\n"


def main() -> int:
    path = input_dir(1) / "comparison.json"
    if not path.is_file():
        sys.exit(f"report: missing input {path} (does this task depend on compare?)")
    comparison = json.loads(path.read_text())
    print(f"read {path}")
    text = render(comparison)
    out = output_dir() / "report.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
