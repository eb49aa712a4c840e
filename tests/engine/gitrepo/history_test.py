"""History questions on real repositories: merge bases, and which files a push or a pull request changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git

from fasttrack_gitops.core.events import ZERO_COMMIT, Push
from fasttrack_gitops.engine.gitrepo import (
    GitError,
    default_branch,
    has_commit,
    heads,
    is_ancestor,
    merge_base,
    pr_changes,
    push_changes,
    ref_matches,
)

MISSING = "1234567890abcdef1234567890abcdef12345678"


def commit(repo: Path, message: str, files: dict[str, str | None] | None = None) -> str:
    """Write (or, with None, delete) files, commit them, and return the commit id."""
    for name, text in (files or {}).items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return rev_parse(repo, "HEAD")


def rev_parse(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: A - B - C;  feature (from B): D - E.

    A adds a.txt; B b.txt; C changes a.txt on main after feature left it;
    D adds d.txt; E adds e.txt.
    """
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "A", {"a.txt": "1"})
    commit(root, "B", {"b.txt": "1"})
    git(root, "checkout", "-q", "-b", "feature")
    commit(root, "D", {"d.txt": "1"})
    commit(root, "E", {"e.txt": "1"})
    git(root, "checkout", "-q", "main")
    commit(root, "C", {"a.txt": "2"})
    return root


def sha(repo: Path, rev: str) -> str:
    return rev_parse(repo, rev)


def push(repo: Path, before: str, after: str, *, ref: str = "refs/heads/feature", forced: bool = False) -> Push:
    return Push(repository="o/r", ref=ref, before=before, after=after, forced=forced)


# -- merge bases and ancestry ------------------------------------------------------------------------------------


def test_merge_base_of_two_branches_is_where_they_parted(repo: Path):
    assert merge_base(repo, sha(repo, "main"), sha(repo, "feature")) == sha(repo, "main~1")
    assert merge_base(repo, "refs/heads/main", "feature") == sha(repo, "main~1")  # refs work as well as ids


def test_merge_base_of_a_commit_and_its_descendant_is_the_commit(repo: Path):
    assert merge_base(repo, sha(repo, "main~2"), sha(repo, "main")) == sha(repo, "main~2")
    assert merge_base(repo, sha(repo, "main"), sha(repo, "main")) == sha(repo, "main")


def test_unrelated_histories_or_a_missing_commit_have_no_merge_base(repo: Path):
    git(repo, "checkout", "-q", "--orphan", "other")
    orphan = commit(repo, "unrelated", {"z.txt": "1"})
    assert merge_base(repo, orphan, sha(repo, "main")) is None
    assert merge_base(repo, MISSING, sha(repo, "main")) is None


def test_is_ancestor_says_whether_a_move_was_a_fast_forward(repo: Path):
    assert is_ancestor(repo, sha(repo, "main~1"), sha(repo, "feature"))
    assert is_ancestor(repo, sha(repo, "feature"), sha(repo, "feature"))
    assert not is_ancestor(repo, sha(repo, "main"), sha(repo, "feature"))
    assert not is_ancestor(repo, sha(repo, "feature"), sha(repo, "feature~1"))
    assert not is_ancestor(repo, MISSING, sha(repo, "feature"))


def test_has_commit_is_a_question_not_an_error(repo: Path):
    assert has_commit(repo, sha(repo, "main"))
    assert not has_commit(repo, MISSING)
    assert not has_commit(repo, "not-a-sha")
    assert not has_commit(repo, ZERO_COMMIT)
    assert not has_commit(repo, sha(repo, "main^{tree}"))  # an object, but no commit


def test_a_folder_that_is_no_repository_is_a_git_error(tmp_path: Path):
    with pytest.raises(GitError, match="not in a git repository"):
        has_commit(tmp_path, MISSING)


# -- what a push changed -----------------------------------------------------------------------------------------


def test_a_normal_push_changed_what_its_commits_changed(repo: Path):
    assert push_changes(repo, push(repo, sha(repo, "main~1"), sha(repo, "main"), ref="refs/heads/main")) == {"a.txt"}
    assert push_changes(repo, push(repo, sha(repo, "main~1"), sha(repo, "feature"))) == {"d.txt", "e.txt"}


