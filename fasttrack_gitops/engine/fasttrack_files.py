"""Export and import for the FastTrack GUI: the git and file work around core/pipeline/fasttrack_export.py.

`export_at` reads a pipeline file at a revision (as `run` would), checks
it, and writes it in FastTrack's shape; with a ship folder, every task's
`code:` tree is written there by its tree id, and `upload_code` puts those
trees into the pipeline's data folder on Backend.AI, as the Backend.AI
executor ships code (the upload, then its marker; a tree whose marker is
there already is skipped). `import_file` reads a GUI export and writes the
repository pipeline file, refusing to overwrite one unless asked.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors
from fasttrack_gitops.core.pipeline.fasttrack_export import (
    CODE_FOLDER,
    NotAnExport,
    export,
    from_export,
    secret_literals,
    to_yaml,
)
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.executors.backendai import layout
from fasttrack_gitops.engine.executors.backendai.uploads import executable_files
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


async def upload_code(client: Client, vfolder: str, ship_to: Path, trees: set[str]) -> list[str]:
    """Each shipped tree into the vfolder at CODE_FOLDER/<tree id> (its marker last); the trees uploaded now.

    UsageError when the vfolder does not exist: FastTrack makes a pipeline's
    data folder when the pipeline is created, so create it there first.
    """
    uploaded = []
    for tree in sorted(trees):
        where = f"{CODE_FOLDER}/{tree}"
        marker = f"{where}/{layout.CODE_MARKER}"
        try:
            if await vfolders.exists(client, vfolder, marker):
                continue
        except vfolders.NoSuchVFolderError:
            raise UsageError(
                f"there is no vfolder {vfolder!r}: create the pipeline in FastTrack first and give its data "
                "folder's name (FastTrack names it after the pipeline)"
            ) from None
        local = ship_to / tree
        executables = await asyncio.to_thread(executable_files, local)
        await vfolders.upload_tree(client, vfolder, where, local)
        await vfolders.upload(client, vfolder, marker, layout.code_marker(executables))
        uploaded.append(tree)
    return uploaded


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
