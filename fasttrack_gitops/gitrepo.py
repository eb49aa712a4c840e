"""The git edge: a pipeline repository at a commit (or as its work tree stands), read without a checkout.

The twin of `workspace.py`: the same questions (which files are pipelines,
what does a file say, is a `code:` path a folder inside the repository),
answered from git trees instead of the file system. Every git question the
program asks is a named function here; dulwich answers them (no `git`
binary). A `Snapshot` names one content-addressed tree; a task's code ships
as a tree id and is written out once per id by `materialise`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
import zlib
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

from dulwich.errors import NotGitRepository
from dulwich.ignore import IgnoreFilterManager
from dulwich.object_store import BaseObjectStore, DiskObjectStore
from dulwich.objects import Blob, Commit, ShaFile, Tag, Tree
from dulwich.repo import Repo

from fasttrack_gitops.errors import FastTrackError
from fasttrack_gitops.globs import matches, static_prefix

ZERO_COMMIT = "0" * 40  # what push webhooks send as `before` for a new branch
_MAX_SYMLINK_HOPS = 40  # as Linux's path resolution
_TREE, _FILE, _EXECUTABLE, _SYMLINK, _GITLINK = 0o040000, 0o100644, 0o100755, 0o120000, 0o160000
_EMPTY_TREE = Tree().id
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_REV = re.compile(r"(?P<base>.*?)(?P<ops>(?:[~^][0-9]*)*)\Z", re.S)
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[/.-]|[/.]\Z|\.lock\Z|/\.")


class GitError(FastTrackError):
    """A git repository, revision or object that cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Snapshot:
    """A content-addressed tree the job runs from."""

    kind: str  # "commit" | "worktree" | "unversioned"
    repo_root: Path  # the git repository's top folder (work tree, or the bare repo); unversioned: the folder
    prefix: str  # the pipeline repository root inside the git repository ("" or "examples-repo"), posix
    commit: str | None  # the commit; for "worktree" the HEAD it started from (None in an empty repository)
    ref: str | None  # "refs/heads/main", "refs/tags/v1", "HEAD" (detached), or the revision as given
    tree: str  # tree id of the pipeline repository root at the snapshot
    dirty: bool  # kind == "worktree" and the work tree differs from HEAD
    store: Path | None = None  # the snapshot store holding a worktree/unversioned snapshot's new objects


