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
import shutil
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dulwich.ignore import IgnoreFilterManager
from dulwich.object_store import BaseObjectStore, DiskObjectStore

from fasttrack_gitops.core.globs import matches, static_prefix
from fasttrack_gitops.core.pipeline.semantics import CodeDirState, CodeLookup
from fasttrack_gitops.engine.gitrepo.folders import _FolderSnapshot, _worktree_snapshot
from fasttrack_gitops.engine.gitrepo.model import (
    ZERO_COMMIT,
    GitAccessError,
    GitError,
    GitUsageError,
    Snapshot,
    repository_label,
)
from fasttrack_gitops.engine.gitrepo.objects import (
    _GITLINK,
    _blob,
    _git_errors,
    _lookup,
    _object_id,
    _objects_of,
    _open_repo,
    _prefix_tree,
    _reading,
    _tree,
    _walk,
    _write_tree,
    _writing_to,
    held_answers,
    held_open,
    object_store,
)
from fasttrack_gitops.engine.gitrepo.revisions import _resolve
from fasttrack_gitops.engine.lazy import lazy_names

if TYPE_CHECKING:
    from fasttrack_gitops.engine.gitrepo.history import (
        default_branch,
        has_commit,
        heads,
        is_ancestor,
        merge_base,
        pr_changes,
        push_changes,
        ref_matches,
    )

# The history questions (history.py) are the daemon's and the Action's: they load dulwich's graph and diff code
# and the event model, which `run` and `validate` never use, so they are imported when first asked for (__getattr__).
_HISTORY = frozenset(
    {"default_branch", "has_commit", "heads", "is_ancestor", "merge_base", "pr_changes", "push_changes", "ref_matches"}
)

__all__ = [
    "ZERO_COMMIT",
    "GitAccessError",
    "GitError",
    "GitUsageError",
    "Snapshot",
    "changed_paths",
    "code_lookup",
    "code_state",
    "default_branch",
    "has_commit",
    "heads",
    "held_open",
    "is_ancestor",
    "list_files",
    "materialise",
    "merge_base",
    "object_store",
    "open_snapshot",
    "pr_changes",
    "push_changes",
    "read_file",
    "ref_matches",
    "repository_label",
    "repository_of",
    "resolve_revision",
    "tree_id",
]


__getattr__ = lazy_names(__name__, _HISTORY, "fasttrack_gitops.engine.gitrepo.history")


def repository_of(path: Path) -> tuple[Path, str] | None:
    """The git repository holding the folder: its top folder and the folder's posix path inside it.

    A bare repository is its own top. None when no folder above has a `.git`.
    Within held_open() the answer is remembered for the block: a push asks it
    of one folder several times, and resolving a deep path is a system call
    per component (a fifth of a webhook burst's git time, bench/burst_bench.py).
    """
    memo = held_answers()
    if memo is None:
        return _repository_of(path)
    key = ("repository_of", str(path))
    if key not in memo:
        memo[key] = _repository_of(path)
    return memo[key]


def _repository_of(path: Path) -> tuple[Path, str] | None:
    start = Path(path).resolve()
    if (start / "HEAD").is_file() and (start / "objects").is_dir() and (start / "refs").is_dir():
        return start, ""
    for top in (start, *start.parents):
        if (top / ".git").exists():  # a folder, or a file pointing elsewhere (linked work trees, submodules)
            prefix = start.relative_to(top).as_posix()
            prefix = "" if prefix == "." else prefix
            if ".git" in prefix.split("/"):
                raise GitUsageError(f"{start} is inside the .git folder of {top}; give the work tree's folder")
            return top, prefix
    return None


