"""History questions the daemon asks: which commits exist, how branches relate, which files a push or PR changed.

A push webhook or a moved branch says "before -> after"; the trigger rules
need the files that change brought, relative to the pipeline repository
folder (a monorepo's subfolder). Answers that git cannot give (a commit the
repository does not have, unrelated histories) are None, "unknown", so the
trigger rules let path filters pass rather than silently skip a pipeline.
Only a repository that cannot be read at all is a GitError.

dulwich answers everything here (no `git` binary). Merge bases walk the
history once, by commit date, and stop as soon as the two sides meet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dulwich.diff_tree import tree_changes
from dulwich.graph import can_fast_forward, find_merge_base
from dulwich.objects import Commit, Tag
from dulwich.repo import Repo

from fasttrack_gitops.core.events import Push
from fasttrack_gitops.core.globs import matches
from fasttrack_gitops.engine.gitrepo.model import ZERO_COMMIT, GitError, GitUsageError
from fasttrack_gitops.engine.gitrepo.objects import _HEX, _git_errors, _open_repo, _prefix_tree
from fasttrack_gitops.engine.gitrepo.revisions import _resolve

_MAX_TAG_DEPTH = 10  # a tag of a tag of ...: git itself gives up long before anyone writes this


def ref_matches(ref: str, patterns: Sequence[str]) -> bool:
    """Whether a full ref name is selected by ref globs (fasttrack_gitops.core.globs, last match wins).

    A trailing `/*` matches any depth, as in git refspecs, so the default
    `refs/heads/*` also selects `refs/heads/feature/x`; elsewhere `*`
    stays within one segment (`refs/pull/*/head`).
    """
    return matches(ref, [p[:-1] + "**" if p.endswith("/*") else p for p in patterns])


def has_commit(repo_path: Path, sha: str) -> bool:
    """Whether the repository holds the commit: a push's `before` may be gone after a force push elsewhere."""
    with _repository(repo_path) as repo:
        return _commit_of(repo, sha) is not None


def merge_base(repo_path: Path, a: str, b: str) -> str | None:
    """A best common ancestor of two commits (or refs); None when the histories are unrelated or one is missing."""
    with _repository(repo_path) as repo:
        base = _merge_base(repo, _commit_of(repo, a), _commit_of(repo, b))
    return base.decode() if base else None


def is_ancestor(repo_path: Path, ancestor: str, descendant: str) -> bool:
    """Whether descendant's history contains ancestor (a commit is its own ancestor): a fast-forward, not a force push.

    False when either commit is missing: a move that cannot be shown to be
    a fast-forward is treated as a rewrite.
    """
    with _repository(repo_path) as repo:
        return _is_ancestor(repo, _commit_of(repo, ancestor), _commit_of(repo, descendant))


def heads(repo_path: Path, patterns: Sequence[str] = ("refs/heads/*",)) -> dict[str, str]:
    """The refs the globs select (see ref_matches), full name -> commit id, annotated tags peeled.

    Symbolic refs (refs/remotes/origin/HEAD) are aliases, not branches, and
    are left out, as are refs to anything but a commit and dangling refs.
    """
    found: dict[str, str] = {}
    with _repository(repo_path) as repo:
        symbolic = set(repo.refs.get_symrefs())
        for name, sha in repo.refs.as_dict().items():
            ref = name.decode(errors="replace")
            if name in symbolic or not ref.startswith("refs/") or not ref_matches(ref, patterns):
                continue
            commit = _peeled(repo, name, sha)
            if commit is not None:
                found[ref] = commit.decode()
    return found


def default_branch(repo_path: Path) -> str | None:
    """The branch HEAD points to ("main"); in a mirror, the remote's HEAD as the last fetch recorded it.

    None when HEAD is detached, or names a branch with no commits (a new
    repository, a mirror whose remote did not say): nothing to compare with.
    """
    with _repository(repo_path) as repo:
        target = repo.refs.get_symrefs().get(b"HEAD")
        if target is None or not target.startswith(b"refs/heads/") or _commit_of(repo, target.decode()) is None:
            return None
        return target[len(b"refs/heads/") :].decode()


