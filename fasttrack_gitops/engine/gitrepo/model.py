"""The git edge's plain data: a Snapshot, its error type, and the names of things."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fasttrack_gitops.core.errors import FastTrackError, OperationalError, UsageError

ZERO_COMMIT = "0" * 40  # what push webhooks send as `before` for a new branch


class GitError(FastTrackError):
    """Git could not answer as asked; the message says what to do. Raise one of the two kinds below."""


class GitUsageError(GitError, UsageError):
    """A path or revision that names no repository, commit, tree or folder the way it was given (exit 2)."""


class GitAccessError(GitError, OperationalError):
    """A repository or snapshot store that cannot be read or written: missing objects, a file error (exit 3)."""


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


def repository_label(snap: Snapshot) -> str:
    """A display name for the snapshot's repository: the top folder's name, plus /prefix in a monorepo."""
    return f"{snap.repo_root.name}/{snap.prefix}" if snap.prefix else snap.repo_root.name