def open_snapshot(
    path: Path, rev: str | None = "HEAD", *, worktree: bool = False, store: DiskObjectStore | Path | None = None
) -> Snapshot:
    """The pipeline repository at path as of rev (or its work tree), as a Snapshot.

    path is a git work tree, a bare repository, a subfolder of a work tree
    (a monorepo's pipeline repository: `prefix`), or a folder in no git
    repository (snapshotted into store as kind "unversioned"). With
    worktree=True the work tree's files as they stand (tracked and untracked,
    .gitignore honoured) are snapshotted into store on top of HEAD.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise GitUsageError(f"{folder} is not a folder")
    found = repository_of(folder)
    if found is None:
        if rev not in (None, "HEAD"):
            raise GitUsageError(
                f"{folder} is not in a git repository, so revision '{rev}' cannot be read; "
                "give a folder in a git clone, or leave the revision out"
            )
        root = folder.resolve()
        with _writing_to(store) as (disk, where):
            folder_tree = _FolderSnapshot(root, IgnoreFilterManager(str(root), [], False), [], disk).tree(
                "", keep_empty=True
            )
        return Snapshot("unversioned", root, "", None, None, folder_tree.decode(), False, where)
    top, prefix = found
    with _open_repo(top) as repo, _git_errors(f"cannot read the repository {top}"):
        if worktree:
            return _worktree_snapshot(repo, top, prefix, rev, store)
        rev = "HEAD" if rev is None else rev
        commit, ref = _resolve(repo, rev, top)
        tree = _prefix_tree(repo.object_store, repo[commit].tree, prefix)
        if tree is None:
            raise GitUsageError(
                f"folder '{prefix}' is not in revision '{rev}' ({commit.decode()[:12]}) of "
                f"{top}; commit it first, or snapshot the work tree"
            )
        return Snapshot("commit", top, prefix, commit.decode(), ref, tree.decode(), False)


def resolve_revision(path: Path, rev: str = "HEAD") -> tuple[str, str]:
    """The commit id a revision names in the repository holding path, and the ref it was read through.

    The ref is the full ref name ("refs/heads/main"; HEAD gives the branch
    it points to, or "HEAD" when detached), or rev itself for a commit id or
    a revision with ~ or ^.
    """
    found = repository_of(Path(path))
    if found is None:
        raise GitUsageError(f"{path} is not in a git repository, so revision '{rev}' cannot be read")
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
    return data if max_bytes is None else data[: max_bytes + 1]


def list_files(snap: Snapshot, patterns: Sequence[str]) -> list[str]:
    """The files the globs select at the snapshot, sorted; only the globs' fixed folders are walked.

    Paths are relative to the pipeline repository root. A symlink counts as
    a file when it leads to one inside the tree; symlinked folders and
    submodules are not entered (as os.walk does in workspace.py).
    """
    return sorted(file_ids(snap, patterns))


def file_ids(snap: Snapshot, patterns: Sequence[str]) -> dict[str, str]:
    """The files the globs select at the snapshot (as list_files), each with its blob id (a symlink: its target's)."""
    root = snap.tree.encode()
    found: dict[str, str] = {}
    with _reading(snap) as objects:
        for prefix in sorted({static_prefix(p) for p in patterns if not p.startswith("!")}):
            state, mode, sha = _lookup(objects, root, prefix)
            if state != "found" or not stat.S_ISDIR(mode):
                continue
            for path, mode, blob in _walk(objects, sha, prefix):
                if stat.S_ISLNK(mode):
                    state, mode, blob = _lookup(objects, root, path)
                    if state != "found":
                        continue
                if stat.S_ISREG(mode) and matches(path, patterns):
                    found[path] = blob.decode()
    return dict(sorted(found.items()))


def code_state(snap: Snapshot, relpath: str) -> CodeDirState:
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


def code_lookup(snap: Snapshot) -> CodeLookup:
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
            raise GitAccessError(f"cannot write tree {tree[:12]} to {dest}: {e.strerror or e}") from e


def changed_paths(source: Snapshot | Path, old_commit: str | None, new_commit: str) -> set[str]:
    """The paths (relative to the git top) added, removed or modified from old_commit to new_commit.

    A rename is both paths. old_commit None (or all zeros, as push webhooks
    send for a new branch) means every path in new_commit. Either may be any
    revision resolve_revision reads.
    """
    if isinstance(source, Snapshot):
        if source.kind == "unversioned":
            raise GitUsageError(f"{source.repo_root} is not in a git repository, so it has no commits to compare")
        top = source.repo_root
    else:
        found = repository_of(Path(source))
        if found is None:
            raise GitUsageError(f"{source} is not in a git repository, so it has no commits to compare")
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