def test_a_force_push_counts_only_the_new_commits(repo: Path):
    before = sha(repo, "feature")
    git(repo, "checkout", "-q", "feature")
    git(repo, "reset", "-q", "--hard", "feature~1")  # drop E (e.txt) ...
    after = commit(repo, "F", {"f.txt": "new"})  # ... and add F instead
    changed = push_changes(repo, push(repo, before, after, forced=True))
    assert changed == {"f.txt"}  # not e.txt, which a plain diff of before..after shows as deleted
    assert "e.txt" in set(git(repo, "diff", "--no-renames", "--name-only", before, after).split())


def test_an_amended_commit_counts_as_its_own_changes(repo: Path):
    git(repo, "checkout", "-q", "feature")
    before = sha(repo, "HEAD")
    (repo / "e.txt").write_text("amended")
    git(repo, "commit", "-q", "-a", "--amend", "-m", "E'")
    after = sha(repo, "HEAD")
    assert push_changes(repo, push(repo, before, after, forced=True)) == {"e.txt"}


def test_a_force_push_whose_old_tip_is_gone_compares_with_the_default_branch(repo: Path):
    after = sha(repo, "feature")
    forced = push(repo, MISSING, after, forced=True)
    assert push_changes(repo, forced, default_ref="refs/heads/main") == {"d.txt", "e.txt"}
    assert push_changes(repo, forced) is None


def test_a_push_whose_before_is_not_in_the_repository_is_unknown(repo: Path):
    assert push_changes(repo, push(repo, MISSING, sha(repo, "feature")), default_ref="refs/heads/main") is None


def test_a_new_branch_changed_what_it_adds_to_the_default_branch(repo: Path):
    new = push(repo, ZERO_COMMIT, sha(repo, "feature"))
    assert push_changes(repo, new, default_ref="refs/heads/main") == {"d.txt", "e.txt"}  # not C's a.txt


def test_a_new_branch_without_a_default_branch_to_compare_with_is_unknown(repo: Path):
    new = push(repo, ZERO_COMMIT, sha(repo, "feature"))
    assert push_changes(repo, new) is None
    assert push_changes(repo, new, default_ref="refs/heads/nope") is None
    first_main = push(repo, ZERO_COMMIT, sha(repo, "main"), ref="refs/heads/main")
    assert push_changes(repo, first_main, default_ref="refs/heads/main") is None


def test_a_new_tag_on_an_annotated_tag_object_is_peeled(repo: Path):
    git(repo, "tag", "-a", "-m", "release", "v1", "feature")
    tag_object = sha(repo, "refs/tags/v1")
    new = push(repo, ZERO_COMMIT, tag_object, ref="refs/tags/v1")
    assert push_changes(repo, new, default_ref="refs/heads/main") == {"d.txt", "e.txt"}


def test_a_deleted_branch_changed_nothing(repo: Path):
    assert push_changes(repo, push(repo, sha(repo, "feature"), ZERO_COMMIT)) == set()


def test_a_push_of_a_commit_not_fetched_yet_is_unknown(repo: Path):
    assert push_changes(repo, push(repo, sha(repo, "feature"), MISSING)) is None


