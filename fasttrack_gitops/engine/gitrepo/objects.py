"""Objects in git stores: opening repositories, reading trees and blobs, writing trees out and objects in.

Internal to gitrepo: the public questions are asked through gitrepo's functions.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from dulwich.errors import NotGitRepository
from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import Blob, ShaFile, Tree
from dulwich.repo import Repo

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.engine.gitrepo.model import GitAccessError, GitError, GitUsageError, Snapshot, repository_label

_MAX_SYMLINK_HOPS = 40  # as Linux's path resolution
_TREE, _FILE, _EXECUTABLE, _SYMLINK, _GITLINK = 0o040000, 0o100644, 0o100755, 0o120000, 0o160000
_EMPTY_TREE = Tree().id
_HEX = re.compile(r"[0-9a-fA-F]+\Z")


def object_store(folder: Path) -> DiskObjectStore:
    """The snapshot store in folder (a bare git object store), created when missing."""
    folder = Path(folder)
    try:
        for sub in ("info", "pack"):  # what DiskObjectStore.init makes, but safe to repeat and to race
            (folder / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GitAccessError(f"cannot create the snapshot store {folder}: {e.strerror or e}") from e
    return DiskObjectStore(str(folder))


@contextmanager
def _git_errors(what: str) -> Iterator[None]:
    """Turn whatever dulwich or the file system raises while reading into a GitAccessError saying what failed."""
    try:
        yield
    except (GitError, FastTrackError):
        raise
    except KeyError as e:
        name = e.args[0] if e.args else "?"
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        raise GitAccessError(
            f"{what}: object {name} is missing (a shallow or partial clone? fetch the full history)"
        ) from e
    except (OSError, ValueError, AssertionError, EOFError, zlib.error) as e:
        raise GitAccessError(f"{what}: {getattr(e, 'strerror', None) or e}") from e
    except Exception as e:
        if type(e).__module__.startswith("dulwich"):
            raise GitAccessError(f"{what}: {type(e).__name__}: {e}") from e
        raise


# Repositories `held_open()` holds in this thread: `repos` (path -> (Repo, its stamp)) during a block, None
# outside one; `kept`, what a keep=True block left open for the next; `checked`, the paths whose stamp this
# block compared already. Per thread: a dulwich Repo reads its packs through shared file handles.
_held = threading.local()
_KEPT = 8  # repositories a thread keeps open between held_open(keep=True) blocks (the least recently used go)


@contextmanager
def held_open(*, keep: bool = False) -> Iterator[None]:
    """Within the block, a repository this thread opens stays open and is reused, then closed at its end.

    Opening one (its config, its pack indexes) costs more than most questions
    asked of it; a flow that asks several (a push: is the commit there, its
    pipelines, the files it changed) opens it once. Nested blocks share the outer one.
    With keep=True (a worker thread that lives as long as the daemon), they stay
    open for this thread's next such block, until their folder is replaced or a
    pack comes or goes (a fetch, a gc): then they are opened anew. Loose objects
    and refs are read from the disk at each question, open or not.
    """
    if getattr(_held, "repos", None) is not None:
        yield
        return
    _held.repos, _held.checked = (getattr(_held, "kept", None) or {}) if keep else {}, set()
    _held.answers = {}
    try:
        yield
    finally:
        repos, _held.repos, _held.answers = _held.repos, None, None
        if keep:
            while len(repos) > _KEPT:
                repos.pop(next(iter(repos)))[0].close()
            _held.kept = repos
        else:
            for repo, _ in repos.values():
                repo.close()


def held_answers() -> dict | None:
    """Answers about the file system remembered for the current held_open() block (None outside one): the block
    is one flow's questions, so a folder's layout does not change under it as far as they are concerned."""
    return getattr(_held, "answers", None)


def _without_absent_midx(repo: Repo) -> None:
    """dulwich looks for a multi-pack-index before every object it reads while there is none (a stat each): in a
    burst of pushes a fifth of the git threads' samples, each a GIL hand-over (bench/burst_bench.py, py-spy). With
    none in the pack folder now, the store is told not to look; one written later (git maintenance) changes the
    pack folder, so a repository held open is opened anew (_stamp) and looks again."""
    store = repo.object_store
    if getattr(store, "_use_midx", False) and not os.path.exists(os.path.join(store.path, "pack", "multi-pack-index")):
        store._use_midx = False


def _stamp(repo: Repo) -> tuple[int, ...]:
    """What differs once a kept repository must be opened anew: its folder replaced, a pack added or removed."""
    try:
        folder, packs = os.stat(repo.controldir()), os.stat(os.path.join(repo.object_store.path, "pack"))
    except OSError:
        return ()
    return folder.st_dev, folder.st_ino, packs.st_ino, packs.st_mtime_ns


def _opened(top: Path) -> Repo:
    """The dulwich Repo at top, opened now or reused within held_open(); GitError when it is none."""
    held = getattr(_held, "repos", None)
    path = str(top)
    if held is not None and path in held:
        repo, stamp = held.pop(path)
        if path in _held.checked or _stamp(repo) == stamp:
            held[path] = (repo, stamp)  # the most recently used last
            _held.checked.add(path)
            return repo
        repo.close()
    try:
        repo = Repo(path)
    except NotGitRepository as e:
        raise GitUsageError(f"{top} is not a git repository") from e
    except Exception as e:
        raise GitAccessError(f"cannot open the git repository {top}: {e}") from e
    _without_absent_midx(repo)
    if held is not None:
        held[path] = (repo, _stamp(repo))
        _held.checked.add(path)
    return repo


@contextmanager
def _open_repo(top: Path) -> Iterator[Repo]:
    """The dulwich Repo at top, closed afterwards (unless held_open() holds it)."""
    repo = _opened(top)
    try:
        yield repo
    finally:
        if getattr(_held, "repos", None) is None:
            repo.close()


class _Objects:
    """The objects a snapshot can see: the repository's store first, then the snapshot store."""

    def __init__(
        self, stores: list[BaseObjectStore] | None = None, opener: Callable[[], list[BaseObjectStore]] | None = None
    ) -> None:
        """`stores` as given, or opened by `opener` when first read: a question the parsed trees (`_tree`)
        answer opens no repository."""
        self._stores = stores
        self._opener = opener

    @property
    def stores(self) -> list[BaseObjectStore]:
        if self._stores is None:
            assert self._opener is not None
            self._stores = self._opener()
        return self._stores

    def __getitem__(self, sha: bytes) -> ShaFile:
        for store in self.stores:
            try:
                return store[sha]
            except KeyError:
                pass
        raise KeyError(sha)

    def get_raw(self, sha: bytes) -> tuple[int, bytes]:
        for store in self.stores:
            try:
                return store.get_raw(sha)
            except KeyError:
                pass
        raise KeyError(sha)

    def __contains__(self, sha: bytes) -> bool:
        return any(sha in store for store in self.stores)


