"""prepare-data: generate a small synthetic binary-classification data set.

Writes train.csv, test.csv and meta.json to the task's outputs folder. The
data depend only on SEED and the arguments, so the task can be cached.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
from pathlib import Path

FEATURES = ["x1", "x2", "x3", "x4"]


def output_dir() -> Path:
    """The pipeline data folder this task writes to (/pipeline/outputs on FastTrack)."""
    path = Path(os.environ.get("PIPELINE_OUTPUT_ROOT", "/pipeline/outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_rows(n: int, noise: float, flip: float, rng: random.Random) -> list[list[float]]:
    """x4 is pure noise; the curved x1**2 term is what a linear model cannot fit."""
    rows = []
    for _ in range(n):
        x = [rng.gauss(0.0, 1.0) for _ in FEATURES]
        logit = 1.5 * x[0] - 1.5 * x[1] + 0.5 * x[2] + 1.5 * (x[0] * x[0] - 1.0)
        label = int(logit + rng.gauss(0.0, noise) > 0)
        if rng.random() < flip:
            label = 1 - label
        rows.append([round(v, 4) for v in x] + [label])
    return rows


def write_csv(path: Path, rows: list[list[float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FEATURES + ["label"])
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--noise", type=float, default=0.8, help="std of the noise added to the logit")
    parser.add_argument("--flip", type=float, default=0.03, help="fraction of labels flipped at random")
    args = parser.parse_args()

    seed = int(os.environ.get("SEED", "42"))
    test_fraction = float(os.environ.get("TEST_FRACTION", "0.2"))
    rng = random.Random(seed)
    rows = make_rows(args.rows, args.noise, args.flip, rng)
    rng.shuffle(rows)
    n_test = math.ceil(len(rows) * test_fraction)
    test, train = rows[:n_test], rows[n_test:]

    out = output_dir()
    write_csv(out / "train.csv", train)
    write_csv(out / "test.csv", test)
    meta = {
        "seed": seed,
        "rows": len(rows),
        "features": FEATURES,
        "target": "label",
        "n_train": len(train),
        "n_test": len(test),
        "positive_rate": round(sum(r[-1] for r in rows) / len(rows), 4),
        "noise": args.noise,
        "flip": args.flip,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / 'meta.json'}: {json.dumps(meta)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
