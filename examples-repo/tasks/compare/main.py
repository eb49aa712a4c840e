"""compare: pick the better of two trained models.

Reads metrics.json (and model.json) from input 1 and input 2, in the order of
this task's `dependencies`, picks the best by --metric (ties go to f1, then to
the earlier input), and writes comparison.json, best_metrics.json and
best_model.json to the outputs folder.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

CANDIDATES = 2  # one per entry in `dependencies`


def output_dir() -> Path:
    """The pipeline data folder this task writes to (/pipeline/outputs on FastTrack)."""
    path = Path(os.environ.get("PIPELINE_OUTPUT_ROOT", "/pipeline/outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def input_dir(k: int) -> Path:
    """Outputs of the k-th task in `dependencies` (k from 1), i.e. /pipeline/input{k}."""
    fallback = os.environ.get("PIPELINE_INPUT_ROOT") if k == 1 else None
    return Path(os.environ.get(f"PIPELINE_INPUT{k}") or fallback or f"/pipeline/input{k}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metric", choices=["accuracy", "f1"], default="accuracy")
    args = parser.parse_args()

    candidates = []
    for k in range(1, CANDIDATES + 1):
        path = input_dir(k) / "metrics.json"
        if not path.is_file():
            sys.exit(f"compare: missing input {path} (dependency #{k} should be a train task)")
        metrics = json.loads(path.read_text())
        print(f"read {path}: {metrics['model']} {args.metric} {metrics[args.metric]}")
        candidates.append({"input": k, **metrics})

    # max() keeps the first of equal keys, so the earlier input wins a full tie.
    best = max(candidates, key=lambda c: (c[args.metric], c["f1"]))
    others = [c[args.metric] for c in candidates if c is not best]
    comparison = {
        "metric": args.metric,
        "winner": best["model"],
        "winner_input": best["input"],
        "margin": round(best[args.metric] - max(others), 4),
        "candidates": [
            {key: c.get(key) for key in ("input", "model", "accuracy", "f1", "precision", "recall",
                                         "log_loss", "train_seconds", "n_train", "n_test")}
            for c in candidates
        ],
    }

    print()
    print(f"{'model':<8} {'accuracy':>9} {'f1':>7} {'log_loss':>9} {'train_s':>8}")
    for c in candidates:
        mark = "  <- best" if c is best else ""
        print(f"{c['model']:<8} {c['accuracy']:>9.4f} {c['f1']:>7.4f} {c['log_loss']:>9.4f} "
              f"{c['train_seconds']:>8.3f}{mark}")
    print()

    out = output_dir()
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    shutil.copyfile(input_dir(best["input"]) / "metrics.json", out / "best_metrics.json")
    model = input_dir(best["input"]) / "model.json"
    if model.is_file():
        shutil.copyfile(model, out / "best_model.json")
    print(f"winner: {best['model']} by {args.metric} (margin {comparison['margin']})")
    print(f"wrote {out / 'comparison.json'}, {out / 'best_metrics.json'}"
          + (f", {out / 'best_model.json'}" if model.is_file() else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
