"""check-schema: validate input 1's raw.csv against schema.json (in this folder).

Checks the header (every column present, none unexpected) and every value
(type, nulls, range, allowed values). On success it passes the data on as
data.csv with schema_report.json; on failure it prints the first errors to
stderr and exits 1, which stops the downstream tasks.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

PARSERS = {"int": int, "float": float, "str": str, "date": dt.date.fromisoformat}
EXPECTED = {"int": "an integer", "float": "a number", "str": "text", "date": "a date (YYYY-MM-DD)"}


def output_dir() -> Path:
    """The pipeline data folder this task writes to (/pipeline/outputs on FastTrack)."""
    path = Path(os.environ.get("PIPELINE_OUTPUT_ROOT", "/pipeline/outputs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def input_dir(k: int) -> Path:
    """Outputs of the k-th task in `dependencies` (k from 1), i.e. /pipeline/input{k}."""
    fallback = os.environ.get("PIPELINE_INPUT_ROOT") if k == 1 else None
    return Path(os.environ.get(f"PIPELINE_INPUT{k}") or fallback or f"/pipeline/input{k}")


def check_value(column: dict, raw: str) -> str | None:
    """Return an error message, or None if the value is valid."""
    if raw == "":
        return None if column["nullable"] else "is empty but the column is not nullable"
    try:
        value = PARSERS[column["type"]](raw)
    except ValueError:
        return f"{raw!r} is not {EXPECTED[column['type']]}"
    if "min" in column and value < column["min"]:
        return f"{raw} is below the minimum {column['min']}"
    if "max" in column and value > column["max"]:
        return f"{raw} is above the maximum {column['max']}"
    if "allowed" in column and value not in column["allowed"]:
        return f"{raw!r} is not one of {column['allowed']}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", default="schema.json", help="relative to the task's code folder")
    parser.add_argument("--max-errors", type=int, default=20, help="errors to print before giving up")
    args = parser.parse_args()

    schema = json.loads(Path(args.schema).read_text())
    columns = {c["name"]: c for c in schema["columns"]}
    data = input_dir(1) / "raw.csv"
    if not data.is_file():
        sys.exit(f"check-schema: missing input {data} (does this task depend on ingest?)")
    print(f"read {args.schema} ({len(columns)} columns), checking {data}")

    errors: list[str] = []
    with data.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        unexpected = [c for c in header if c not in columns]
        if missing:
            errors.append(f"header: missing column(s) {missing}")
        if unexpected:
            errors.append(f"header: unexpected column(s) {unexpected}")
        rows = 0
        for line, row in enumerate(reader, start=2):
            rows += 1
            for name, column in columns.items():
                if name in header and (problem := check_value(column, row[name] or "")):
                    errors.append(f"line {line}, {name}: {problem}")
            if len(errors) >= args.max_errors:
                break

    if errors:
        print(f"check-schema: {data} does not match {args.schema}:", file=sys.stderr)
        for error in errors[: args.max_errors]:
            print(f"  {error}", file=sys.stderr)
        if len(errors) >= args.max_errors:
            print(f"  (stopped after {args.max_errors} errors)", file=sys.stderr)
        return 1

    out = output_dir()
    shutil.copyfile(data, out / "data.csv")
    report = {"valid": True, "rows": rows, "columns": {n: c["type"] for n, c in columns.items()}}
    (out / "schema_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"ok: {rows} rows, {len(columns)} columns match the schema")
    print(f"wrote {out / 'data.csv'}, {out / 'schema_report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