def object_store(folder: Path) -> DiskObjectStore:
    """The snapshot store in folder (a bare git object store), created when missing."""
    folder = Path(folder)
    try:
        for sub in ("info", "pack"):  # what DiskObjectStore.init makes, but safe to repeat and to race
            (folder / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GitError(f"cannot create the snapshot store {folder}: {e.strerror or e}") from e
    return DiskObjectStore(str(folder))


def repository_of(path: Path) -> tuple[Path, str] | None:
    """The git repository holding the folder: its top folder and the folder's posix path inside it.

    A bare repository is its own top. None when no folder above has a `.git`.
    """
    start = Path(path).resolve()
    if (start / "HEAD").is_file() and (start / "objects").is_dir() and (start / "refs").is_dir():
        return start, ""
    for top in (start, *start.parents):
        if (top / ".git").exists():  # a folder, or a file pointing elsewhere (linked work trees, submodules)
            prefix = start.relative_to(top).as_posix()
            prefix = "" if prefix == "." else prefix
            if ".git" in prefix.split("/"):
                raise GitError(f"{start} is inside the .git folder of {top}; give the work tree's folder")
            return top, prefix
    return None


def open_snapshot(path: Path, rev: str | None = "HEAD", *, worktree: bool = False,
                  store: DiskObjectStore | Path | None = None) -> Snapshot:
    """The pipeline repository at path as of rev (or its work tree), as a Snapshot.

    path is a git work tree, a bare repository, a subfolder of a work tree
    (a monorepo's pipeline repository: `prefix`), or a folder in no git
    repository (snapshotted into store as kind "unversioned"). With
    worktree=True the work tree's files as they stand (tracked and untracked,
    .gitignore honoured) are snapshotted into store on top of HEAD.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise GitError(f"{folder} is not a folder")
    found = repository_of(folder)
    if found is None:
        if rev not in (None, "HEAD"):
            raise GitError(f"{folder} is not in a git repository, so revision '{rev}' cannot be read; "
                           "give a folder in a git clone, or leave the revision out")
        root = folder.resolve()
        with _writing_to(store) as (disk, where):
            tree = _FolderSnapshot(root, IgnoreFilterManager(str(root), [], False), [], disk).tree("")
        return Snapshot("unversioned", root, "", None, None, tree.decode(), False, where)
    top, prefix = found
    with _open_repo(top) as repo, _git_errors(f"cannot read the repository {top}"):
        if worktree:
            return _worktree_snapshot(repo, top, prefix, rev, store)
        rev = "HEAD" if rev is None else rev
        commit, ref = _resolve(repo, rev, top)
        tree = _prefix_tree(repo.object_store, repo[commit].tree, prefix)
        if tree is None:
            raise GitError(f"folder '{prefix}' is not in revision '{rev}' ({commit.decode()[:12]}) of "
                           f"{top}; commit it first, or snapshot the work tree")
        return Snapshot("commit", top, prefix, commit.decode(), ref, tree.decode(), False)


def resolve_revision(path: Path, rev: str = "HEAD") -> tuple[str, str]:
    """The commit id a revision names in the repository holding path, and the ref it was read through.

    The ref is the full ref name ("refs/heads/main"; HEAD gives the branch
    it points to, or "HEAD" when detached), or rev itself for a commit id or
    a revision with ~ or ^.
    """
    found = repository_of(Path(path))
    if found is None:
        raise GitError(f"{path} is not in a git repository, so revision '{rev}' cannot be read")
    with _open_repo(found[0]) as repo, _git_errors(f"cannot read the repository {found[0]}"):
        commit, ref = _resolve(repo, rev, found[0])
    return commit.decode(), ref


def read_file(snap: Snapshot, relpath: str, *, max_bytes: int | None = None) -> bytes | None:
    """The file's bytes at the snapshot (relpath under the pipeline repository root); None if absent or a folder.

    Symlinks inside the tree are followed; one leading out of it reads as
    absent. With max_bytes, at most max_bytes + 1 bytes come back, so a
    caller sees that the file is too large (as workspace.read_bytes does).
    """
    with _reading(snap) as objects:
        state, mode, sha = _lookup(objects, snap.tree.encode(), relpath)
        if state != "found" or not stat.S_ISREG(mode):
            return None
        data = _blob(objects, sha)
    return data if max_bytes is None else data[:max_bytes + 1]


def list_files(snap: Snapshot, patterns: Sequence[str]) -> list[str]:
    """The files the globs select at the snapshot, sorted; only the globs' fixed folders are walked.

    Paths are relative to the pipeline repository root. A symlink counts as
    a file when it leads to one inside the tree; symlinked folders and
    submodules are not entered (as os.walk does in workspace.py).
    """
    root = snap.tree.encode()
    found: set[str] = set()
    with _reading(snap) as objects:
        for prefix in sorted({static_prefix(p) for p in patterns if not p.startswith("!")}):
            state, mode, sha = _lookup(objects, root, prefix)
            if state != "found" or not stat.S_ISDIR(mode):
                continue
            for path, mode, _ in _walk(objects, sha, prefix):
                if stat.S_ISLNK(mode):
                    state, mode, _ = _lookup(objects, root, path)
                    if state != "found":
                        continue
                if stat.S_ISREG(mode) and matches(path, patterns):
                    found.add(path)
    return sorted(found)


def code_state(snap: Snapshot, relpath: str) -> str:
    """Whether a `code:` path is a folder at the snapshot: 'dir', 'missing', 'not-a-dir' or 'escapes'.

    Symlinks inside the tree are followed (at most 40 hops; a loop is
    'missing'); one whose target leads out of the pipeline repository root
    'escapes'. A submodule's content is not in the tree: 'missing'.
    """
    with _reading(snap) as objects:
        state, mode, _ = _lookup(objects, snap.tree.encode(), relpath)
    if state != "found":
        return state
    if stat.S_ISDIR(mode):
        return "dir"
    return "missing" if mode == _GITLINK else "not-a-dir"


def code_lookup(snap: Snapshot) -> Callable[[str], str]:
    """code_state bound to the snapshot: the CodeLookup the pipeline checks take (as Repository.code_lookup)."""
    return lambda relpath: code_state(snap, relpath)


def tree_id(snap: Snapshot, relpath: str) -> str | None:
    """The tree id of a folder at the snapshot ("" or "." is the root); None when it is no folder inside it."""
    if relpath in ("", "."):
        return snap.tree
    with _reading(snap) as objects:
        state, mode, sha = _lookup(objects, snap.tree.encode(), relpath)
    return sha.decode() if state == "found" and stat.S_ISDIR(mode) else None


def materialise(source: Snapshot | BaseObjectStore, tree: str, dest: Path) -> None:
    """Write the tree's files to dest, once: an existing dest is taken as that tree already (a cache by id).

    Executable bits are kept, symlinks recreated as symlinks, submodules
    skipped. The files are written beside dest and renamed into place, so
    dest is complete or absent, also when two processes race.
    """
    dest = Path(dest)
    if os.path.lexists(dest):
        return
    sha = _object_id(tree)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with _objects_of(source) as objects:
        root = _tree(objects, sha)
        try:
            with _git_errors(f"cannot write tree {tree[:12]} to {dest}"):
                dest.parent.mkdir(parents=True, exist_ok=True)
                if os.path.lexists(tmp):
                    shutil.rmtree(tmp)
                os.mkdir(tmp)
                _write_tree(objects, root, os.fsencode(tmp))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    try:
        os.rename(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.lexists(dest):  # else another process got there first, with the same content
            raise GitError(f"cannot write tree {tree[:12]} to {dest}: {e.strerror or e}") from e


def changed_paths(source: Snapshot | Path, old_commit: str | None, new_commit: str) -> set[str]:
    """The paths (relative to the git top) added, removed or modified from old_commit to new_commit.

    A rename is both paths. old_commit None (or all zeros, as push webhooks
    send for a new branch) means every path in new_commit. Either may be any
    revision resolve_revision reads.
    """
    if isinstance(source, Snapshot):
        if source.kind == "unversioned":
            raise GitError(f"{source.repo_root} is not in a git repository, so it has no commits to compare")
        top = source.repo_root
    else:
        found = repository_of(Path(source))
        if found is None:
            raise GitError(f"{source} is not in a git repository, so it has no commits to compare")
        top = found[0]
    from dulwich.diff_tree import tree_changes

    with _open_repo(top) as repo, _git_errors(f"cannot compare commits in {top}"):
        new_tree = repo[_resolve(repo, new_commit, top)[0]].tree
        old_tree = None
        if old_commit is not None and old_commit != ZERO_COMMIT:
            old_tree = repo[_resolve(repo, old_commit, top)[0]].tree
        paths: set[str] = set()
        for change in tree_changes(repo.object_store, old_tree, new_tree):
            for entry in (change.old, change.new):
                if entry is not None and entry.path is not None:
                    paths.add(os.fsdecode(entry.path))
    return paths


def repository_label(snap: Snapshot) -> str:
    """A display name for the snapshot's repository: the top folder's name, plus /prefix in a monorepo."""
    return f"{snap.repo_root.name}/{snap.prefix}" if snap.prefix else snap.repo_root.name


# --- opening repositories and stores -------------------------------------------------------------


@contextmanager
def _git_errors(what: str) -> Iterator[None]:
    """Turn whatever dulwich or the file system raises while reading into a GitError saying what failed."""
    try:
        yield
    except (GitError, FastTrackError):
        raise
    except KeyError as e:
        name = e.args[0] if e.args else "?"
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        raise GitError(f"{what}: object {name} is missing (a shallow or partial clone? "
                       "fetch the full history)") from e
    except (OSError, ValueError, AssertionError, EOFError, zlib.error) as e:
        raise GitError(f"{what}: {getattr(e, 'strerror', None) or e}") from e
    except Exception as e:
        if type(e).__module__.startswith("dulwich"):
            raise GitError(f"{what}: {type(e).__name__}: {e}") from e
        raise


@contextmanager
def _open_repo(top: Path) -> Iterator[Repo]:
    """The dulwich Repo at top, closed afterwards."""
    try:
        repo = Repo(str(top))
    except NotGitRepository as e:
        raise GitError(f"{top} is not a git repository") from e
    except Exception as e:
        raise GitError(f"cannot open the git repository {top}: {e}") from e
    try:
        yield repo
    finally:
        repo.close()


class _Objects:
    """The objects a snapshot can see: the repository's store first, then the snapshot store."""

    def __init__(self, stores: list[BaseObjectStore]) -> None:
        self.stores = stores

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
    """The objects of a snapshot, open for the duration; read errors become GitError."""
    with _objects_of(snap) as objects, _git_errors(f"cannot read {repository_label(snap)} at {snap.tree[:12]}"):
        yield objects


@contextmanager
def _objects_of(source: Snapshot | BaseObjectStore) -> Iterator[_Objects]:
    """The objects behind a snapshot (its repository, then its store) or a store as given."""
    if not isinstance(source, Snapshot):
        yield _Objects([source])
        return
    repo = store = None
    try:
        if source.kind != "unversioned":
            repo = Repo(str(source.repo_root))
        if source.store is not None:
            store = DiskObjectStore(str(source.store))
    except Exception as e:
        if repo is not None:
            repo.close()
        raise GitError(f"cannot open {source.repo_root} (moved or deleted since the snapshot?): {e}") from e
    try:
        yield _Objects(([repo.object_store] if repo is not None else []) + ([store] if store is not None else []))
    finally:
        if store is not None:
            store.close()
        if repo is not None:
            repo.close()


@contextmanager
def _writing_to(store: DiskObjectStore | Path | None) -> Iterator[tuple[DiskObjectStore, Path]]:
    """The snapshot store to write new objects to, and its folder; write errors become GitError."""
    if store is None:
        raise TypeError("a worktree or unversioned snapshot needs store=object_store(folder)")
    disk = store if isinstance(store, DiskObjectStore) else object_store(Path(store))
    with _git_errors(f"cannot write the snapshot to {disk.path}"):
        yield disk, Path(disk.path)
    if disk is not store:
        disk.close()


# --- reading trees -------------------------------------------------------------------------------


def _object_id(sha: str) -> bytes:
    """A hex object id as dulwich takes it, or a GitError for anything else."""
    if not isinstance(sha, str) or len(sha) not in (40, 64) or not _HEX.match(sha):
        raise GitError(f"'{sha}' is not a tree id (40 hex digits)")
    return sha.lower().encode()


def _tree(objects: _Objects, sha: bytes) -> Tree:
    """The tree object sha names, or a GitError."""
    with _git_errors(f"cannot read tree {sha.decode()[:12]}"):
        obj = objects[sha]
    if not isinstance(obj, Tree):
        raise GitError(f"{sha.decode()[:12]} is a {obj.type_name.decode()}, not a tree")
    return obj


def _blob(objects: _Objects, sha: bytes) -> bytes:
    """The content of the blob sha names."""
    type_num, data = objects.get_raw(sha)
    if type_num != Blob.type_num:
        raise GitError(f"{sha.decode()[:12]} is not a file's content (a blob)")
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


def _lookup(objects: _Objects, root: bytes, relpath: str) -> tuple[str, int, bytes]:
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
            entry = tree[name] if name in tree else None
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


def _resolve(repo: Repo, rev: str, where: Path) -> tuple[bytes, str]:
    """The commit id a revision names, and the ref it was read through (or rev itself).

    A revision is HEAD (or @), a branch, a tag (annotated tags are peeled),
    any ref name, a full or abbreviated (4+ hex) commit id, each followed by
    any number of ~N (N-th first-parent ancestor) and ^N (N-th parent).
    """
    match = _REV.match(rev)
    base, ops = match["base"], match["ops"]
    not_found = GitError(f"revision '{rev}' not found in {where} (try a branch, tag or commit id)")
    if not base or _BAD_REF.search(base):
        raise not_found
    sha, ref = _resolve_name(repo, base, where)
    if sha is None:
        raise not_found
    commit = _peel_to_commit(repo, sha, rev)
    for op, digits in re.findall(r"([~^])([0-9]*)", ops):
        n = int(digits) if digits else 1
        steps, index = (n, 0) if op == "~" else (1 if n else 0, n - 1)
        for _ in range(steps):
            parents = repo[commit].parents
            if len(parents) <= index:
                raise GitError(f"revision '{rev}' not found in {where}: the history has no such ancestor")
            commit = parents[index]
    return commit, (ref if not ops and ref else rev)


def _peel_to_commit(repo: Repo, sha: bytes, rev: str) -> bytes:
    """The commit sha leads to through annotated tags."""
    obj = repo[sha]
    while isinstance(obj, Tag):
        sha = obj.object[1]
        obj = repo[sha]
    if not isinstance(obj, Commit):
        raise GitError(f"revision '{rev}' names a {obj.type_name.decode()}, not a commit")
    return sha


def _resolve_name(repo: Repo, name: str, where: Path) -> tuple[bytes | None, str | None]:
    """The object a revision's name part points to, and the ref read (None for an object id)."""
    if name in ("HEAD", "@"):
        chain, sha = repo.refs.follow(b"HEAD")
        if sha is None:
            raise GitError(f"{where} has no commits yet (HEAD is an unborn branch); make a first commit")
        return sha, chain[-1].decode() if len(chain) > 1 else "HEAD"
    encoded = name.encode()
    if len(name) == 40 and _HEX.match(name) and encoded.lower() in repo.object_store:
        return encoded.lower(), None
    for ref in (name, f"refs/{name}", f"refs/tags/{name}", f"refs/heads/{name}", f"refs/remotes/{name}",
                f"refs/remotes/{name}/HEAD"):
        if ref != "HEAD" and "/" not in ref and not ref.isupper():
            continue  # only refs/... and the ALL_CAPS files in the git folder (FETCH_HEAD, ORIG_HEAD)
        chain, sha = repo.refs.follow(ref.encode())
        if sha:
            return sha, chain[-1].decode()
    if 4 <= len(name) < 40 and _HEX.match(name):
        found = {sha for sha in repo.object_store.iter_prefix(encoded.lower()) if _is_committish(repo, sha)}
        if len(found) > 1:
            raise GitError(f"revision '{name}' is ambiguous in {where}: it starts {len(found)} commit ids; "
                           "give more digits")
        if found:
            return found.pop(), None
    return None, None


def _is_committish(repo: Repo, sha: bytes) -> bool:
    """Whether the object is a commit, or a tag leading to one."""
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return isinstance(obj, Commit)


def _write_tree(objects: _Objects, root: Tree, folder: bytes) -> None:
    """Write the tree's files below folder (which exists and is empty); submodules are skipped."""
    stack = [(root, folder)]
    while stack:
        tree, folder = stack.pop()
        for entry in tree.iteritems():
            name, mode = entry.path, entry.mode
            if name in (b"", b".", b"..") or b"/" in name or b"\0" in name or name.lower() == b".git":
                raise GitError(f"tree {tree.id.decode()[:12]} has an entry named {name!r}, which cannot be "
                               "written safely")
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
                        data = data[os.write(fd, data):]
                finally:
                    os.close(fd)
            # else a submodule (gitlink): its content lives in another repository


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


# --- snapshotting a folder -----------------------------------------------------------------------


def _worktree_snapshot(repo: Repo, top: Path, prefix: str, rev: str | None,
                       store: DiskObjectStore | Path | None) -> Snapshot:
    """The work tree under prefix as it stands, on top of HEAD; new objects go to store."""
    if repo.bare:
        raise GitError(f"{top} is a bare repository: it has no work tree to snapshot; leave out the "
                       "worktree option, or give a clone with a work tree")
    if rev not in (None, "HEAD"):
        raise GitError(f"the work tree is snapshotted on top of HEAD; it cannot be combined with revision '{rev}'")
    chain, head = repo.refs.follow(b"HEAD")
    ref = chain[-1].decode() if len(chain) > 1 else "HEAD"
    head_tree = _prefix_tree(repo.object_store, repo[head].tree, prefix) if head else None
    index, index_mtime_ns = _read_index(repo)
    with _writing_to(store) as (disk, where):
        walker = _FolderSnapshot(top, IgnoreFilterManager.from_repo(repo), [repo.object_store], disk,
                                 index, index_mtime_ns)
        tree = walker.tree(prefix, keep_empty=True)
    return Snapshot("worktree", top, prefix, head.decode() if head else None, ref, tree.decode(),
                    tree != (head_tree or _EMPTY_TREE), where)


def _read_index(repo: Repo) -> tuple[dict, int]:
    """The index's entries by path (None for a conflicted path) and the index file's mtime in ns."""
    from dulwich.errors import NoIndexPresent

    try:
        index = repo.open_index()
        mtime_ns = os.stat(repo.index_path()).st_mtime_ns
    except (NoIndexPresent, FileNotFoundError):
        return {}, 0
    return {path: entry if hasattr(entry, "sha") else None for path, entry in index.items()}, mtime_ns


def _mtime_ns(value: Union[int, float, tuple[int, int]]) -> int:
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

    def __init__(self, top: Path, ignores: IgnoreFilterManager, known: list[BaseObjectStore],
                 store: DiskObjectStore, index: dict | None = None, index_mtime_ns: int = 0) -> None:
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
                    raise GitError(f"cannot snapshot {self.top / path}: {e.strerror or e}") from e
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
            if (known is not None and known.mode == mode and known.size == info.st_size & 0xFFFFFFFF
                    and _mtime_ns(known.mtime) == info.st_mtime_ns < self.index_mtime_ns):
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