def push_changes(repo_path: Path, push: Push, *, prefix: str = "", default_ref: str | None = None) -> set[str] | None:
    """The files a push changed, relative to the pipeline repository folder prefix; None when unknown.

    Only what the push brought counts: for a force push the new commits
    (from the merge base of before and after), for a new branch the commits
    not on the default branch (default_ref, e.g. "refs/heads/main"). A
    deleted branch changed nothing. A `before` the repository does not have
    (history rewritten elsewhere) is unknown, except in a force push with a
    default_ref, which is then compared with the default branch.
    """
    if push.deleted:
        return set()
    with _repository(repo_path) as repo:
        after = _commit_of(repo, push.after)
        if after is None:
            return None
        before = None if push.created else _commit_of(repo, push.before)
        if before is not None:
            base = _merge_base(repo, before, after)  # == before for a fast-forward
        elif (push.created or push.forced) and default_ref and default_ref != push.ref:
            base = _merge_base(repo, _commit_of(repo, default_ref), after)
        else:
            return None
        return None if base is None else _changes(repo, base, after, prefix)


def pr_changes(repo_path: Path, base: str, head: str, *, prefix: str = "") -> set[str] | None:
    """The files head changed since it left base (GitHub's three-dot diff), relative to prefix; None when unrelated.

    A change made on base after the branch point is not the pull request's,
    so it is not included. None also when either commit is missing.
    """
    with _repository(repo_path) as repo:
        head_commit = _commit_of(repo, head)
        fork_point = _merge_base(repo, _commit_of(repo, base), head_commit)
        if fork_point is None or head_commit is None:
            return None
        return _changes(repo, fork_point, head_commit, prefix)


@contextmanager
def _repository(repo_path: Path) -> Iterator[Repo]:
    """The repository holding repo_path (a work tree, a folder in one, a bare mirror), read errors as GitError."""
    from fasttrack_gitops.engine.gitrepo import repository_of  # the package imports this module

    found = repository_of(Path(repo_path))
    if found is None:
        raise GitUsageError(f"{repo_path} is not in a git repository; give a git clone or a mirror")
    with _open_repo(found[0]) as repo, _git_errors(f"cannot read the history of {found[0]}"):
        yield repo


def _commit_of(repo: Repo, rev: str) -> bytes | None:
    """The commit a commit id, ref or revision names (tags peeled); None when the repository has no such commit."""
    if not isinstance(rev, str) or not rev or rev == ZERO_COMMIT:
        return None
    if len(rev) == 40 and _HEX.match(rev):  # the common case: skip the ref lookups
        return _peel(repo, rev.lower().encode())
    try:
        return _resolve(repo, rev, Path(repo.path))[0]
    except GitError:
        return None


def _peel(repo: Repo, sha: bytes) -> bytes | None:
    """The commit an object id leads to through annotated tags; None when absent or not a commit."""
    for _ in range(_MAX_TAG_DEPTH):
        try:
            obj = repo.object_store[sha]
        except KeyError:
            return None
        if isinstance(obj, Commit):
            return sha
        if not isinstance(obj, Tag):
            return None
        sha = obj.object[1]
    return None


def _peeled(repo: Repo, name: bytes, sha: bytes) -> bytes | None:
    """The commit a ref leads to, from packed-refs' peeled cache when it has one (no object read)."""
    cached = repo.refs.get_peeled(name)
    if cached is not None and cached != sha:
        return cached  # an annotated tag, peeled by git when it packed the refs
    return _peel(repo, sha)


def _merge_base(repo: Repo, a: bytes | None, b: bytes | None) -> bytes | None:
    """A best common ancestor (the oldest when criss-cross merges give several, as dulwich orders them)."""
    if a is None or b is None:
        return None
    if a == b:
        return a
    bases = find_merge_base(repo, [a, b])
    return bases[0] if bases else None


def _is_ancestor(repo: Repo, ancestor: bytes | None, descendant: bytes | None) -> bool:
    """Whether descendant reaches ancestor; the walk stops at commits older than ancestor."""
    if ancestor is None or descendant is None:
        return False
    return can_fast_forward(repo, ancestor, descendant)


def _changes(repo: Repo, old: bytes, new: bytes, prefix: str) -> set[str]:
    """Paths added, removed or modified under prefix from commit old to new, relative to prefix.

    Only the prefix's subtrees are compared, and unchanged subtrees are
    skipped by id, so a small change in a large monorepo reads few trees.
    A rename is both paths.
    """
    store = repo.object_store
    prefix = prefix.strip("/")
    old_tree = _prefix_tree(store, repo[old].tree, prefix)
    new_tree = _prefix_tree(store, repo[new].tree, prefix)
    if old_tree == new_tree:
        return set()
    paths: set[str] = set()
    for change in tree_changes(store, old_tree, new_tree):
        for entry in (change.old, change.new):
            if entry is not None and entry.path is not None:
                paths.add(os.fsdecode(entry.path))
    return paths
