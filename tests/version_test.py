"""`--version`'s commit, read from the files of real git repositories: loose and packed refs, detached, worktrees.

That an installed wheel prints the plain version is checked by scripts/check-wheel.sh, on a real install.
"""

from __future__ import annotations

from pathlib import Path

from conftest import git

from fasttrack_gitops.version import checkout_commit


def repository(path: Path) -> str:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "commit", "-q", "-m", "first")
    return git(path, "rev-parse", "HEAD").strip()


def test_a_branch_checked_out_gives_its_commit(tmp_path):
    head = repository(tmp_path / "repo")
    assert checkout_commit(tmp_path / "repo") == head


def test_a_packed_branch_gives_its_commit(tmp_path):
    head = repository(tmp_path / "repo")
    git(tmp_path / "repo", "pack-refs", "--all")
    assert not (tmp_path / "repo" / ".git" / "refs" / "heads" / "main").exists()
    assert checkout_commit(tmp_path / "repo") == head


def test_a_detached_head_gives_its_commit(tmp_path):
    head = repository(tmp_path / "repo")
    git(tmp_path / "repo", "checkout", "-q", "--detach")
    assert checkout_commit(tmp_path / "repo") == head


def test_a_linked_worktree_gives_its_own_branch(tmp_path):
    repository(tmp_path / "repo")
    git(tmp_path / "repo", "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"))
    (tmp_path / "side" / "more").write_text("more\n")
    git(tmp_path / "side", "add", "more")
    git(tmp_path / "side", "commit", "-q", "-m", "second")
    assert checkout_commit(tmp_path / "side") == git(tmp_path / "side", "rev-parse", "HEAD").strip()


def test_a_branch_with_no_commit_yet_or_no_repository_gives_none(tmp_path):
    (tmp_path / "empty").mkdir()
    git(tmp_path / "empty", "init", "-q")
    assert checkout_commit(tmp_path / "empty") is None
    assert checkout_commit(tmp_path / "plain") is None
