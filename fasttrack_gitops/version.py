"""What `--version` prints: the package version, and the commit when run from a git checkout.

`__version__` in `__init__.py` is the one source of the version (hatch reads
it for the wheel). A checkout adds its commit, read from the `.git` files
beside the package (HEAD, then the ref file or packed-refs) rather than by
running git: `--version` stays as cheap as `--help`, and an installed wheel,
whose package sits in site-packages with no `.git` beside it, prints the
plain version.
"""

from __future__ import annotations

import re
from pathlib import Path

from fasttrack_gitops import __version__

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def describe() -> str:
    """`0.1.0 (git 859fb7f)` from a checkout, `0.1.0` from an installed wheel."""
    commit = checkout_commit(Path(__file__).resolve().parent.parent)
    return f"{__version__} (git {commit[:7]})" if commit else __version__


def checkout_commit(root: Path) -> str | None:
    """The commit checked out in the git work tree whose top is `root`, or None when `root` is not one."""
    try:
        git_dir = _git_dir(root)
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head if _COMMIT.fullmatch(head) else None  # a detached HEAD names its commit
        return _resolve_ref(git_dir, head.removeprefix("ref: "))
    except (OSError, UnicodeDecodeError):
        return None


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir: "):
            return (root / text.removeprefix("gitdir: ")).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    # A linked worktree keeps its HEAD in its own git dir and the branches in the common one.
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in dict.fromkeys((git_dir, common)):
        loose = base / ref
        if loose.is_file():
            commit = loose.read_text(encoding="utf-8").strip()
            return commit if _COMMIT.fullmatch(commit) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            commit, _, name = line.partition(" ")
            if name == ref and _COMMIT.fullmatch(commit):
                return commit
    return None