def test_a_monorepo_prefix_keeps_its_own_files_relative_to_it(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    before = commit(tmp_path, "base", {"svc/pipelines/a.yaml": "1", "web/index.html": "1"})
    after = commit(
        tmp_path,
        "both",
        {"svc/pipelines/a.yaml": "2", "svc/code/x.py": "1", "web/index.html": "2", "svc.txt": "not in svc/"},
    )
    moved = Push("o/r", "refs/heads/main", before, after)
    assert push_changes(tmp_path, moved, prefix="svc") == {"pipelines/a.yaml", "code/x.py"}
    assert push_changes(tmp_path, moved, prefix="svc/") == {"pipelines/a.yaml", "code/x.py"}
    assert push_changes(tmp_path, moved) == {"svc/pipelines/a.yaml", "svc/code/x.py", "web/index.html", "svc.txt"}
    assert push_changes(tmp_path, moved, prefix="nowhere") == set()


def test_a_prefix_folder_that_appears_counts_all_its_files(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    before = commit(tmp_path, "base", {"x.txt": "1"})
    after = commit(tmp_path, "add svc", {"svc/a": "1", "svc/b/c": "1"})
    assert push_changes(tmp_path, Push("o/r", "refs/heads/main", before, after), prefix="svc") == {"a", "b/c"}


def test_a_rename_is_both_paths(repo: Path):
    before = sha(repo, "main")
    git(repo, "mv", "b.txt", "renamed.txt")
    after = commit(repo, "rename")
    assert push_changes(repo, push(repo, before, after, ref="refs/heads/main")) == {"b.txt", "renamed.txt"}


def test_a_subfolder_of_the_work_tree_finds_its_repository(repo: Path):
    (repo / "sub").mkdir()
    assert push_changes(repo / "sub", push(repo, sha(repo, "main~1"), sha(repo, "main"))) == {"a.txt"}


# -- what a pull request changed ---------------------------------------------------------------------------------


def test_a_pull_request_changed_only_what_its_branch_did(repo: Path):
    # main's C changed a.txt after feature left it: a two-dot diff would show a.txt, the three-dot one does not.
    assert pr_changes(repo, sha(repo, "main"), sha(repo, "feature")) == {"d.txt", "e.txt"}
    assert "a.txt" in set(git(repo, "diff", "--no-renames", "--name-only", "main", "feature").split())
    assert pr_changes(repo, "main", "feature") == {"d.txt", "e.txt"}


def test_a_pull_request_with_a_prefix(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "base", {"svc/a.yaml": "1"})
    git(tmp_path, "checkout", "-q", "-b", "pr")
    commit(tmp_path, "change", {"svc/a.yaml": "2", "docs/x.md": "1"})
    assert pr_changes(tmp_path, "main", "pr", prefix="svc") == {"a.yaml"}


def test_a_pull_request_from_unrelated_or_missing_history_is_unknown(repo: Path):
    git(repo, "checkout", "-q", "--orphan", "other")
    orphan = commit(repo, "unrelated", {"z.txt": "1"})
    assert pr_changes(repo, sha(repo, "main"), orphan) is None
    assert pr_changes(repo, sha(repo, "main"), MISSING) is None
    assert pr_changes(repo, MISSING, sha(repo, "feature")) is None


# -- refs --------------------------------------------------------------------------------------------------------


@pytest.fixture
def tagged(repo: Path) -> Path:
    git(repo, "tag", "light", "main~2")
    git(repo, "tag", "-a", "-m", "release", "v1", "feature")
    git(repo, "branch", "release/1.0", "main~1")
    git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    return repo


def test_heads_lists_the_branches_by_default_including_slashed_names(tagged: Path):
    repo = tagged
    assert heads(repo) == {
        "refs/heads/main": sha(repo, "main"),
        "refs/heads/feature": sha(repo, "feature"),
        "refs/heads/release/1.0": sha(repo, "main~1"),
    }  # refs/heads/alias is a symbolic ref: an alias, not a branch


@pytest.mark.parametrize("packed", [False, True])
def test_heads_peels_annotated_tags_to_their_commit(tagged: Path, packed: bool):
    repo = tagged
    if packed:
        git(repo, "pack-refs", "--all")
    assert heads(repo, ["refs/tags/*"]) == {
        "refs/tags/light": sha(repo, "main~2"),
        "refs/tags/v1": sha(repo, "feature"),
    }
    assert sha(repo, "refs/tags/v1") != sha(repo, "feature")  # the ref names the tag object


def test_heads_patterns_select_and_exclude(tagged: Path):
    repo = tagged
    assert set(heads(repo, ["refs/heads/*", "!refs/heads/release/*", "refs/tags/v*"])) == {
        "refs/heads/main",
        "refs/heads/feature",
        "refs/tags/v1",
    }
    assert set(heads(repo, ["refs/heads/release/*"])) == {"refs/heads/release/1.0"}


def test_ref_globs_match_any_depth_only_after_a_trailing_slash_star():
    assert ref_matches("refs/heads/feature/x", ["refs/heads/*"])
    assert ref_matches("refs/pull/12/head", ["refs/pull/*/head"])
    assert not ref_matches("refs/pull/12/merge", ["refs/pull/*/head"])
    assert not ref_matches("refs/tags/v1", ["refs/heads/*"])


def test_default_branch_is_the_branch_head_names(repo: Path, tmp_path: Path):
    assert default_branch(repo) == "main"
    git(repo, "checkout", "-q", "feature")
    assert default_branch(repo) == "feature"
    git(repo, "checkout", "-q", "--detach", "HEAD")
    assert default_branch(repo) is None


def test_default_branch_of_a_bare_clone_and_of_an_empty_repository(repo: Path, tmp_path: Path):
    git(tmp_path, "clone", "-q", "--bare", str(repo), "bare.git")
    assert default_branch(tmp_path / "bare.git") == "main"
    (tmp_path / "empty").mkdir()
    git(tmp_path / "empty", "init", "-q", "-b", "trunk")
    assert default_branch(tmp_path / "empty") is None  # no commits yet: nothing to compare with
