"""Snapshotting a folder as git trees: a work tree on top of HEAD, or a folder in no repository."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal, overload

from dulwich.ignore import IgnoreFilterManager
from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import Blob, ShaFile, Tree
from dulwich.repo import Repo

from fasttrack_gitops.engine.gitrepo.model import GitAccessError, GitUsageError, Snapshot
from fasttrack_gitops.engine.gitrepo.objects import (
    _EMPTY_TREE,
    _EXECUTABLE,
    _FILE,
    _GITLINK,
    _SYMLINK,
    _TREE,
    _add_loose_object,
    _Objects,
    _prefix_tree,
    _writing_to,
)


def _worktree_snapshot(
    repo: Repo, top: Path, prefix: str, rev: str | None, store: DiskObjectStore | Path | None
) -> Snapshot:
    """The work tree under prefix as it stands, on top of HEAD; new objects go to store."""
    if repo.bare:
        raise GitUsageError(
            f"{top} is a bare repository: it has no work tree to snapshot; leave out the "
            "worktree option, or give a clone with a work tree"
        )
    if rev not in (None, "HEAD"):
        raise GitUsageError(f"the work tree is snapshotted on top of HEAD; it cannot be combined with revision '{rev}'")
    chain, head = repo.refs.follow(b"HEAD")
    ref = chain[-1].decode() if len(chain) > 1 else "HEAD"
    head_tree = _prefix_tree(repo.object_store, repo[head].tree, prefix) if head else None
    index, index_mtime_ns = _read_index(repo)
    with _writing_to(store) as (disk, where):
        walker = _FolderSnapshot(
            top, IgnoreFilterManager.from_repo(repo), [repo.object_store], disk, index, index_mtime_ns
        )
        tree = walker.tree(prefix, keep_empty=True)
    return Snapshot(
        "worktree",
        top,
        prefix,
        head.decode() if head else None,
        ref,
        tree.decode(),
        tree != (head_tree or _EMPTY_TREE),
        where,
    )


def _read_index(repo: Repo) -> tuple[dict, int]:
    """The index's entries by path (None for a conflicted path) and the index file's mtime in ns."""
    from dulwich.errors import NoIndexPresent

    try:
        index = repo.open_index()
        mtime_ns = os.stat(repo.index_path()).st_mtime_ns
    except (NoIndexPresent, FileNotFoundError):
        return {}, 0
    return {path: entry if hasattr(entry, "sha") else None for path, entry in index.items()}, mtime_ns


def _mtime_ns(value: int | float | tuple[int, int]) -> int:
    """An index entry's time in nanoseconds (dulwich gives (sec, nsec), or a number)."""
    if isinstance(value, tuple):
        return value[0] * 1_000_000_000 + value[1]
    return int(value * 1_000_000_000)


class _FolderSnapshot:
    """A folder's files written as git objects, as `git add -A && git write-tree` would, without touching git.

    Tracked files are taken whatever .gitignore says; untracked ones unless
    ignored. A tracked file whose size and mtime match the index (and is
    older than the index) keeps its index blob id unread, as git does.
    """

    def __init__(
        self,
        top: Path,
        ignores: IgnoreFilterManager,
        known: list[BaseObjectStore],
        store: DiskObjectStore,
        index: dict | None = None,
        index_mtime_ns: int = 0,
    ) -> None:
        self.top = top
        self.ignores = ignores
        self.known = _Objects(known)  # stores that hold objects already: not written again
        self.store = store
        self.index = index or {}
        self.index_mtime_ns = index_mtime_ns
        self.tracked_dirs: set[bytes] = set()
        for path in self.index:
            while b"/" in path:
                path = path.rsplit(b"/", 1)[0]
                if path in self.tracked_dirs:
                    break
                self.tracked_dirs.add(path)

    @overload
    def tree(self, rel: str, keep_empty: Literal[True]) -> bytes: ...
    @overload
    def tree(self, rel: str, keep_empty: bool = False) -> bytes | None: ...
    def tree(self, rel: str, keep_empty: bool = False) -> bytes | None:
        """The tree id of the folder rel (posix, under top); None for a folder with nothing to keep."""
        tree = Tree()
        with os.scandir(self.top / rel if rel else self.top) as entries:
            for entry in entries:
                if entry.name == ".git":
                    continue
                path = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    self._add(tree, entry, path)
                except FileNotFoundError:
                    pass  # deleted while we looked
                except OSError as e:
                    raise GitAccessError(f"cannot snapshot {self.top / path}: {e.strerror or e}") from e
        if not len(tree) and not keep_empty:
            return None
        self._write(tree)
        return tree.id

    def _add(self, tree: Tree, entry: os.DirEntry, path: str) -> None:
        """Add the folder entry at path to tree, when git would."""
        key, name = os.fsencode(path), os.fsencode(entry.name)
        tracked = key in self.index
        if entry.is_symlink():
            if tracked or not self._ignored(path):
                tree.add(name, _SYMLINK, self._write(Blob.from_string(os.fsencode(os.readlink(entry.path)))))
        elif entry.is_dir(follow_symlinks=False):
            if tracked and getattr(self.index[key], "mode", None) == _GITLINK:
                tree.add(name, _GITLINK, self.index[key].sha)
            elif os.path.lexists(os.path.join(entry.path, ".git")):
                pass  # a repository of its own that is no submodule: git leaves it out too
            elif key in self.tracked_dirs or not self._ignored(path + "/"):
                sub = self.tree(path)
                if sub is not None:
                    tree.add(name, _TREE, sub)
        elif entry.is_file(follow_symlinks=False):
            if not tracked and self._ignored(path):
                return
            info = entry.stat(follow_symlinks=False)
            mode = _EXECUTABLE if info.st_mode & stat.S_IXUSR else _FILE
            known = self.index.get(key)
            if (
                known is not None
                and known.mode == mode
                and known.size == info.st_size & 0xFFFFFFFF
                and _mtime_ns(known.mtime) == info.st_mtime_ns < self.index_mtime_ns
            ):
                tree.add(name, mode, known.sha)
                return
            with open(entry.path, "rb") as f:
                tree.add(name, mode, self._write(Blob.from_string(f.read())))
        # else a FIFO, socket or device: git does not store those

    def _ignored(self, path: str) -> bool:
        """Whether .gitignore (and info/exclude, core.excludesFile) leaves the untracked path out."""
        return self.ignores.is_ignored(path) is True

    def _write(self, obj: ShaFile) -> bytes:
        """Store obj unless the repository has it already; its id."""
        sha = obj.id
        if sha not in self.known:
            _add_loose_object(self.store.path, obj)
        return sha
