"""The batch session an attempt asks for: the task's settings, the folders, the layout script."""

from __future__ import annotations

from pathlib import Path

from engine.executors.backendai import fixtures
from engine.executors.backendai.fixtures import FOLDER, JOB, TREE

from fasttrack_gitops.core.pipeline.model import Mount, Resources
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec, session_name
from fasttrack_gitops.engine.executors.backendai.task_spec import session_spec

make_spec = fixtures.make_spec  # the fixture these tests use


def test_the_session_carries_the_task_the_folders_and_the_layout(make_spec):
    spec = make_spec(
        "python train.py",
        task="train",
        dependencies=("prep",),
        project="research",
        scaling_group="gpu",
        cluster_mode="multi-node",
        cluster_size=2,
        resources=Resources(cpu=2, mem=8 << 30, shmem=1 << 30, accelerators=(("cuda.shares", 0.5),)),
        mounts=(Mount("datasets", "data"), Mount("models")),
        env={"A": "1", "PIPELINE_VFROOT": "mine"},
        inputs=(Path("/x/prep"),),
        number=3,
    )
    made = session_spec(spec, FOLDER, TREE)
    assert isinstance(made, SessionSpec) and made.name == session_name(JOB, "train", 3)
    assert (made.image, made.group, made.scaling_group, made.cluster_mode, made.cluster_size) == (
        "python",
        "research",
        "gpu",
        "multi-node",
        2,
    )
    assert made.resources == {"cpu": 2, "mem": "8g", "cuda.shares": 0.5} and made.resource_opts == {"shmem": "1g"}
    assert made.mounts == ("datasets", "models", FOLDER)
    assert made.mount_map == {"datasets": "data", FOLDER: "/pipeline/ftg-folder"}
    assert made.environ == {
        "A": "1",
        "PIPELINE_OUTPUT_ROOT": "/pipeline/outputs",
        "PIPELINE_VFROOT": "/pipeline/vfroot",
        "PIPELINE_INPUT1": "/pipeline/input1",
        "PIPELINE_INPUT_ROOT": "/pipeline/input1",
        "FTG_TASK_COMMAND": "python train.py",
    }
    assert "python train.py" not in made.startup_command and "rm -rf" in made.startup_command  # attempt 3
