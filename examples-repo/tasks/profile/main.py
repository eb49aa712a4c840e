"""profile: summary statistics of input 1's validated data.csv.

Uses the column types from input 1's schema_report.json and writes
profile.json: per column the count and missing values, plus min/max/mean/std
and quartiles for numbers, or distinct values and the most common ones for
text and dates.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import sys
from collections import Counter
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


def profile_column(kind: str, values: list[str]) -> dict:
    present = [v for v in values if v != ""]
    stats: dict = {"type": kind, "count": len(present), "missing": len(values) - len(present)}
    if kind in ("int", "float") and present:
        nums = [(int if kind == "int" else float)(v) for v in present]
        q1, median, q3 = statistics.quantiles(nums, n=4) if len(nums) > 1 else (nums[0],) * 3
        stats.update(min=min(nums), max=max(nums), mean=round(statistics.fmean(nums), 4),
                     std=round(statistics.pstdev(nums), 4), p25=q1, p50=median, p75=q3)
    elif present:
        counts = Counter(present)
        stats.update(distinct=len(counts), top=dict(counts.most_common(5)),
                     min=min(present), max=max(present))
    return stats


def main() -> int:
    data, report = input_dir(1) / "data.csv", input_dir(1) / "schema_report.json"
    for path in (data, report):
        if not path.is_file():
            sys.exit(f"profile: missing input {path} (does this task depend on check-schema?)")
    types = json.loads(report.read_text())["columns"]
    with data.open(newline="") as f:
        rows = list(csv.DictReader(f))
    print(f"read {data} ({len(rows)} rows), {report}")

    profile = {
        "rows": len(rows),
        "columns": {name: profile_column(kind, [r[name] for r in rows]) for name, kind in types.items()},
    }
    for name, stats in profile["columns"].items():
        extra = (f"mean {stats['mean']}, range [{stats['min']}, {stats['max']}]" if "mean" in stats
                 else f"{stats.get('distinct', 0)} distinct")
        print(f"  {name:<12} {stats['type']:<6} missing {stats['missing']:>4}  {extra}")
    out = output_dir() / "profile.json"
    out.write_text(json.dumps(profile, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
