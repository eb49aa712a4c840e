"""The pipeline data folder's paths and names: where a task finds its folders, here and in Backend.AI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.engine import datafolder

# -- inside a task ---------------------------------------------------------------------------------------------


def test_a_task_with_two_dependencies_gets_their_outputs_as_input1_and_input2_in_dependency_order(tmp_path):
    job = datafolder.job_folder(tmp_path / "state", "20260101-000000-abcdef")
    train = datafolder.outputs_folder(job, "train")
    # `dependencies: [prepare-b, prepare-a]`: the list's order, not the names' order
    inputs = [datafolder.outputs_folder(job, name) for name in ("prepare-b", "prepare-a")]
    vfroot = datafolder.vfroot_folder(job)
    assert datafolder.mounts(train, inputs, vfroot) == [
        (train, "/pipeline/outputs"),
        (train, "/pipeline/output"),  # the seed's spelling, the same folder
        (job / "tasks" / "prepare-b" / "outputs", "/pipeline/input1"),
        (job / "tasks" / "prepare-a" / "outputs", "/pipeline/input2"),
        (job / "vfroot", "/pipeline/vfroot"),
    ]
    assert datafolder.mounted_variables(2) == {
        "PIPELINE_OUTPUT_ROOT": "/pipeline/outputs",
        "PIPELINE_VFROOT": "/pipeline/vfroot",
        "PIPELINE_INPUT1": "/pipeline/input1",
        "PIPELINE_INPUT2": "/pipeline/input2",
        "PIPELINE_INPUT_ROOT": "/pipeline/input1",
    }


def test_the_variables_name_the_real_folders_as_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = datafolder.variables(Path("out"), [Path("in1"), tmp_path / "in2"], "/shared")
    assert env == {
        "PIPELINE_OUTPUT_ROOT": str(tmp_path / "out"),
        "PIPELINE_VFROOT": "/shared",
        "PIPELINE_INPUT1": str(tmp_path / "in1"),
        "PIPELINE_INPUT2": str(tmp_path / "in2"),
        "PIPELINE_INPUT_ROOT": str(tmp_path / "in1"),
    }
    assert all(datafolder.VARIABLE.fullmatch(name) for name in env)


def test_without_dependencies_there_is_no_input_root():
    assert set(datafolder.mounted_variables(0)) == {"PIPELINE_OUTPUT_ROOT", "PIPELINE_VFROOT"}
    assert [target for _, target in datafolder.mounts(Path("o"), [], Path("v"))] == [
        "/pipeline/outputs",
        "/pipeline/output",
        "/pipeline/vfroot",
    ]


def test_only_the_names_the_folder_sets_are_reserved():
    for name in (
        "PIPELINE_OUTPUT_ROOT",
        "PIPELINE_INPUT1",
        "PIPELINE_INPUT12",
        "PIPELINE_INPUT_ROOT",
        "PIPELINE_VFROOT",
    ):
        assert datafolder.VARIABLE.fullmatch(name)
    for name in ("PIPELINE_NAME", "PIPELINE_INPUT", "PIPELINE_OUTPUT", "MY_PIPELINE_VFROOT", "PIPELINE_INPUTX"):
        assert not datafolder.VARIABLE.fullmatch(name)


# -- on this machine -------------------------------------------------------------------------------------------


def test_a_jobs_folders_live_under_the_state_folder(tmp_path):
    job = datafolder.job_folder(tmp_path, "20260101-000000-abcdef")
    assert job == tmp_path / "data" / "20260101-000000-abcdef"
    assert datafolder.outputs_folder(job, "train") == job / "tasks" / "train" / "outputs"
    assert datafolder.vfroot_folder(job) == job / "vfroot"
    assert datafolder.work_folder(job, "a" * 40) == job / "work" / ("a" * 40)
    assert datafolder.tree_folder(tmp_path, "a" * 40) == tmp_path / "trees" / ("a" * 40)


def test_reused_outputs_are_copied_into_the_new_jobs_folder(tmp_path):
    old, new = tmp_path / "data" / "old", tmp_path / "data" / "new"
    outputs = datafolder.outputs_folder(old, "prepare")
    (outputs / "nested").mkdir(parents=True)
    (outputs / "nested" / "data.txt").write_text("prepared\n")
    (outputs / "link").symlink_to("nested/data.txt")
    assert datafolder.copy_outputs("prepare", old, new) is True
    copied = datafolder.outputs_folder(new, "prepare")
    assert (copied / "nested" / "data.txt").read_text() == "prepared\n"
    assert (copied / "link").is_symlink() and (copied / "link").read_text() == "prepared\n"  # kept a link
    assert (outputs / "nested" / "data.txt").read_text() == "prepared\n"  # the old job keeps its own


def test_a_task_that_left_no_outputs_copies_nothing(tmp_path):
    assert datafolder.copy_outputs("skipped", tmp_path / "old", tmp_path / "new") is False
    assert not (tmp_path / "new").exists()


# -- in Backend.AI ---------------------------------------------------------------------------------------------


def test_the_vfolder_holds_each_jobs_folder_and_each_code_tree():
    assert datafolder.job_in_folder("20260101-000000-abcdef") == "jobs/20260101-000000-abcdef"
    job = datafolder.job_in_folder("J")
    assert f"{job}/{datafolder.task_outputs('train')}" == "jobs/J/tasks/train/outputs"
    assert f"{job}/{datafolder.JOB_VFROOT}" == "jobs/J/vfroot"
    assert datafolder.code_in_folder("b" * 40) == "code/" + "b" * 40
    assert datafolder.FOLDER_MOUNT == "/pipeline/ftg-folder"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\0b"])
def test_a_name_that_is_not_one_folder_is_refused(bad):
    with pytest.raises(ValueError, match="cannot name a folder in the pipeline data folder"):
        datafolder.job_in_folder(bad)
    with pytest.raises(ValueError, match="cannot name a folder in the pipeline data folder"):
        datafolder.code_in_folder(bad)


def test_folder_names_are_deterministic_readable_and_distinct():
    name = datafolder.folder_name("/home/me/examples-repo.git", "train model")
    assert name == datafolder.folder_name("/home/me/examples-repo.git", "train model")
    assert re.fullmatch(r"ftg-examples-repo-train-model-[0-9a-f]{10}", name)
    assert (
        len(
            {
                name,
                datafolder.folder_name("/other/examples-repo.git", "train model"),
                datafolder.folder_name("/home/me/examples-repo.git", "train-model"),
            }
        )
        == 3
    )


@given(st.text(max_size=300), st.text(max_size=300))
def test_any_repository_and_pipeline_make_a_valid_folder_name(repository, pipeline):
    name = datafolder.folder_name(repository, pipeline)
    assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) and not name.startswith(".")
