"""Checks across the pipeline files of one repository: none found, or two with the same name."""

from __future__ import annotations

from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.repository import check_repository
from fasttrack_gitops.engine.workspace import open_repository

GLOBS = ["pipelines/**/*.yaml", "pipelines/**/*.yml"]


def pipeline_file(name: str, extra_lines: int = 0) -> bytes:
    return ("# comment\n" * extra_lines + f"version: '1'\nname: {name}\ntasks:\n  - name: a\n    command: x\n").encode()


def test_no_pipeline_files_is_an_error_naming_the_globs():
    (d,) = check_repository(".", GLOBS, [])
    assert (d.code, d.severity, d.file, d.line, d.column) == ("FT301", "error", ".", 1, 1)
    assert "no pipeline files in .: nothing matches pipelines/**/*.yaml, pipelines/**/*.yml" in d.message
    assert ".fasttrack.yaml" in d.message


def test_no_pipeline_files_names_the_repository_label():
    (d,) = check_repository("ml-repo", ["ml/*.yaml"], [])
    assert d.file == "ml-repo"
    assert "no pipeline files in ml-repo: nothing matches ml/*.yaml" in d.message
    (d,) = check_repository("", GLOBS, [])
    assert d.file == "."


def test_two_files_with_the_same_pipeline_name():
    first = check_pipeline(pipeline_file("train"), "pipelines/a.yaml")
    second = check_pipeline(pipeline_file("train", extra_lines=2), "pipelines/b.yaml")
    (d,) = check_repository(".", GLOBS, [first, second])
    assert (d.code, d.severity, d.file, d.line, d.column) == ("FT302", "error", "pipelines/b.yaml", 4, 7)
    assert "pipeline name 'train' is already used by pipelines/a.yaml" in d.message
    assert d.path == "$.name"


def test_distinct_names_are_fine():
    results = [check_pipeline(pipeline_file(n), f"pipelines/{n}.yaml") for n in ("train", "serve", "eval")]
    assert check_repository(".", GLOBS, results) == []


def test_files_that_did_not_load_are_skipped():
    broken = check_pipeline(b"name: [train\n", "pipelines/broken.yaml")
    nameless = check_pipeline(b"version: '1'\ntasks: []\n", "pipelines/nameless.yaml")
    listy = check_pipeline(b"- a\n", "pipelines/list.yaml")
    good = check_pipeline(pipeline_file("train"), "pipelines/good.yaml")
    assert broken.document is None
    assert check_repository(".", GLOBS, [broken, nameless, listy, good]) == []


def test_a_name_used_three_times_is_reported_at_the_second_and_third():
    results = [check_pipeline(pipeline_file("same"), f"pipelines/{i}.yaml") for i in range(3)]
    found = check_repository(".", GLOBS, results)
    assert [(d.code, d.file) for d in found] == [("FT302", "pipelines/1.yaml"), ("FT302", "pipelines/2.yaml")]
    assert all("already used by pipelines/0.yaml" in d.message for d in found)


def test_a_repository_on_disk_with_a_copied_pipeline(write, tmp_path):
    write("pipelines/train.yaml", pipeline_file("train").decode())
    write("pipelines/nested/train-copy.yml", pipeline_file("train", extra_lines=1).decode())
    write("pipelines/notes.txt", "not a pipeline")
    repo = open_repository(tmp_path, ".")
    files = repo.pipeline_files()
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "pipelines/nested/train-copy.yml",
        "pipelines/train.yaml",
    ]
    results = [check_pipeline(f.read_bytes(), repo.display(f)) for f in files]
    (d,) = check_repository(repo.label, repo.pipeline_globs, results)
    assert (d.code, d.file, d.line, d.column) == ("FT302", "pipelines/train.yaml", 2, 7)
    assert "already used by pipelines/nested/train-copy.yml" in d.message


def test_a_repository_on_disk_without_pipelines(write, tmp_path):
    write("README.md", "# nothing here\n")
    write(".fasttrack.yaml", "pipelines:\n  - 'ml/**/*.yaml'\n")
    repo = open_repository(tmp_path, "my-repo")
    assert repo.diagnostics == [] and repo.pipeline_files() == []
    (d,) = check_repository(repo.label, repo.pipeline_globs, [])
    assert (d.code, d.file) == ("FT301", "my-repo")
    assert "nothing matches ml/**/*.yaml" in d.message
