"""Export and import for the FastTrack GUI: the git and file work around core/pipeline/fasttrack_export.py.

`export_at` reads a pipeline file at a revision (as `run` would), checks
it, and writes it in FastTrack's shape; with a ship folder, every task's
`code:` tree is written there by its tree id, ready to upload into the
pipeline data folder. `import_file` reads a GUI export and writes the
repository pipeline file, refusing to overwrite one unless asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors
from fasttrack_gitops.core.pipeline.fasttrack_export import (
    NotAnExport,
    export,
    from_export,
    secret_literals,
    to_yaml,
)
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.plan import NotInSnapshot, check_at, code_trees_at

FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Exported:
    diagnostics: list[Diagnostic]  # the check's findings; the text is empty when one is an error
    text: str = ""
    shipped: dict[str, str] = field(default_factory=dict)  # task -> the code tree its command enters
    commit: str | None = None


def export_at(
    folder: Path,
    path: str,
    *,
    rev: str | None = None,
    target_version: str | None = None,
    ship_to: Path | None = None,
    limits: Limits = Limits(),
) -> Exported:
    """The pipeline file at `path` of the repository at `folder`, at rev (default HEAD), as a FastTrack export."""
    snap = gitrepo.open_snapshot(folder, rev or "HEAD")
    checked = check_at(snap, path, limits=limits)
    if checked is None:
        raise NotInSnapshot(f"{path} is not a file in {folder} at {rev or 'HEAD'}", snap)
    pipeline = checked.pipeline
    if pipeline is None:
        return Exported(checked.diagnostics, commit=snap.commit)
    trees = code_trees_at(snap, pipeline) if ship_to is not None else {}
    data = export(pipeline, target_version=target_version, code_trees=trees)
    for tree in sorted(set(trees.values())):
        assert ship_to is not None
        gitrepo.materialise(snap, tree, ship_to / tree)
    return Exported(checked.diagnostics, to_yaml(data), trees, snap.commit)


@dataclass(frozen=True)
class Imported:
    path: Path  # the pipeline file written
    secrets: list[str]  # the secret-looking literals replaced by references (names and places, no values)
    diagnostics: list[Diagnostic]  # the written file's check (warnings only: an error writes nothing)


def import_file(
    source: Path, *, into: Path, name: str | None = None, force: bool = False, limits: Limits = Limits()
) -> Imported:
    """A FastTrack export as `pipelines/<name>.yaml` under `into`; UsageError when it is not one or cannot be."""
    shown = str(source)
    try:
        raw = source.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {shown}: {e.strerror or e}") from None
    if len(raw) > limits.max_bytes:
        raise NotAnExport(f"{shown} is larger than {limits.max_bytes} bytes; is it a pipeline export?")
    doc, found = load(raw, shown, limits)
    if doc is None:
        first = found[0] if found else None
        where = f" (line {first.line}: {first.message})" if first else ""
        raise NotAnExport(f"{shown} is not a FastTrack pipeline export{where}")
    data = from_export(doc.data, file=shown)
    if name is not None:
        data["name"] = name
    data, replaced = secret_literals(data)
    stem = name or str(data["name"])
    if not FILE_NAME.fullmatch(stem):
        raise UsageError(
            f"the pipeline name {stem!r} does not make a file name; give one with --name (letters, digits, '.', '_', '-')"
        )
    text = to_yaml(data)
    target = into / "pipelines" / f"{stem}.yaml"
    result = check_pipeline(text.encode(), str(target.relative_to(into)), limits=limits)
    if has_errors(result.diagnostics):
        listed = "; ".join(f"line {d.line}: {d.code} {d.message}" for d in result.diagnostics if d.is_error)
        raise NotAnExport(f"{shown} is not a pipeline fasttrack-gitops can run: {listed}")
    if target.exists() and not force:
        raise UsageError(f"{target} exists; give another --name, or --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return Imported(target, replaced, result.diagnostics)
