"""What `--version` prints: the package version, and the commit when run from a git checkout.

`__version__` in `__init__.py` is the one source of the version (hatch reads
it for the wheel). A checkout adds its commit, read from the `.git` files
beside the package (HEAD, then the ref file or packed-refs) rather than by
running git: `--version` stays as cheap as starting Python, and an installed
wheel, whose package sits in site-packages with no `.git` beside it, prints
the plain version. Only `os.path` here: `re` and `pathlib` would each cost
more than the rest of `--version` (python -X importtime).
"""

from __future__ import annotations

import os

from fasttrack_gitops import __version__

_HEX = frozenset("0123456789abcdef")


def describe() -> str:
    """`0.1.0 (git 859fb7f)` from a checkout, `0.1.0` from an installed wheel."""
    commit = checkout_commit(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    return f"{__version__} (git {commit[:7]})" if commit else __version__


def checkout_commit(root: str | os.PathLike[str]) -> str | None:
    """The commit checked out in the git work tree whose top is `root`, or None when `root` is not one."""
    try:
        git_dir = _git_dir(os.fspath(root))
        if git_dir is None:
            return None
        head = _read(os.path.join(git_dir, "HEAD"))
        if not head.startswith("ref: "):
            return head if _is_commit(head) else None  # a detached HEAD names its commit
        return _resolve_ref(git_dir, head.removeprefix("ref: "))
    except (OSError, UnicodeDecodeError):
        return None


def _is_commit(text: str) -> bool:
    """A full object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits."""
    return len(text) in (40, 64) and _HEX.issuperset(text)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def _git_dir(root: str) -> str | None:
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    if os.path.isfile(dot_git):  # a linked worktree or a submodule: "gitdir: <path>"
        text = _read(dot_git)
        if text.startswith("gitdir: "):
            return os.path.realpath(os.path.join(root, text.removeprefix("gitdir: ")))
    return None


def _resolve_ref(git_dir: str, ref: str) -> str | None:
    # A linked worktree keeps its HEAD in its own git dir and the branches in the common one.
    common = git_dir
    commondir = os.path.join(git_dir, "commondir")
    if os.path.isfile(commondir):
        common = os.path.realpath(os.path.join(git_dir, _read(commondir)))
    for base in dict.fromkeys((git_dir, common)):
        loose = os.path.join(base, ref)
        if os.path.isfile(loose):
            commit = _read(loose)
            return commit if _is_commit(commit) else None
    packed = os.path.join(common, "packed-refs")
    if os.path.isfile(packed):
        with open(packed, encoding="utf-8") as f:
            for line in f:
                commit, _, name = line.rstrip("\n").partition(" ")
                if name == ref and _is_commit(commit):
                    return commit
    return None
