"""train: fit a binary classifier on input 1's train.csv, score it on test.csv.

One task folder, two pipeline tasks: `--model logreg` (logistic regression,
full-batch gradient descent) and `--model mlp` (one hidden tanh layer, SGD).
Pure Python on purpose, so the example runs anywhere in about a second.
Writes model.json and metrics.json to the outputs folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
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


def require(path: Path) -> Path:
    if not path.is_file():
        sys.exit(f"train: missing input {path} (does this task depend on prepare-data?)")
    return path


def read_csv(path: Path) -> tuple[list[list[float]], list[int]]:
    with require(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"train: {path} has no rows")
    features = [c for c in rows[0] if c != "label"]
    xs = [[float(r[c]) for c in features] for r in rows]
    ys = [int(r["label"]) for r in rows]
    print(f"read {path} ({len(rows)} rows, features {features})")
    return xs, ys


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def log_loss(ys: list[int], ps: list[float]) -> float:
    eps = 1e-12
    return -sum(y * math.log(p + eps) + (1 - y) * math.log(1 - p + eps) for y, p in zip(ys, ps)) / len(ys)


# --- logistic regression -----------------------------------------------------

def train_logreg(xs, ys, epochs: int, lr: float, log_every: int) -> dict:
    n, d = len(xs), len(xs[0])
    w, b = [0.0] * d, 0.0
    for epoch in range(1, epochs + 1):
        gw, gb = [0.0] * d, 0.0
        for x, y in zip(xs, ys):
            err = sigmoid(b + sum(wi * xi for wi, xi in zip(w, x))) - y
            gb += err
            for i in range(d):
                gw[i] += err * x[i]
        w = [wi - lr * g / n for wi, g in zip(w, gw)]
        b -= lr * gb / n
        if epoch % log_every == 0 or epoch == epochs:
            params = {"w": w, "b": b}
            print(f"epoch {epoch:4d}/{epochs}  loss {log_loss(ys, [predict_logreg(params, x) for x in xs]):.4f}", flush=True)
    return {"w": w, "b": b}


def predict_logreg(params: dict, x: list[float]) -> float:
    return sigmoid(params["b"] + sum(wi * xi for wi, xi in zip(params["w"], x)))


# --- one-hidden-layer MLP ----------------------------------------------------

def train_mlp(xs, ys, epochs: int, lr: float, hidden: int, log_every: int, rng: random.Random) -> dict:
    d = len(xs[0])
    w1 = [[rng.gauss(0.0, 1.0 / math.sqrt(d)) for _ in range(d)] for _ in range(hidden)]
    b1 = [0.0] * hidden
    w2 = [rng.gauss(0.0, 1.0 / math.sqrt(hidden)) for _ in range(hidden)]
    b2 = 0.0
    order = list(range(len(xs)))
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        for j in order:
            x, y = xs[j], ys[j]
            h = [math.tanh(bh + sum(wi * xi for wi, xi in zip(row, x))) for row, bh in zip(w1, b1)]
            err = sigmoid(b2 + sum(a * hi for a, hi in zip(w2, h))) - y
            for k in range(hidden):
                gh = err * w2[k] * (1.0 - h[k] * h[k])
                w2[k] -= lr * err * h[k]
                b1[k] -= lr * gh
                row = w1[k]
                for i in range(d):
                    row[i] -= lr * gh * x[i]
            b2 -= lr * err
        if epoch % log_every == 0 or epoch == epochs:
            params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
            print(f"epoch {epoch:4d}/{epochs}  loss {log_loss(ys, [predict_mlp(params, x) for x in xs]):.4f}", flush=True)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def predict_mlp(params: dict, x: list[float]) -> float:
    h = [math.tanh(bh + sum(wi * xi for wi, xi in zip(row, x))) for row, bh in zip(params["w1"], params["b1"])]
    return sigmoid(params["b2"] + sum(a * hi for a, hi in zip(params["w2"], h)))


# --- evaluation --------------------------------------------------------------

def scores(ys: list[int], ps: list[float]) -> dict:
    pred = [int(p >= 0.5) for p in ps]
    tp = sum(1 for y, p in zip(ys, pred) if y == p == 1)
    fp = sum(1 for y, p in zip(ys, pred) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(ys, pred) if y == 1 and p == 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round(sum(1 for y, p in zip(ys, pred) if y == p) / len(ys), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "log_loss": round(log_loss(ys, ps), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["logreg", "mlp"], required=True)
    parser.add_argument("--epochs", type=int, help="default: 200 (logreg), 40 (mlp)")
    parser.add_argument("--lr", type=float, help="default: 0.5 (logreg), 0.05 (mlp)")
    parser.add_argument("--hidden", type=int, default=8, help="hidden units (mlp)")
    args = parser.parse_args()

    data = input_dir(1)
    x_train, y_train = read_csv(data / "train.csv")
    x_test, y_test = read_csv(data / "test.csv")

    # Standardise with the training set's statistics; they are saved with the model.
    cols = list(zip(*x_train))
    mean = [sum(c) / len(c) for c in cols]
    std = [math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) or 1.0 for c, m in zip(cols, mean)]
    scale = lambda rows: [[(v - m) / s for v, m, s in zip(r, mean, std)] for r in rows]  # noqa: E731
    x_train, x_test = scale(x_train), scale(x_test)

    seed = int(os.environ.get("SEED", "42"))
    print(f"training {args.model} on {len(x_train)} rows (seed {seed})", flush=True)
    start = time.perf_counter()
    if args.model == "logreg":
        epochs, lr = args.epochs or 200, args.lr or 0.5
        params = train_logreg(x_train, y_train, epochs, lr, log_every=max(1, epochs // 5))
        predict = predict_logreg
        hyper = {"epochs": epochs, "lr": lr}
    else:
        epochs, lr = args.epochs or 40, args.lr or 0.05
        params = train_mlp(x_train, y_train, epochs, lr, args.hidden, max(1, epochs // 5), random.Random(seed))
        predict = predict_mlp
        hyper = {"epochs": epochs, "lr": lr, "hidden": args.hidden}
    train_seconds = time.perf_counter() - start

    metrics = {
        "model": args.model,
        **scores(y_test, [predict(params, x) for x in x_test]),
        "train_accuracy": scores(y_train, [predict(params, x) for x in x_train])["accuracy"],
        "train_seconds": round(train_seconds, 3),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "seed": seed,
        **hyper,
    }
    out = output_dir()
    model = {"model": args.model, "standardize": {"mean": mean, "std": std}, "params": params, **hyper}
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'model.json'}")
    print(f"wrote {out / 'metrics.json'}: accuracy {metrics['accuracy']}, f1 {metrics['f1']}, "
          f"{metrics['train_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
