"""The repository on disk: which folder is the root, which files are pipelines, what a code: path names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import MINIMAL, cannot_run, git

from fasttrack_gitops.core.pipeline.yamlsource import Limits
from fasttrack_gitops.engine.workspace import DEFAULT_PIPELINE_GLOBS, Repository, find_root, open_repository, read_bytes


@pytest.fixture
def root(tmp_path) -> Path:
    """A folder with no .git or .fasttrack.yaml above it, so find_root's answers come from the test alone."""
    for folder in (tmp_path, *tmp_path.parents):
        if (folder / ".git").exists() or (folder / ".fasttrack.yaml").exists():
            cannot_run(f"{folder} holds a .git or .fasttrack.yaml above the test folder")
    return tmp_path.resolve()


def touch(path: Path, text: str = MINIMAL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(repo: Repository) -> list[str]:
    return [p.relative_to(repo.root).as_posix() for p in repo.pipeline_files()]


# --- find_root -----------------------------------------------------------------------


def test_find_root_prefers_the_folder_with_settings_over_the_git_root(root):
    (root / ".git").mkdir()
    touch(root / "ml" / ".fasttrack.yaml", "pipelines: [pipelines/*.yaml]\n")
    pipeline = touch(root / "ml" / "pipelines" / "p.yaml")
    assert find_root(pipeline)[0] == root / "ml"


def test_find_root_settings_and_git_in_one_folder(root):
    (root / ".git").mkdir()
    touch(root / ".fasttrack.yaml", "pipelines: [pipelines/*.yaml]\n")
    assert find_root(touch(root / "pipelines" / "p.yaml"))[0] == root


def test_find_root_finds_the_git_root_of_a_real_repository(root):
    pipeline = touch(root / "repo" / "deploy" / "pipelines" / "p.yaml")
    git(root / "repo", "init", "-q")
    git(root / "repo", "add", ".")
    git(root / "repo", "commit", "-q", "-m", "pipeline")
    assert find_root(pipeline)[0] == root / "repo"


def test_find_root_accepts_a_git_file_as_in_worktrees_and_submodules(root):
    touch(root / "wt" / ".git", "gitdir: /somewhere/else\n")
    assert find_root(touch(root / "wt" / "pipelines" / "p.yaml"))[0] == root / "wt"


def test_find_root_without_settings_or_git_is_the_files_own_folder(root):
    pipeline = touch(root / "loose" / "p.yaml")
    assert find_root(pipeline)[0] == root / "loose"


def test_find_root_labels_the_root_relative_to_the_current_folder(root, monkeypatch):
    touch(root / "repo" / ".fasttrack.yaml", "pipelines: [pipelines/*.yaml]\n")
    pipeline = touch(root / "repo" / "pipelines" / "p.yaml")
    monkeypatch.chdir(root / "repo")
    assert find_root(pipeline)[1] == "."
    monkeypatch.chdir(root)
    assert find_root(pipeline)[1] == "repo"
    (root / "away").mkdir()
    monkeypatch.chdir(root / "away")
    assert find_root(pipeline)[1] == (root / "repo").as_posix()  # outside the current folder: absolute


# --- pipeline_files ----------------------------------------------------------------------


def test_default_globs_select_yaml_and_yml_under_pipelines(root):
    for rel in ("pipelines/a.yaml", "pipelines/sub/b.yml", "pipelines/readme.md", "other/c.yaml", "top.yaml"):
        touch(root / rel)
    repo = Repository(root=root, label=".")
    assert repo.pipeline_globs == DEFAULT_PIPELINE_GLOBS
    assert names(repo) == ["pipelines/a.yaml", "pipelines/sub/b.yml"]


def test_pipeline_files_are_sorted(root):
    for rel in ("pipelines/c.yaml", "pipelines/a.yaml", "pipelines/b.yaml", "pipelines/a0.yaml"):
        touch(root / rel)
    files = Repository(root=root, label=".").pipeline_files()
    assert files == sorted(files)
    assert [p.name for p in files] == ["a.yaml", "a0.yaml", "b.yaml", "c.yaml"]


def test_only_the_globs_fixed_folders_are_walked(root, monkeypatch):
    touch(root / "flows" / "a.yaml")
    touch(root / "big" / "deep" / "x.yaml")
    walked: list[Path] = []
    real_walk = os.walk

    def recording_walk(top, *args, **kwargs):
        walked.append(Path(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", recording_walk)
    repo = Repository(root=root, label=".", pipeline_globs=("flows/*.yaml", "!flows/skip.yaml"))
    assert names(repo) == ["flows/a.yaml"]
    assert walked == [root / "flows"]


def test_git_and_tool_folders_are_skipped_even_by_a_catch_all_glob(root):
    for rel in ("a.yaml", ".git/hooks/b.yaml", "node_modules/pkg/c.yaml", "sub/.venv/d.yaml", "sub/e.yaml"):
        touch(root / rel)
    repo = Repository(root=root, label=".", pipeline_globs=("**/*.yaml",))
    assert names(repo) == ["a.yaml", "sub/e.yaml"]


def test_exclusions_remove_files_and_the_last_match_wins(root):
    for rel in ("pipelines/a.yaml", "pipelines/drafts/x.yaml", "pipelines/drafts/keep.yaml"):
        touch(root / rel)
    repo = Repository(root=root, label=".", pipeline_globs=("pipelines/**/*.yaml", "!pipelines/drafts/**"))
    assert names(repo) == ["pipelines/a.yaml"]
    repo.pipeline_globs += ("pipelines/drafts/keep.yaml",)
    assert names(repo) == ["pipelines/a.yaml", "pipelines/drafts/keep.yaml"]


def test_a_glob_whose_folder_does_not_exist_finds_nothing(root):
    assert Repository(root=root, label=".", pipeline_globs=("flows/*.yaml",)).pipeline_files() == []


def test_display_prefixes_the_label_the_user_wrote(root):
    path = root / "pipelines" / "a.yaml"
    assert Repository(root=root, label=".").display(path) == "pipelines/a.yaml"
    assert Repository(root=root, label="repo/").display(path) == "repo/pipelines/a.yaml"


# --- .fasttrack.yaml -------------------------------------------------------------------------


def test_open_repository_applies_the_settings_globs(root):
    touch(root / ".fasttrack.yaml", 'pipelines: ["flows/*.yaml"]\n')
    touch(root / "flows" / "a.yaml")
    repo = open_repository(root, ".")
    assert repo.diagnostics == []
    assert repo.pipeline_globs == ("flows/*.yaml",)
    assert names(repo) == ["flows/a.yaml"]


def test_open_repository_without_settings_uses_the_defaults(root):
    repo = open_repository(root, ".")
    assert (repo.pipeline_globs, repo.diagnostics) == (DEFAULT_PIPELINE_GLOBS, [])


def test_invalid_settings_are_diagnostics_and_the_defaults_stay(root):
    touch(root / ".fasttrack.yaml", 'pipelines: ["flows/*.yaml"]\nexclude: [x]\n')
    repo = open_repository(root, "repo")
    assert [(d.code, d.file, d.line) for d in repo.diagnostics] == [("FT101", "repo/.fasttrack.yaml", 2)]
    assert repo.pipeline_globs == DEFAULT_PIPELINE_GLOBS


def test_settings_that_are_not_yaml_are_diagnostics(root):
    touch(root / ".fasttrack.yaml", "pipelines: [unclosed\n")
    repo = open_repository(root, ".")
    assert [d.code for d in repo.diagnostics] == ["FT004"]


# --- code_lookup ---------------------------------------------------------------------------


@pytest.fixture
def lookup(root):
    (root / "tasks" / "train").mkdir(parents=True)
    touch(root / "tasks" / "train.py", "print()\n")
    (root / "outside").mkdir()
    repo_root = root / "repo"
    repo_root.mkdir()
    (repo_root / "tasks").symlink_to(root / "tasks", target_is_directory=True)  # leads out
    (repo_root / "real").mkdir()
    (repo_root / "real" / "job").mkdir()
    (repo_root / "alias").symlink_to("real/job", target_is_directory=True)  # stays inside
    touch(repo_root / "README", "hi\n")
    return Repository(root=repo_root, label=".").code_lookup()


@pytest.mark.parametrize(
    "relpath, state",
    [
        ("real/job", "dir"),
        ("real", "dir"),
        (".", "dir"),
        ("alias", "dir"),
        ("real/nope", "missing"),
        ("README/sub", "missing"),
        ("README", "not-a-dir"),
        ("tasks", "escapes"),
        ("tasks/train", "escapes"),
        ("tasks/train.py", "escapes"),
    ],
)
def test_code_lookup_states(lookup, relpath, state):
    assert lookup(relpath) == state


def test_code_lookup_works_with_a_relative_root(root, monkeypatch):
    (root / "repo" / "tasks" / "train").mkdir(parents=True)
    monkeypatch.chdir(root)
    lookup = Repository(root=Path("repo"), label="repo").code_lookup()
    assert (lookup("tasks/train"), lookup("tasks/other")) == ("dir", "missing")


# --- read_bytes --------------------------------------------------------------------------------


def test_read_bytes_returns_the_bytes(root):
    path = touch(root / "p.yaml")
    assert read_bytes(path, "p.yaml", Limits()) == MINIMAL.encode()


def test_read_bytes_refuses_a_file_over_the_limit_without_reading_it(root):
    path = touch(root / "p.yaml", "x" * 100)
    found = read_bytes(path, "p.yaml", Limits(max_bytes=10))
    assert found.code == "FT002"
    assert "100 bytes, over the 10 bytes limit" in found.message


def test_read_bytes_of_a_fifo_is_FT001_not_a_hang(root):
    fifo = root / "p.yaml"
    os.mkfifo(fifo)
    found = read_bytes(fifo, "p.yaml", Limits())
    assert found.code == "FT001"
    assert "not a regular file" in found.message


def test_read_bytes_of_a_missing_file_is_FT001(root):
    d = read_bytes(root / "gone.yaml", "shown/gone.yaml", Limits())
    assert (d.code, d.file, d.line, d.column) == ("FT001", "shown/gone.yaml", 1, 1)
    assert "cannot read the file" in d.message