@contextmanager
def _reading(snap: Snapshot) -> Iterator[_Objects]:
    """The objects of a snapshot, open for the duration; read errors become GitAccessError."""
    with _objects_of(snap) as objects, _git_errors(f"cannot read {repository_label(snap)} at {snap.tree[:12]}"):
        yield objects


@contextmanager
def _objects_of(source: Snapshot | BaseObjectStore) -> Iterator[_Objects]:
    """The objects behind a snapshot (its repository, then its store) or a store as given."""
    if not isinstance(source, Snapshot):
        yield _Objects([source])
        return
    opened: list[Repo | DiskObjectStore] = []

    def open_stores() -> list[BaseObjectStore]:
        repo = store = None
        try:
            if source.kind != "unversioned":
                repo = _opened(source.repo_root)
                if getattr(_held, "repos", None) is None:
                    opened.append(repo)
            if source.store is not None:
                store = DiskObjectStore(str(source.store))
                opened.append(store)
        except Exception as e:
            raise GitAccessError(f"cannot open {source.repo_root} (moved or deleted since the snapshot?): {e}") from e
        return ([repo.object_store] if repo is not None else []) + ([store] if store is not None else [])

    try:
        yield _Objects(opener=open_stores)
    finally:
        for each in reversed(opened):
            each.close()


@contextmanager
def _writing_to(store: DiskObjectStore | Path | None) -> Iterator[tuple[DiskObjectStore, Path]]:
    """The snapshot store to write new objects to, and its folder; write errors become GitAccessError."""
    if store is None:
        raise TypeError("a worktree or unversioned snapshot needs store=object_store(folder)")
    disk = store if isinstance(store, DiskObjectStore) else object_store(Path(store))
    with _git_errors(f"cannot write the snapshot to {disk.path}"):
        yield disk, Path(disk.path)
    if disk is not store:
        disk.close()


# --- reading trees -------------------------------------------------------------------------------


def _object_id(sha: str) -> bytes:
    """A hex object id as dulwich takes it, or a GitUsageError for anything else."""
    if not isinstance(sha, str) or len(sha) not in (40, 64) or not _HEX.match(sha):
        raise GitUsageError(f"'{sha}' is not a tree id (40 hex digits)")
    return sha.lower().encode()


# Parsed trees by id, for the process: a tree's id is its content, so an entry is never stale. Looking up the
# code: folders of N tasks that share a parent folder reads that parent N times (check, then freeze): parsed
# once instead, a 1,000-task pipeline plans in a tenth of the time. Nothing mutates a tree read here.
_TREES: dict[bytes, Tree] = {}
_TREES_MAX = 1024  # a daemon lives long: a bound, not a size any one plan needs (a few trees per commit)
_trees_lock = threading.Lock()


def _tree(objects: _Objects, sha: bytes) -> Tree:
    """The tree object sha names, or a GitError."""
    found = _TREES.get(sha)
    if found is not None:
        return found
    with _git_errors(f"cannot read tree {sha.decode()[:12]}"):
        obj = objects[sha]
    if not isinstance(obj, Tree):
        raise GitUsageError(f"{sha.decode()[:12]} is a {obj.type_name.decode()}, not a tree")
    with _trees_lock:
        if len(_TREES) >= _TREES_MAX:
            _TREES.clear()
        _TREES[sha] = obj
    return obj


