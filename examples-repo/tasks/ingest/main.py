"""ingest: land the raw orders table as raw.csv in the outputs folder.

With INGEST_SOURCE set (a local path or an http(s) URL) the CSV is fetched from
there; network fetches are why this task has `retry:` in the pipeline. Without
it, a deterministic synthetic table is generated from SEED, so the example runs
offline.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import os
import random
import sys
import urllib.request
from pathlib import Path

COLUMNS = ["order_id", "order_date", "region", "quantity", "unit_price", "discount"]
REGIONS = ["north", "south", "east", "west"]


def output_dir() -> Path:
    """The pipeline data folder this task writes to (/pipeline/outputs on FastTrack)."""
    path = Path(os.environ.get("PIPELINE_OUTPUT_ROOT", "/pipeline/outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch(source: str) -> str:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:
            return response.read().decode("utf-8")
    path = Path(source)
    if not path.is_file():
        sys.exit(f"ingest: INGEST_SOURCE {source} is not a file")
    return path.read_text()


def generate(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(1, rows + 1):
        discount = "" if rng.random() < 0.1 else round(rng.choice([0.0, 0.05, 0.1, 0.2]), 2)
        writer.writerow([
            i,
            (start + dt.timedelta(days=rng.randrange(366))).isoformat(),
            rng.choice(REGIONS),
            rng.randint(1, 20),
            round(rng.lognormvariate(3.0, 0.6), 2),
            discount,  # blank = no discount recorded
        ])
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500, help="rows to generate without INGEST_SOURCE")
    args = parser.parse_args()

    source = os.environ.get("INGEST_SOURCE", "")
    seed = int(os.environ.get("SEED", "42"))
    if source:
        text = fetch(source)
        print(f"read {source} ({len(text)} bytes)")
    else:
        text = generate(args.rows, seed)
        source = f"synthetic(seed={seed}, rows={args.rows})"
        print(f"generated {source}")

    out = output_dir()
    (out / "raw.csv").write_text(text)
    info = {
        "source": source,
        "rows": max(0, len(text.splitlines()) - 1),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    (out / "ingest.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out / 'raw.csv'} ({info['rows']} rows), {out / 'ingest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
