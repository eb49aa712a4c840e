"""A pipeline repository on disk: its root, its settings, its pipeline files, its code folders.

This is the file-system edge of validation; the git edge (trees at a
commit) answers the same questions for jobs. A repository is a folder whose
pipeline files live under `pipelines/` unless its `.fasttrack.yaml` says
otherwise; `code:` paths are relative to that folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from fasttrack_gitops.core.globs import matches, static_prefix
from fasttrack_gitops.core.pipeline import schema
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, diagnostic, has_errors
from fasttrack_gitops.core.pipeline.semantics import CodeDirState, CodeLookup
from fasttrack_gitops.core.pipeline.yamlsource import Limits, load, too_large

SETTINGS_FILE = ".fasttrack.yaml"
DEFAULT_PIPELINE_GLOBS = ("pipelines/**/*.yaml", "pipelines/**/*.yml")
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"}


@dataclass
class Repository:
    root: Path
    label: str  # how the user wrote the root; diagnostics show paths under it
    pipeline_globs: tuple[str, ...] = DEFAULT_PIPELINE_GLOBS
    diagnostics: list[Diagnostic] = field(default_factory=list)  # from .fasttrack.yaml

    def display(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return rel if self.label in ("", ".") else f"{self.label.rstrip('/')}/{rel}"

    def pipeline_files(self) -> list[Path]:
        """The files the pipeline globs select, sorted; only the globs' fixed folders are walked."""
        found: set[Path] = set()
        for prefix in sorted({static_prefix(g) for g in self.pipeline_globs if not g.startswith("!")}):
            top = self.root / prefix
            # os.walk does not follow symlinked folders, so nothing outside the root is listed.
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
                for name in filenames:
                    path = Path(dirpath) / name
                    if matches(path.relative_to(self.root).as_posix(), self.pipeline_globs):
                        found.add(path)
        return sorted(found)

    def code_lookup(self) -> CodeLookup:
        root = self.root.resolve()

        def lookup(relpath: str) -> CodeDirState:
            target = self.root / relpath
            try:
                resolved = target.resolve()  # follows symlinks; a loop raises
            except (OSError, RuntimeError):
                return "missing"
            if resolved != root and root not in resolved.parents:
                return "escapes"
            if not resolved.exists():
                return "missing"
            return "dir" if resolved.is_dir() else "not-a-dir"

        return lookup


def open_repository(root: Path, label: str, limits: Limits = Limits()) -> Repository:
    """The repository at root, with its .fasttrack.yaml applied when there is one."""
    repo = Repository(root=root, label=label)
    settings = root / SETTINGS_FILE
    if not settings.is_file():
        return repo
    shown = repo.display(settings)
    raw = read_bytes(settings, shown, limits)
    if isinstance(raw, Diagnostic):
        repo.diagnostics = [raw]
        return repo
    doc, found = load(raw, shown, limits)
    if doc is not None:
        found += schema.check(doc, "repository.schema.json", subject=SETTINGS_FILE)
    repo.diagnostics = found
    if doc is not None and not has_errors(found) and doc.data.get("pipelines"):
        repo.pipeline_globs = tuple(g.removeprefix("./") for g in doc.data["pipelines"])
    return repo


def find_root(file: Path) -> tuple[Path, str]:
    """The repository a lone pipeline file belongs to, and its label.

    The nearest folder above it with a .fasttrack.yaml or a .git (a
    monorepo's subfolder with its own settings is a repository of its own),
    else the file's own folder (a pipeline outside any repository).
    """
    start = file.resolve().parent
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).exists() or (folder / ".git").exists():
            return folder, _label(folder)
    return start, _label(start)


def _label(folder: Path) -> str:
    rel = os.path.relpath(folder)
    return "." if rel == "." else (folder.as_posix() if rel.startswith("..") else Path(rel).as_posix())


def read_bytes(path: Path, shown: str, limits: Limits) -> bytes | Diagnostic:
    """The file's bytes, or the diagnostic that says why they cannot be had.

    A file over the size limit is not read at all; a FIFO or device is not
    opened (reading one would block or never end).
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return diagnostic("FT001", "cannot read the file: not a regular file", shown, 1, 1)
        if info.st_size > limits.max_bytes:
            return too_large(info.st_size, limits, shown)
        with open(path, "rb") as f:
            return f.read(limits.max_bytes + 1)
    except OSError as e:
        return diagnostic("FT001", f"cannot read the file: {e.strerror or e}", shown, 1, 1)
