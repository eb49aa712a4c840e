"""The git edge, on real repositories made with real git commits in a temp folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git

from fasttrack_gitops.engine.gitrepo import (
    GitAccessError,
    GitError,
    GitUsageError,
    Snapshot,
    changed_paths,
    code_lookup,
    code_state,
    list_files,
    materialise,
    object_store,
    open_snapshot,
    read_file,
    repository_label,
    resolve_revision,
    tree_id,
)

PIPELINE_GLOBS = ("pipelines/**/*.yaml", "pipelines/**/*.yml")


def commit(repo: Path, message: str) -> str:
    """Commit everything in the work tree; the new commit id."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return rev_parse(repo, "HEAD")


def rev_parse(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


@pytest.fixture
def repo(tmp_path: Path, write) -> Path:
    """A pipeline repository with two commits: v1 (tagged) and the current one."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write("repo/pipelines/train.yaml", "name: train\n")
    write("repo/pipelines/nested/eval.yml", "name: eval\n")
    write("repo/pipelines/notes.txt", "not a pipeline\n")
    write("repo/tasks/train/main.py", "print('v1')\n")
    commit(root, "v1")
    git(root, "tag", "v1")
    git(root, "tag", "-a", "-m", "release", "v1-annotated")
    write("repo/tasks/train/main.py", "print('v2')\n")
    write("repo/tasks/train/new.py", "added in v2\n")
    commit(root, "v2")
    return root


@pytest.fixture
def store(tmp_path: Path):
    return object_store(tmp_path / "store")


def files_of(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Every file and symlink below folder (.git aside): path -> (kind, content or link target)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != ".git" and not os.path.islink(os.path.join(dirpath, d))]
        names = filenames + [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))]
        for name in set(names):
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path).encode())
            else:
                found[rel] = ("exec" if os.access(path, os.X_OK) else "file", path.read_bytes())
    return found


# --- reading at a revision ------------------------------------------------------------------------


def test_reads_a_file_at_head(repo: Path):
    snap = open_snapshot(repo)
    assert snap.kind == "commit" and snap.prefix == "" and not snap.dirty
    assert snap.commit == rev_parse(repo, "HEAD") and snap.tree == rev_parse(repo, "HEAD^{tree}")
    assert snap.ref == "refs/heads/main"
    assert read_file(snap, "tasks/train/main.py") == b"print('v2')\n"


@pytest.mark.parametrize("rev", ["v1", "v1-annotated", "HEAD~1", "main^", "HEAD^1", "HEAD~1^0"])
def test_reads_a_file_as_it_was_at_an_older_revision(repo: Path, rev: str):
    snap = open_snapshot(repo, rev)
    assert snap.commit == rev_parse(repo, "v1^{commit}")
    assert read_file(snap, "tasks/train/main.py") == b"print('v1')\n"
    assert read_file(snap, "tasks/train/new.py") is None  # added later


def test_revisions_by_commit_id_full_and_abbreviated(repo: Path):
    old = rev_parse(repo, "v1^{commit}")
    assert open_snapshot(repo, old).commit == old
    assert open_snapshot(repo, old[:7]).commit == old
    assert open_snapshot(repo, old[:7]).ref == old[:7]


def test_resolve_revision_answers_with_the_commit_and_ref(repo: Path):
    assert resolve_revision(repo / "tasks", "v1") == (rev_parse(repo, "v1^{commit}"), "refs/tags/v1")
    assert resolve_revision(repo) == (rev_parse(repo, "HEAD"), "refs/heads/main")


def test_ref_names_the_tag_or_branch_read(repo: Path):
    assert open_snapshot(repo, "v1").ref == "refs/tags/v1"
    assert open_snapshot(repo, "main").ref == "refs/heads/main"
    assert open_snapshot(repo, "HEAD~1").ref == "HEAD~1"
    git(repo, "checkout", "-q", "--detach", "HEAD")
    assert open_snapshot(repo).ref == "HEAD"


@pytest.mark.parametrize("rev", ["nope", "HEAD~5", "v1^2", "../../etc/passwd", "deadbeef", ""])
def test_an_unknown_revision_is_a_usage_error_naming_it(repo: Path, rev: str):
    with pytest.raises(GitUsageError, match="not found") as e:
        open_snapshot(repo, rev)
    assert f"'{rev}'" in str(e.value)
    assert e.value.exit_code == 2  # the user must give another revision


def test_a_file_that_is_absent_or_a_folder_reads_as_none(repo: Path):
    snap = open_snapshot(repo)
    assert read_file(snap, "pipelines/missing.yaml") is None
    assert read_file(snap, "tasks/train") is None
    assert read_file(snap, "tasks/train/main.py/deeper") is None


def test_max_bytes_cuts_a_large_file_one_byte_past_the_limit(repo: Path):
    snap = open_snapshot(repo)
    assert read_file(snap, "tasks/train/main.py", max_bytes=4) == b"print"
    assert read_file(snap, "tasks/train/main.py", max_bytes=100) == b"print('v2')\n"


def test_reads_a_bare_clone(repo: Path, tmp_path: Path):
    git(tmp_path, "clone", "-q", "--bare", str(repo), "bare.git")
    snap = open_snapshot(tmp_path / "bare.git", "v1")
    assert snap.repo_root == (tmp_path / "bare.git").resolve()
    assert read_file(snap, "tasks/train/main.py") == b"print('v1')\n"
    assert list_files(open_snapshot(tmp_path / "bare.git"), PIPELINE_GLOBS) == [
        "pipelines/nested/eval.yml",
        "pipelines/train.yaml",
    ]


def test_a_bare_repository_has_no_work_tree_to_snapshot(repo: Path, tmp_path: Path, store):
    git(tmp_path, "clone", "-q", "--bare", str(repo), "bare.git")
    with pytest.raises(GitError, match="bare repository"):
        open_snapshot(tmp_path / "bare.git", worktree=True, store=store)


def test_an_empty_repository_has_no_head_to_read(tmp_path: Path):
    git(tmp_path, "init", "-q")
    with pytest.raises(GitError, match="no commits yet"):
        open_snapshot(tmp_path)


def test_a_missing_object_is_an_access_error_not_a_traceback(repo: Path):
    snap = open_snapshot(repo)
    blob = rev_parse(repo, "HEAD:tasks/train/main.py")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(GitAccessError, match="missing") as e:
        read_file(snap, "tasks/train/main.py")
    assert e.value.exit_code == 3  # the repository must be repaired or fetched, not the command changed


def test_a_path_that_is_not_a_folder_is_an_error(tmp_path: Path):
    with pytest.raises(GitError, match="not a folder"):
        open_snapshot(tmp_path / "nowhere")


# --- pipeline files and folders -------------------------------------------------------------------


def test_lists_the_pipeline_files_the_globs_select(repo: Path):
    snap = open_snapshot(repo)
    assert list_files(snap, PIPELINE_GLOBS) == ["pipelines/nested/eval.yml", "pipelines/train.yaml"]
    assert list_files(snap, ["pipelines/**/*.yaml", "!pipelines/train.yaml"]) == []
    assert list_files(snap, ["**/*.py"]) == ["tasks/train/main.py", "tasks/train/new.py"]
    assert list_files(open_snapshot(repo, "v1"), ["tasks/**"]) == ["tasks/train/main.py"]


def test_a_monorepo_subfolder_is_its_own_pipeline_repository(tmp_path: Path, write):
    git(tmp_path, "init", "-q", "-b", "main")
    write("README.md", "the monorepo\n")
    write("pipelines/top.yaml", "name: top-level, not ours\n")
    write("sub/pipelines/train.yaml", "name: train\n")
    write("sub/tasks/train/main.py", "print('train')\n")
    commit(tmp_path, "monorepo")
    snap = open_snapshot(tmp_path / "sub")
    assert snap.repo_root == tmp_path.resolve() and snap.prefix == "sub"
    assert snap.tree == rev_parse(tmp_path, "HEAD:sub")
    assert read_file(snap, "pipelines/train.yaml") == b"name: train\n"
    assert read_file(snap, "README.md") is None
    assert list_files(snap, PIPELINE_GLOBS) == ["pipelines/train.yaml"]
    assert tree_id(snap, "tasks/train") == rev_parse(tmp_path, "HEAD:sub/tasks/train")
    assert tree_id(snap, "") == tree_id(snap, ".") == snap.tree
    assert tree_id(snap, "pipelines/train.yaml") is None and tree_id(snap, "nope") is None
    assert repository_label(snap) == f"{tmp_path.name}/sub"
    assert repository_label(open_snapshot(tmp_path)) == tmp_path.name


def test_a_subfolder_not_in_the_commit_is_an_error(repo: Path):
    (repo / "drafts").mkdir()
    with pytest.raises(GitError, match="'drafts' is not in revision"):
        open_snapshot(repo / "drafts")


@pytest.fixture
def linked(tmp_path: Path, write) -> Path:
    """A repository whose sub/ is the pipeline repository, with symlinks in and out of it."""
    git(tmp_path, "init", "-q", "-b", "main")
    write("outside/secret.py", "outside the pipeline repository\n")
    write("sub/tasks/train/main.py", "print('train')\n")
    write("sub/pipelines/train.yaml", "name: train\n")
    (tmp_path / "sub/tasks/alias").symlink_to("train")
    (tmp_path / "sub/tasks/up").symlink_to("../tasks/train")
    (tmp_path / "sub/tasks/out").symlink_to("../../outside")
    (tmp_path / "sub/tasks/abs").symlink_to("/etc")
    (tmp_path / "sub/tasks/loop").symlink_to("loop")
    (tmp_path / "sub/pipelines/alias.yaml").symlink_to("train.yaml")
    (tmp_path / "sub/pipelines/out.yaml").symlink_to("../../outside/secret.py")
    commit(tmp_path, "links")
    return tmp_path


@pytest.mark.parametrize(
    "relpath, state",
    [
        ("tasks/train", "dir"),
        ("tasks", "dir"),
        ("tasks/nope", "missing"),
        ("tasks/train/main.py", "not-a-dir"),
        ("tasks/alias", "dir"),  # a symlink to a folder inside
        ("tasks/up", "dir"),
        ("tasks/out", "escapes"),  # a symlink out of the pipeline repository (still in the git repo)
        ("tasks/abs", "escapes"),
        ("tasks/loop", "missing"),
        ("tasks/out/secret.py", "escapes"),
        ("nope/../../x", "escapes"),
        ("tasks/train/main.py/x", "missing"),
    ],
)
def test_code_state_says_whether_a_code_path_is_a_folder_inside(linked: Path, relpath: str, state: str):
    snap = open_snapshot(linked / "sub")
    assert code_state(snap, relpath) == state
    assert code_lookup(snap)(relpath) == state


def test_symlinks_read_through_inside_the_tree_only(linked: Path):
    snap = open_snapshot(linked / "sub")
    assert read_file(snap, "pipelines/alias.yaml") == b"name: train\n"
    assert read_file(snap, "tasks/alias/main.py") == b"print('train')\n"
    assert read_file(snap, "pipelines/out.yaml") is None
    assert list_files(snap, PIPELINE_GLOBS) == ["pipelines/alias.yaml", "pipelines/train.yaml"]
    assert tree_id(snap, "tasks/alias") == rev_parse(linked, "HEAD:sub/tasks/train")


# --- materialise ----------------------------------------------------------------------------------


@pytest.fixture
def shaped(repo: Path, write) -> Path:
    """The repository with an executable, a symlink to a file and one to a folder."""
    script = write("repo/tasks/train/run.sh", "#!/bin/sh\necho run\n")
    script.chmod(0o755)
    (repo / "tasks/train/link.py").symlink_to("main.py")
    (repo / "tasks/latest").symlink_to("train")
    commit(repo, "shapes")
    return repo


def test_materialise_writes_the_tree_as_git_would_check_it_out(shaped: Path, tmp_path: Path):
    snap = open_snapshot(shaped)
    dest = tmp_path / "cache" / snap.tree
    materialise(snap, snap.tree, dest)
    assert files_of(dest) == files_of(shaped)
    assert os.access(dest / "tasks/train/run.sh", os.X_OK)
    assert not os.access(dest / "tasks/train/main.py", os.X_OK)
    assert os.readlink(dest / "tasks/latest") == "train" and (dest / "tasks/latest").is_symlink()
    assert [p.name for p in dest.parent.iterdir()] == [snap.tree]  # no temporary folder left behind


def test_materialise_of_a_subtree_matches_git_archive(shaped: Path, tmp_path: Path):
    snap = open_snapshot(shaped)
    train = tree_id(snap, "tasks/train")
    materialise(snap, train, tmp_path / "train")
    archive = tmp_path / "archive"
    archive.mkdir()
    tar = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD:tasks/train"], cwd=shaped, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(archive)], input=tar, check=True)
    assert files_of(tmp_path / "train") == files_of(archive)


def test_materialise_again_is_a_no_op(shaped: Path, tmp_path: Path):
    snap = open_snapshot(shaped)
    dest = tmp_path / "cache" / snap.tree
    materialise(snap, snap.tree, dest)
    (dest / "marker").write_text("left by the first run")
    materialise(snap, snap.tree, dest)
    assert (dest / "marker").exists()


def test_materialise_needs_a_tree_id(shaped: Path, tmp_path: Path):
    snap = open_snapshot(shaped)
    with pytest.raises(GitError, match="not a tree id"):
        materialise(snap, "tasks/train", tmp_path / "x")
    with pytest.raises(GitError, match="not a tree"):
        materialise(snap, snap.commit, tmp_path / "x")
    with pytest.raises(GitError, match="missing"):
        materialise(snap, "0" * 40, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_materialise_refuses_a_tree_entry_that_would_leave_the_folder(tmp_path: Path, store):
    from dulwich.objects import Blob, Tree

    blob = Blob.from_string(b"boom")
    tree = Tree()
    tree.add(b"..", 0o100644, blob.id)
    store.add_object(blob)
    store.add_object(tree)
    with pytest.raises(GitError, match="cannot be written safely"):
        materialise(store, tree.id.decode(), tmp_path / "out" / "x")
    assert os.listdir(tmp_path / "out") == [] and not (tmp_path / "out" / "boom").exists()


def test_materialise_skips_a_submodule(repo: Path, tmp_path: Path, write):
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    write("lib/lib.py", "x = 1\n")
    commit(lib, "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "tasks/lib")
    commit(repo, "with a submodule")
    snap = open_snapshot(repo)
    assert code_state(snap, "tasks/lib") == "missing"
    materialise(snap, snap.tree, tmp_path / "out")
    assert (tmp_path / "out/.gitmodules").exists() and not (tmp_path / "out/tasks/lib").exists()


# --- the work tree and folders outside git --------------------------------------------------------


def test_a_worktree_snapshot_has_the_uncommitted_edits(repo: Path, store, write, tmp_path: Path):
    write("repo/tasks/train/main.py", "print('v3')\n")  # same size as what is committed
    write("repo/tasks/train/untracked.py", "new\n")
    write("repo/.gitignore", "*.log\nbuild/\n")
    write("repo/tasks/train/debug.log", "ignored\n")
    write("repo/build/out.bin", "ignored folder\n")
    (repo / "pipelines/train.yaml").unlink()
    snap = open_snapshot(repo, worktree=True, store=store)
    assert snap.kind == "worktree" and snap.dirty and snap.commit == rev_parse(repo, "HEAD")
    assert snap.ref == "refs/heads/main" and snap.store == Path(store.path)
    assert read_file(snap, "tasks/train/main.py") == b"print('v3')\n"
    assert read_file(snap, "tasks/train/untracked.py") == b"new\n"
    assert read_file(snap, "tasks/train/new.py") == b"added in v2\n"  # unchanged: read from the repository
    assert read_file(snap, "tasks/train/debug.log") is None
    assert read_file(snap, "build/out.bin") is None
    assert read_file(snap, "pipelines/train.yaml") is None
    materialise(snap, tree_id(snap, "tasks/train"), tmp_path / "train")
    assert sorted(os.listdir(tmp_path / "train")) == ["main.py", "new.py", "untracked.py"]
    git(repo, "add", "-A")
    assert snap.tree == git(repo, "write-tree").strip()  # what git itself makes of the same files


def test_a_clean_worktree_is_the_head_tree(repo: Path, store):
    snap = open_snapshot(repo, worktree=True, store=store)
    assert not snap.dirty and snap.tree == rev_parse(repo, "HEAD^{tree}")


def test_a_tracked_file_stays_though_ignored_and_a_subfolder_gitignore_counts(repo: Path, store, write):
    write("repo/tasks/.gitignore", "*.py\n")
    commit(repo, "ignore python under tasks (already tracked files stay)")
    write("repo/tasks/train/scratch.py", "untracked and ignored\n")
    snap = open_snapshot(repo, worktree=True, store=store)
    assert not snap.dirty and read_file(snap, "tasks/train/main.py") == b"print('v2')\n"
    assert read_file(snap, "tasks/train/scratch.py") is None


def test_a_worktree_snapshot_of_a_subfolder(tmp_path: Path, write, store):
    git(tmp_path, "init", "-q", "-b", "main")
    write("sub/pipelines/train.yaml", "name: train\n")
    write("other/file.txt", "not ours\n")
    commit(tmp_path, "first")
    write("other/file.txt", "changed, but outside the subfolder\n")
    write(".gitignore", "*.log\n")
    write("sub/.gitignore", "scratch/\n")
    write("sub/pipelines/run.log", "ignored by the top folder's .gitignore\n")
    write("sub/scratch/notes.txt", "ignored by the subfolder's .gitignore\n")
    snap = open_snapshot(tmp_path / "sub", worktree=True, store=store)
    assert snap.prefix == "sub" and snap.dirty  # sub/.gitignore is new
    assert read_file(snap, ".gitignore") == b"scratch/\n"
    assert read_file(snap, "pipelines/run.log") is None and read_file(snap, "scratch/notes.txt") is None
    commit(tmp_path, "ignores")
    snap = open_snapshot(tmp_path / "sub", worktree=True, store=store)
    assert not snap.dirty and snap.tree == rev_parse(tmp_path, "HEAD:sub")
    write("sub/pipelines/train.yaml", "name: train2\n")
    snap = open_snapshot(tmp_path / "sub", worktree=True, store=store)
    assert snap.dirty and read_file(snap, "pipelines/train.yaml") == b"name: train2\n"


def test_a_worktree_snapshot_keeps_modes_and_links(shaped: Path, store, tmp_path: Path):
    snap = open_snapshot(shaped, worktree=True, store=store)
    assert not snap.dirty
    (shaped / "tasks/train/main.py").chmod(0o755)
    snap = open_snapshot(shaped, worktree=True, store=store)
    assert snap.dirty
    materialise(snap, snap.tree, tmp_path / "out")
    assert files_of(tmp_path / "out") == files_of(shaped)


def test_a_worktree_snapshot_in_a_repository_with_no_commits(tmp_path: Path, write, store):
    git(tmp_path, "init", "-q", "-b", "main")
    write("pipelines/train.yaml", "name: train\n")
    snap = open_snapshot(tmp_path, worktree=True, store=store)
    assert snap.commit is None and snap.dirty and snap.ref == "refs/heads/main"
    assert read_file(snap, "pipelines/train.yaml") == b"name: train\n"


def test_a_linked_work_tree_is_read_through_its_git_file(repo: Path, tmp_path: Path, store, write):
    git(repo, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "linked"))
    assert (tmp_path / "linked/.git").is_file()
    snap = open_snapshot(tmp_path / "linked")
    assert snap.ref == "refs/heads/feature" and snap.commit == rev_parse(repo, "HEAD")
    write("linked/pipelines/train.yaml", "name: feature\n")
    snap = open_snapshot(tmp_path / "linked", worktree=True, store=store)
    assert snap.dirty and read_file(snap, "pipelines/train.yaml") == b"name: feature\n"


def test_worktree_with_a_revision_is_an_error(repo: Path, store):
    with pytest.raises(GitError, match="on top of HEAD"):
        open_snapshot(repo, "v1", worktree=True, store=store)


def test_a_folder_outside_git_is_snapshotted_unversioned(tmp_path: Path, write, store):
    write("plain/pipelines/train.yaml", "name: train\n")
    script = write("plain/tasks/train/run.sh", "#!/bin/sh\n")
    script.chmod(0o755)
    write("plain/.gitignore", "*.tmp\n")
    write("plain/tasks/train/scratch.tmp", "ignored\n")
    snap = open_snapshot(tmp_path / "plain", store=store)
    assert (snap.kind, snap.commit, snap.ref, snap.dirty) == ("unversioned", None, None, False)
    assert read_file(snap, "pipelines/train.yaml") == b"name: train\n"
    assert list_files(snap, PIPELINE_GLOBS) == ["pipelines/train.yaml"]
    assert code_state(snap, "tasks/train") == "dir"
    materialise(snap, tree_id(snap, "tasks/train"), tmp_path / "out")
    assert files_of(tmp_path / "out") == {"run.sh": ("exec", b"#!/bin/sh\n")}
    materialise(store, snap.tree, tmp_path / "from-store")  # the store alone holds everything
    assert (tmp_path / "from-store/pipelines/train.yaml").read_bytes() == b"name: train\n"
    assert open_snapshot(tmp_path / "plain", store=tmp_path / "store").tree == snap.tree  # same content, same id
    with pytest.raises(GitError, match="not in a git repository"):
        open_snapshot(tmp_path / "plain", "main", store=store)
    with pytest.raises(GitError, match="not in a git repository"):
        changed_paths(snap, None, "HEAD")


def test_an_empty_folder_outside_git_is_snapshotted_as_the_empty_tree(tmp_path: Path, store):
    (tmp_path / "empty/only-an-empty-folder").mkdir(parents=True)
    snap = open_snapshot(tmp_path / "empty", store=store)
    assert (snap.kind, snap.tree) == ("unversioned", "4b825dc642cb6eb9a060e54bf8d69288fbee4904")  # git's empty tree
    assert list_files(snap, PIPELINE_GLOBS) == []
    assert read_file(snap, "pipelines/train.yaml") is None


# --- changed paths --------------------------------------------------------------------------------


def test_changed_paths_between_two_commits(repo: Path, write):
    old = rev_parse(repo, "HEAD")
    write("repo/pipelines/new.yaml", "name: new\n")  # added
    write("repo/tasks/train/main.py", "print('v3')\n")  # modified
    (repo / "tasks/train/new.py").unlink()  # deleted
    git(repo, "mv", "pipelines/nested/eval.yml", "pipelines/eval.yml")  # renamed
    new = commit(repo, "changes")
    assert changed_paths(repo, old, new) == {
        "pipelines/new.yaml",
        "tasks/train/main.py",
        "tasks/train/new.py",
        "pipelines/nested/eval.yml",
        "pipelines/eval.yml",
    }
    assert changed_paths(open_snapshot(repo), "v1", "HEAD~1") == {"tasks/train/main.py", "tasks/train/new.py"}
    assert changed_paths(repo, new, new) == set()


def test_changed_paths_from_nothing_is_every_path(repo: Path):
    every = {
        "pipelines/train.yaml",
        "pipelines/nested/eval.yml",
        "pipelines/notes.txt",
        "tasks/train/main.py",
        "tasks/train/new.py",
    }
    assert changed_paths(repo, None, "HEAD") == every
    assert changed_paths(repo / "tasks", "0" * 40, "HEAD") == every  # a new branch's push event


def test_changed_paths_with_an_unknown_commit_is_an_error(repo: Path, tmp_path: Path):
    with pytest.raises(GitError, match="'f00d' not found"):
        changed_paths(repo, "f00d", "HEAD")
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(GitError, match="not in a git repository"):
        changed_paths(outside, None, "HEAD")


def test_a_snapshot_is_plain_data(repo: Path):
    snap = open_snapshot(repo)
    assert snap == Snapshot(**{f: getattr(snap, f) for f in snap.__dataclass_fields__})
    assert hash(snap) == hash(open_snapshot(repo))
