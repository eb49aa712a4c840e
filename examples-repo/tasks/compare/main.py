"""compare: pick the better of two trained models.

Reads metrics.json (and model.json) from input 1 and input 2, in the order of
this task's `dependencies`, picks the best by --metric (ties go to f1, then to
the earlier input), and writes comparison.json, best_metrics.json and
best_model.json to the outputs folder, plus what the check run shows: the
winner's numbers as results.json (the pipeline declares them as metrics,
with a gate) and plots/accuracy.svg, a bar chart drawn without a plotting
library.
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
    results = {key: best[key] for key in ("accuracy", "f1", "precision", "recall", "log_loss") if key in best}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "plots").mkdir(exist_ok=True)
    (out / "plots" / "accuracy.svg").write_text(bar_chart(args.metric, candidates, best))
    print(f"winner: {best['model']} by {args.metric} (margin {comparison['margin']})")
    print(f"wrote {out / 'comparison.json'}, {out / 'best_metrics.json'}"
          + (f", {out / 'best_model.json'}" if model.is_file() else ""))
    return 0


def bar_chart(metric: str, candidates: list[dict], best: dict) -> str:
    """An SVG bar per candidate model, the winner highlighted: small enough to read in a pull request."""
    width, bar, gap, top = 320, 48, 40, 30
    height = top + 150 + 30
    bars = []
    for i, c in enumerate(candidates):
        value = float(c[metric])
        h = max(1, round(150 * value))
        x = gap + i * (bar + gap)
        colour = "#2da44e" if c is best else "#8c959f"
        bars.append(
            f'<rect x="{x}" y="{top + 150 - h}" width="{bar}" height="{h}" fill="{colour}"/>'
            f'<text x="{x + bar / 2}" y="{top + 150 - h - 6}" text-anchor="middle" font-size="12">{value:.3f}</text>'
            f'<text x="{x + bar / 2}" y="{top + 168}" text-anchor="middle" font-size="12">{c["model"]}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<text x="{gap}" y="18" font-size="14">test {metric} by model</text>{"".join(bars)}</svg>\n'
    )


if __name__ == "__main__":
    raise SystemExit(main())
