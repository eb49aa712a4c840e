"""Validating a repository on disk: what the Action reports about its checkout, and the Report `validate` prints.

`validate PATH` as a user runs it is tested in tests/commands/validate_test.py.
"""

from __future__ import annotations

from conftest import MINIMAL

from fasttrack_gitops.core.pipeline.yamlsource import Limits
from fasttrack_gitops.engine.validation import validate_paths, validate_repository

BROKEN = MINIMAL.replace("dependencies: [prepare]", "dependencies: [prepar]")


def test_a_repository_is_validated_with_paths_relative_to_its_root(write, tmp_path):
    write("pipelines/a.yaml", MINIMAL)
    write("pipelines/deep/b.yaml", BROKEN.replace("name: demo", "name: b"))

    report = validate_repository(tmp_path)

    assert [(d.code, d.file, d.line) for d in report.diagnostics] == [("FT103", "pipelines/deep/b.yaml", 7)]
    assert [(f["file"], f["pipeline"], f["valid"], f["errors"]) for f in report.files] == [
        ("pipelines/a.yaml", "demo", True, 0),
        ("pipelines/deep/b.yaml", "b", False, 1),
    ]
    assert [p.name for p in report.pipelines] == ["demo"]


def test_the_globs_given_replace_the_repositorys_settings(write, tmp_path):
    write(".fasttrack.yaml", 'pipelines: ["flows/*.yaml"]\n')
    write("flows/a.yaml", MINIMAL)
    write("elsewhere/b.yaml", MINIMAL.replace("name: demo", "name: b"))

    assert [f["file"] for f in validate_repository(tmp_path).files] == ["flows/a.yaml"]
    assert [f["file"] for f in validate_repository(tmp_path, globs=["elsewhere/*.yaml"]).files] == ["elsewhere/b.yaml"]


def test_a_repository_without_pipelines_is_FT301_on_its_root(tmp_path):
    report = validate_repository(tmp_path)

    assert [(d.code, d.file) for d in report.diagnostics] == [("FT301", ".")]
    assert report.files == []


def test_broken_settings_are_reported_beside_the_pipelines(write, tmp_path):
    write(".fasttrack.yaml", "pipelnes: []\n")
    write("pipelines/a.yaml", MINIMAL)

    report = validate_repository(tmp_path)

    assert [(d.code, d.file) for d in report.diagnostics] == [("FT101", ".fasttrack.yaml")]
    assert [f["file"] for f in report.files] == ["pipelines/a.yaml"]


def test_files_of_one_repository_are_checked_together_once(write, tmp_path):
    a = write("pipelines/a.yaml", MINIMAL)
    write("pipelines/b.yaml", MINIMAL)

    report = validate_paths([str(tmp_path), str(a)], Limits())

    assert len(report.files) == 2  # a.yaml, reached from the folder and by name, is checked once
    assert [d.code for d in report.diagnostics] == ["FT302"]  # b.yaml reuses a.yaml's pipeline name
