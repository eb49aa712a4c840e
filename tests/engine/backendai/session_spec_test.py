"""A batch session's spec, name and create body, as each manager version would take them: no server needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.engine.backendai.session_spec import NAME_PATTERN, SessionSpec, batch_session_body, session_name
from fasttrack_gitops.engine.backendai.versions import ServerInfo


def spec(command: str = "echo hi", name: str = "ftg-test-task-1", **fields) -> SessionSpec:
    fields.setdefault("resources", {"cpu": 1, "mem": "256m"})
    return SessionSpec(name=name, image="python", startup_command=command, **fields)


# -- names -----------------------------------------------------------------------------------------


def test_session_names_are_deterministic_readable_and_distinct():
    name = session_name("job-42", "train", 1)
    assert name == session_name("job-42", "train", 1) and NAME_PATTERN.match(name)
    assert name.startswith("ftg-job-42-train-1-")
    others = {
        session_name("job-42", "train", 2),
        session_name("job-43", "train", 1),
        session_name("job-42", "train x", 1),
        session_name("job-42", "train-x", 1),
    }
    assert len(others | {name}) == 5  # "train x" and "train-x" fold alike, the hash tells them apart


def test_long_unicode_task_names_fit_the_managers_pattern():
    task = "전처리 — données d'entraînement ✓ " * 10
    name = session_name("0f" * 20, task, 12)
    assert NAME_PATTERN.match(name) and len(name) <= 64
    assert name == session_name("0f" * 20, task, 12)
    assert session_name("j", "ë", 1) != session_name("j", "e", 1)


@given(st.text(max_size=100), st.text(max_size=200), st.integers(min_value=0, max_value=10**6))
def test_any_job_task_and_attempt_make_a_valid_name(job, task, attempt):
    assert NAME_PATTERN.match(session_name(job, task, attempt))


# -- the create body, by server --------------------------------------------------------------------

SERVER_23_09 = ServerInfo("http://m", "v7.20230615", "23.09.10", "v7.20230615")
SERVER_24_03 = ServerInfo("http://m", "v8.20240315", "24.03.5", "v8.20240315")
SERVER_25_15 = ServerInfo("http://m", "v9.20250722", "25.15.2", "v9.20250722")


def test_the_body_carries_the_task_and_leaves_out_what_the_server_cannot_take():
    task = spec(
        "python run.py",
        resources={"cpu": 2, "mem": "8g", "cuda.shares": "0.5"},
        resource_opts={"shmem": "1g"},
        scaling_group="gpu",
        group="research",
        environ={"A": "1"},
        mounts=("data", "pipe"),
        mount_map={"pipe": "/pipeline"},
        mount_permissions={"data": "ro"},
        batch_timeout=600,
        tag="job-42",
    )
    body, dropped = batch_session_body(task, SERVER_23_09)
    assert body == {
        "name": "ftg-test-task-1",
        "image": "python",
        "type": "batch",
        "enqueueOnly": True,
        "startupCommand": "python run.py",
        "cluster_mode": "single-node",
        "cluster_size": 1,
        "group": "research",
        "tag": "job-42",
        "config": {
            "resources": {"cpu": 2, "mem": "8g", "cuda.shares": "0.5"},
            "resource_opts": {"shmem": "1g"},
            "scaling_group": "gpu",
            "environ": {"A": "1"},
            "mounts": ["data", "pipe"],
            "mount_map": {"pipe": "/pipeline"},
        },
    }
    assert dropped == ["mount_permissions", "batch_timeout"]
    body, dropped = batch_session_body(task, SERVER_24_03)
    assert body["config"]["mount_options"] == {"data": {"type": "bind", "permission": "ro"}}
    assert "batch_timeout" not in body and dropped == ["batch_timeout"]
    body, dropped = batch_session_body(task, SERVER_25_15)
    assert body["batch_timeout"] == 600 and "mount_options" in body["config"] and dropped == []


def test_a_spec_refuses_what_the_manager_would_refuse():
    for bad in (
        {"name": "a b"},
        {"resources": {"shmem": "1g"}},
        {"environ": {"A": 1}},
        {"mount_map": {"x": "/x"}},
        {"cluster_mode": "mesh"},
    ):
        with pytest.raises(ValueError):
            spec(**({"name": "ftg-test-task-1"} | bad))
    with pytest.raises(ValueError):
        spec("   ")
