"""Cache keys and output manifests: what can change a task's outputs, and what its outputs were. Pure.

A task's cache key is the sha256 of its *ingredients*, everything that can
change its outputs (README, "Caching", lists them for users):

- the task's name: a dependant reads its input at the dependency's path in
  the job that made it, so outputs made under another name are not its own;
- the spec fields that matter: image, command, type, cluster mode and size,
  mounts, the service spec, the task's envs and the pipeline's envs as
  written: a secret is `${{ secrets.NAME }}` there, so it enters by name,
  never by value (a rotated token does not re-run a training);
- the git tree id of its `code:` folder;
- the blob id of every repository file its `cache.paths` globs match;
- the pipeline's params;
- for each dependency, in input order, the digest of that dependency's
  *outputs* (not its key): an upstream task that re-runs and writes
  byte-identical outputs leaves its dependants' keys unchanged (early cutoff).

Resources, timeouts, retries and descriptions are left out: they change how
a task runs, not what it writes.

An output manifest lists a finished task's outputs, one line per regular
file, `<sha256> <size> <path>`, sorted by path (bytes order): the local
executor hashes the files itself, a Backend.AI session writes the same lines
with `sha256sum` (executors/backendai/layout.py). Its digest, the sha256 of
its canonical text, is the dependency digest above.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fasttrack_gitops.core.pipeline.model import Pipeline, Task

KEY_VERSION = 2  # bump when the ingredients change meaning: every earlier key then misses
SHORT = 7  # characters of a digest shown to people


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the outputs folder, '/'-separated
    size: int
    sha256: str


class ManifestError(ValueError):
    """A manifest's text does not parse, or outputs that cannot be cached (the message says which file)."""


def manifest_text(files: Iterable[OutputFile]) -> str:
    """The canonical text of a manifest: `<sha256> <size> <path>` lines, sorted by path."""
    ordered = sorted(files, key=lambda f: f.path.encode())
    return "".join(f"{f.sha256} {f.size} {f.path}\n" for f in ordered)


def parse_manifest(text: str, *, what: str = "manifest") -> tuple[OutputFile, ...]:
    """The files a manifest lists; ManifestError naming the line when it does not parse."""
    files: list[OutputFile] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        digest, _, rest = line.partition(" ")
        size, _, path = rest.partition(" ")
        if len(digest) != 64 or not _is_hex(digest) or not size.isdigit() or not path:
            raise ManifestError(f"{what}, line {number}: expected '<sha256> <size> <path>', found {line[:80]!r}")
        if path.startswith("/") or ".." in path.split("/") or path in seen:
            raise ManifestError(f"{what}, line {number}: path {path!r} is absolute, leaves the folder or repeats")
        seen.add(path)
        files.append(OutputFile(path, int(size), digest))
    return tuple(sorted(files, key=lambda f: f.path.encode()))


def outputs_digest(files: Iterable[OutputFile]) -> str:
    """The digest of a task's outputs: what its dependants' keys are made of."""
    return hashlib.sha256(manifest_text(files).encode()).hexdigest()


EMPTY_OUTPUTS = outputs_digest(())  # a skipped dependency's outputs: an empty folder


def ingredients(
    pipeline: Pipeline,
    task: Task,
    *,
    code_tree: str,
    paths: Mapping[str, str],
    inputs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """Everything that can change the task's outputs (plain JSON); `paths`: repository path -> blob id,
    `inputs`: (dependency, outputs digest) in input order."""
    return {
        "version": KEY_VERSION,
        "task": task.name,
        "image": task.image,
        "command": task.command,
        "type": task.type,
        "cluster": [task.cluster_mode, task.cluster_size],
        "mounts": [str(m) for m in task.mounts],
        "service": _plain(task.service),
        "envs": dict(task.envs),
        "pipeline_envs": dict(pipeline.envs),
        "code": {"path": task.code or ".", "tree": code_tree},
        "paths": dict(sorted(paths.items())),
        "params": [[p.name, p.value] for p in pipeline.params],  # the values the job runs with
        "inputs": [[name, digest] for name, digest in inputs],
    }


def cache_key(parts: Mapping[str, Any]) -> str:
    """The sha256 of the ingredients' canonical JSON."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two tasks' ingredients, in plain words: ["code of tasks/train changed (3f2a1c → 9b0e44)"]."""
    if old.get("version") != new.get("version"):
        return ["the cache key format changed (a new fasttrack-gitops)"]
    found: list[str] = []
    for field, words in _FIELDS:
        if old.get(field) != new.get(field):
            found.append(f"{words} changed")
    old_code, new_code = old.get("code") or {}, new.get("code") or {}
    if old_code.get("path") != new_code.get("path"):
        found.append(f"code folder changed ({old_code.get('path')} → {new_code.get('path')})")
    elif old_code.get("tree") != new_code.get("tree"):
        found.append(
            f"code of {new_code.get('path')} changed ({short(old_code.get('tree'))} → {short(new_code.get('tree'))})"
        )
    found += _env_changes("env", old.get("envs") or {}, new.get("envs") or {})
    found += _env_changes("pipeline env", old.get("pipeline_envs") or {}, new.get("pipeline_envs") or {})
    old_paths, new_paths = old.get("paths") or {}, new.get("paths") or {}
    for path in sorted(old_paths.keys() | new_paths.keys()):
        if path not in old_paths:
            found.append(f"{path} added")
        elif path not in new_paths:
            found.append(f"{path} removed")
        elif old_paths[path] != new_paths[path]:
            found.append(f"{path} changed ({short(old_paths[path])} → {short(new_paths[path])})")
    old_inputs = dict(old.get("inputs") or ())
    new_inputs = new.get("inputs") or ()
    if [n for n, _ in old.get("inputs") or ()] != [n for n, _ in new_inputs]:
        found.append("dependencies changed")
    else:
        found += [f"outputs of input '{name}' changed" for name, digest in new_inputs if old_inputs[name] != digest]
    return found


_FIELDS = (
    ("task", "task name"),
    ("image", "image"),
    ("command", "command"),
    ("type", "task type"),
    ("cluster", "cluster mode or size"),
    ("mounts", "mounts"),
    ("service", "service spec"),
    ("params", "pipeline params"),
)


def _env_changes(what: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return [f"{what} {name} changed" for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]


def short(digest: str | None) -> str:
    return (digest or "none")[:SHORT]


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _plain(value: Any) -> Any:
    """JSON-safe and order-independent for mappings (the service spec, params)."""
    result: Any = json.loads(json.dumps(value, sort_keys=True, default=str))
    return result
