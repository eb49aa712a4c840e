"""`jobs show --cache`: each task's cache key, what it was made of, and what the cache decided. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fasttrack_gitops.core.cache import short
from fasttrack_gitops.core.job import JobView


def cache_text(view: JobView, records: Mapping[str, Mapping[str, Any]]) -> str:
    """Per task: the decision, the key and the outputs' digest, then one line per ingredient."""
    lines = [f"job {view.job.id}: cache keys"]
    for name in view.tasks:
        record = records.get(name)
        if record is None:
            lines.append(f"\n{name}: no cache key (cache off for this task, or it did not get that far)")
            continue
        lines.append(f"\n{name}: {record['decision'] or 'undecided'}")
        lines.append(f"  key     {record['key'] or '-'}")
        lines.append(f"  outputs {record['digest'] or '-'}")
        lines += [f"  {line}" for line in ingredient_lines(record["ingredients"])]
    return "\n".join(lines) + "\n"


def ingredient_lines(ingredients: Mapping[str, Any]) -> list[str]:
    """The ingredients as 'name: value' lines a person can compare between two jobs."""
    out: list[str] = []
    for field, value in ingredients.items():
        if field == "code":
            out.append(f"code: {value.get('path')} @ tree {short(value.get('tree'))}")
        elif field == "inputs":
            out += [f"input {name}: outputs {short(digest)}" for name, digest in value] or ["inputs: none"]
        elif field == "paths":
            out += [f"path {path}: blob {short(blob)}" for path, blob in value.items()]
        elif field in ("envs", "pipeline_envs"):
            out += [f"{field[:-1].replace('_', ' ')} {k}={v}" for k, v in value.items()]
        else:
            out.append(f"{field}: {json.dumps(value, ensure_ascii=False)}")
    return out