def _blob(objects: _Objects, sha: bytes) -> bytes:
    """The content of the blob sha names."""
    type_num, data = objects.get_raw(sha)
    if type_num != Blob.type_num:
        raise GitAccessError(f"{sha.decode()[:12]} is not a file's content (a blob)")
    return data


def _prefix_tree(store: BaseObjectStore, root: bytes, prefix: str) -> bytes | None:
    """The tree id of the folder prefix inside root, symlinks not followed (as `git rev-parse REV:prefix`)."""
    sha = root
    for name in filter(None, prefix.split("/")):
        entries = store[sha]
        if not isinstance(entries, Tree) or os.fsencode(name) not in entries:
            return None
        mode, sha = entries[os.fsencode(name)]
        if not stat.S_ISDIR(mode):
            return None
    return sha


def _lookup(objects: _Objects, root: bytes, relpath: str) -> tuple[Literal["found", "missing", "escapes"], int, bytes]:
    """Resolve relpath inside the root tree as the OS resolves a path: ('found'|'missing'|'escapes', mode, sha).

    Symlinks are followed relative to their folder; `..` above the root,
    or an absolute target, escapes. Past a missing component the rest is
    taken literally (as os.path.realpath does), so `nope/../../x` escapes.
    """
    if relpath.startswith("/"):
        return "escapes", 0, b""
    todo = deque(os.fsencode(relpath).split(b"/"))
    trail: list[tuple[int, bytes]] = []  # (mode, sha) of each entry walked into below the root
    missing, hops = False, 0
    while todo:
        name = todo.popleft()
        if name in (b"", b"."):
            continue
        if name == b"..":
            if not trail:
                return "escapes", 0, b""
            trail.pop()
            continue
        entry = None
        if not missing:
            tree = _tree(objects, trail[-1][1] if trail else root)
            entry = tree[name] if name in tree else None  # noqa: SIM401 (a dulwich Tree has no get)
        if entry is None:
            missing = True
            trail.append((0, b""))
            continue
        mode, sha = entry
        if stat.S_ISLNK(mode):
            hops += 1
            if hops > _MAX_SYMLINK_HOPS:
                return "missing", 0, b""
            target = _blob(objects, sha)
            if target.startswith(b"/"):
                return "escapes", 0, b""
            todo.extendleft(reversed(target.split(b"/")))
            continue
        trail.append((mode, sha))
        if not stat.S_ISDIR(mode) and any(part not in (b"", b".") for part in todo):
            missing = True  # a path below a file
    if missing:
        return "missing", 0, b""
    return ("found", *trail[-1]) if trail else ("found", _TREE, root)


def _walk(objects: _Objects, sha: bytes, base: str) -> Iterator[tuple[str, int, bytes]]:
    """Every non-folder entry below the tree: (path under base, mode, sha); symlinks are not followed."""
    stack = [(sha, base)]
    while stack:
        sha, folder = stack.pop()
        for entry in _tree(objects, sha).iteritems():
            path = f"{folder}/{os.fsdecode(entry.path)}" if folder else os.fsdecode(entry.path)
            if stat.S_ISDIR(entry.mode):
                stack.append((entry.sha, path))
            else:
                yield path, entry.mode, entry.sha


def _write_tree(objects: _Objects, root: Tree, folder: bytes) -> None:
    """Write the tree's files below folder (which exists and is empty); submodules are skipped."""
    stack = [(root, folder)]
    while stack:
        tree, folder = stack.pop()
        for entry in tree.iteritems():
            name, mode = entry.path, entry.mode
            if name in (b"", b".", b"..") or b"/" in name or b"\0" in name or name.lower() == b".git":
                raise GitUsageError(
                    f"tree {tree.id.decode()[:12]} has an entry named {name!r}, which cannot be written safely"
                )
            path = folder + b"/" + name
            if stat.S_ISDIR(mode):
                os.mkdir(path)
                stack.append((_tree(objects, entry.sha), path))
            elif stat.S_ISLNK(mode):
                os.symlink(_blob(objects, entry.sha), path)
            elif stat.S_ISREG(mode):
                data = memoryview(_blob(objects, entry.sha))
                # O_EXCL: a malformed tree cannot make us write through a symlink it made first.
                fd = os.open(path, _CREATE, 0o755 if mode & stat.S_IXUSR else 0o644)
                try:
                    while data:
                        data = data[os.write(fd, data) :]
                finally:
                    os.close(fd)
            # else a submodule (gitlink): its content lives in another repository


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _add_loose_object(folder: str, obj: ShaFile) -> None:
    """Write obj into the object store folder as git does (zlib, objects/xx/yyyy), renamed into place.

    Written here rather than by dulwich's add_object, which fsyncs each
    object in some versions and takes a lock file another writer may hold.
    """
    hexsha = obj.id.decode()
    path = os.path.join(folder, hexsha[:2], hexsha[2:])
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(folder, hexsha[:2], f"tmp_obj_{os.getpid()}_{threading.get_ident()}")
    with open(tmp, "wb") as f:
        f.write(obj.as_legacy_object())
    os.replace(tmp, path)  # a racing writer wrote the same bytes
