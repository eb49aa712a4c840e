"""The job model: task states, the job's status, what lets dependents run, freezing and re-running a job."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import MINIMAL

from fasttrack_gitops.core.job import (
    SKIP_REQUESTED,
    Attempt,
    JobStatus,
    Outcome,
    PipelineJob,
    TaskInstance,
    TaskState,
    conclusion_status,
    ended,
    freeze,
    job_status,
    new_job_id,
    rerun,
    satisfies_dependents,
    spec_id,
    spec_of,
    tolerated_failures,
)
from fasttrack_gitops.core.pipeline import check_pipeline

S = TaskState


def pipeline(text: str):
    result = check_pipeline(textwrap.dedent(text).encode("utf-8"), "p.yaml")
    assert result.pipeline is not None, result.diagnostics
    return result.pipeline


def instances(**states: TaskState) -> dict[str, TaskInstance]:
    return {name: TaskInstance(name, state) for name, state in states.items()}


def freeze_at(p, *, now: float = 1_700_000_000.0, **overrides) -> PipelineJob:
    kwargs = {
        "pipeline_path": "pipelines/p.yaml",
        "repository": "/repo",
        "source": "commit",
        "commit": "c0ffee",
        "ref": "refs/heads/main",
        "tree": "root-tree",
        "code_trees": {},
    }
    kwargs.update(overrides)
    return freeze(p, now=now, **kwargs)


# prepare -> train; `report` runs after train and may fail without failing the job.
THREE = """\
version: "26.4.4"
name: three
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    command: echo train
  - name: report
    dependencies: [train]
    continue_on_failure: true
    command: echo report
"""

# A pipeline that uses every field the frozen spec must carry.
RICH = """\
version: 26.4
name: rich
description: every field
ownership:
  domain: default
  scope: user
environment:
  envs:
    SEED: "42"
    FLAG: true
    EMPTY:
params: []
on:
  push:
    branches: [main]
    paths: ["tasks/**"]
  schedule:
    - cron: "0 3 * * *"
  manual: {}
concurrency:
  group: rich
  cancel_in_progress: true
notify:
  slack:
    channel: "#ml"
tasks:
  - name: prepare
    type: Custom Task
    description: make data
    code: tasks/./prepare/
    command: python3 main.py
    environment:
      project: default
      scaling-group: default
      image: cr.backend.ai/multiarch/python:3.10-ubuntu20.04
      envs: {ROWS: 600}
    resources: {cpu: 0.5, mem: 1536m, cuda.shares: 1.5}
    resource_opts: {shmem: 256m}
    mounts: [data, models:/models]
    timeout: 1h30m
    cache: true
    retry: {max_attempts: 3, delay: 10s, backoff: 2}
  - name: train
    dependencies: [prepare]
    skip: true
    continue_on_failure: true
    command: echo train
    retry: {max_attempts: 2, delay: 5}
"""


# --- job_status ---------------------------------------------------------------------------------------------


def test_a_job_whose_tasks_are_all_pending_is_pending():
    p = pipeline(THREE)
    assert job_status(p, {}, runner_alive=True) == JobStatus.PENDING
    assert (
        job_status(p, instances(prepare=S.PENDING, train=S.PENDING, report=S.PENDING), runner_alive=True)
        == JobStatus.PENDING
    )


@pytest.mark.parametrize(
    "tasks",
    [
        instances(prepare=S.SUBMITTED),
        instances(prepare=S.RUNNING),
        instances(prepare=S.WAITING),
        instances(prepare=S.SUCCEEDED),
        instances(prepare=S.SUCCEEDED, train=S.RUNNING),
        instances(prepare=S.SUCCEEDED, train=S.FAILED),  # report has not ended yet
    ],
    ids=["submitted", "running", "waiting", "one-succeeded", "second-running", "not-all-ended"],
)
def test_a_job_with_some_task_started_and_not_all_ended_is_running(tasks):
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.RUNNING


def test_a_pending_task_that_already_had_an_attempt_counts_as_started():
    attempt = Attempt(1, started_at=10.0, ended_at=11.0, exit_code=1, outcome=Outcome.FAILED)
    tasks = {"prepare": TaskInstance("prepare", S.PENDING, attempts=(attempt,))}
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.RUNNING


@pytest.mark.parametrize(
    "tasks",
    [
        {},
        instances(prepare=S.RUNNING),
        instances(prepare=S.SUCCEEDED, train=S.SUBMITTED),
        instances(prepare=S.SUCCEEDED, train=S.SUCCEEDED),
    ],
    ids=["nothing-started", "running", "submitted", "one-left"],
)
def test_a_job_that_has_not_ended_without_a_live_runner_is_interrupted(tasks):
    assert job_status(pipeline(THREE), tasks, runner_alive=False) == JobStatus.INTERRUPTED


def test_a_job_whose_tasks_all_succeeded_succeeded():
    tasks = instances(prepare=S.SUCCEEDED, train=S.SUCCEEDED, report=S.SUCCEEDED)
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.SUCCEEDED


def test_a_failed_task_without_continue_on_failure_fails_the_job():
    tasks = instances(prepare=S.SUCCEEDED, train=S.FAILED, report=S.SKIPPED)
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.FAILED
    assert tolerated_failures(pipeline(THREE), tasks) == []


def test_failures_of_continue_on_failure_tasks_only_are_a_success_with_tolerated_failures():
    p = pipeline(THREE)
    tasks = instances(prepare=S.SUCCEEDED, train=S.SUCCEEDED, report=S.FAILED)
    assert job_status(p, tasks, runner_alive=True) == JobStatus.SUCCEEDED
    assert tolerated_failures(p, tasks) == ["report"]


def test_tolerated_failures_lists_every_continue_on_failure_task_that_failed_in_file_order():
    p = pipeline("""\
        version: "1"
        name: p
        tasks:
          - {name: z, command: z, continue_on_failure: true}
          - {name: a, command: a, continue_on_failure: true}
          - {name: ok, command: ok, continue_on_failure: true}
        """)
    tasks = instances(z=S.FAILED, a=S.FAILED, ok=S.SUCCEEDED)
    assert conclusion_status(p, tasks) == JobStatus.SUCCEEDED
    assert tolerated_failures(p, tasks) == ["z", "a"]


@pytest.mark.parametrize(
    "tasks",
    [
        instances(prepare=S.CANCELLED, train=S.SKIPPED, report=S.SKIPPED),
        instances(prepare=S.SUCCEEDED, train=S.CANCELLED, report=S.SUCCEEDED),
        instances(prepare=S.FAILED, train=S.CANCELLED, report=S.SKIPPED),  # cancelled wins over failed
        instances(prepare=S.SUCCEEDED, train=S.SUCCEEDED, report=S.CANCELLED),  # even a continue_on_failure task
    ],
    ids=["first", "middle", "with-a-failure", "continue-on-failure-task"],
)
def test_a_job_with_any_cancelled_task_is_cancelled(tasks):
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.CANCELLED


def test_a_job_whose_tasks_were_all_skipped_succeeded():
    tasks = instances(prepare=S.SKIPPED, train=S.SKIPPED, report=S.SKIPPED)
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "states, expected",
    [
        ((S.SUCCEEDED, S.SUCCEEDED, S.SUCCEEDED), JobStatus.SUCCEEDED),
        ((S.SUCCEEDED, S.FAILED, S.SKIPPED), JobStatus.FAILED),
        ((S.SUCCEEDED, S.SUCCEEDED, S.FAILED), JobStatus.SUCCEEDED),
        ((S.CANCELLED, S.SKIPPED, S.SKIPPED), JobStatus.CANCELLED),
    ],
)
def test_a_job_whose_tasks_all_ended_has_its_conclusion_even_without_a_live_runner(states, expected):
    tasks = instances(**dict(zip(("prepare", "train", "report"), states)))
    assert job_status(pipeline(THREE), tasks, runner_alive=False) == expected
    assert conclusion_status(pipeline(THREE), tasks) == expected


def test_job_status_counts_only_the_pipelines_tasks():
    tasks = instances(prepare=S.SUCCEEDED, train=S.SUCCEEDED, report=S.SUCCEEDED, stray=S.RUNNING)
    assert job_status(pipeline(THREE), tasks, runner_alive=True) == JobStatus.SUCCEEDED


def test_states_and_statuses_print_as_their_values():
    assert str(TaskState.SUBMITTED) == "submitted"
    assert str(JobStatus.INTERRUPTED) == "interrupted"
    assert str(Outcome.TIMED_OUT) == "timed_out"


# --- task instances and attempts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, is_ended",
    [
        (S.PENDING, False),
        (S.WAITING, False),
        (S.SUBMITTED, False),
        (S.RUNNING, False),
        (S.SUCCEEDED, True),
        (S.FAILED, True),
        (S.SKIPPED, True),
        (S.CANCELLED, True),
    ],
)
def test_which_states_are_ended(state, is_ended):
    assert TaskInstance("t", state).ended is is_ended
    assert ended([TaskInstance("a", S.SUCCEEDED), TaskInstance("t", state)]) is is_ended


def test_an_attempt_has_a_duration_once_it_ends():
    assert Attempt(1, started_at=10.0).duration is None
    assert Attempt(1, started_at=10.0, ended_at=12.5).duration == 2.5


def test_a_task_instance_duration_spans_all_attempts_and_its_exit_code_is_the_last_ones():
    first = Attempt(1, started_at=100.0, ended_at=110.0, exit_code=1, outcome=Outcome.FAILED)
    second = Attempt(2, started_at=130.0, ended_at=145.0, exit_code=0, outcome=Outcome.SUCCEEDED)
    assert TaskInstance("t").duration is None and TaskInstance("t").exit_code is None
    assert TaskInstance("t", S.RUNNING, attempts=(first, Attempt(2, started_at=130.0))).duration is None
    done = TaskInstance("t", S.SUCCEEDED, attempts=(first, second))
    assert done.duration == 45.0
    assert done.exit_code == 0


# --- satisfies_dependents -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instance, continue_on_failure, lets_run",
    [
        (TaskInstance("d", S.SUCCEEDED), False, True),
        (TaskInstance("d", S.SKIPPED, reason=SKIP_REQUESTED), False, True),
        (TaskInstance("d", S.SKIPPED, reason="dependency 'a' failed"), False, False),
        (TaskInstance("d", S.SKIPPED, reason="dependency 'a' failed"), True, False),
        (TaskInstance("d", S.SKIPPED, reason="dependency 'a' was cancelled"), False, False),
        (TaskInstance("d", S.FAILED), False, False),
        (TaskInstance("d", S.FAILED), True, True),
        (TaskInstance("d", S.CANCELLED), False, False),
        (TaskInstance("d", S.CANCELLED), True, False),
        (TaskInstance("d", S.PENDING), False, False),
        (TaskInstance("d", S.WAITING), True, False),
        (TaskInstance("d", S.SUBMITTED), False, False),
        (TaskInstance("d", S.RUNNING), True, False),
    ],
    ids=[
        "succeeded",
        "skip-true",
        "skipped-upstream",
        "skipped-upstream-cof",
        "skipped-after-cancel",
        "failed",
        "failed-cof",
        "cancelled",
        "cancelled-cof",
        "pending",
        "waiting",
        "submitted",
        "running",
    ],
)
def test_satisfies_dependents(instance, continue_on_failure, lets_run):
    assert satisfies_dependents(instance, continue_on_failure) is lets_run


# --- freeze ---------------------------------------------------------------------------------------------------


def test_freeze_records_the_snapshot_and_where_it_came_from():
    p = pipeline(MINIMAL)
    job = freeze_at(p, now=1_764_324_930.0, trigger={"event": "push", "sha": "c0ffee"}, dirty=True, source="worktree")
    assert (job.pipeline, job.pipeline_path, job.repository) == ("demo", "pipelines/p.yaml", "/repo")
    assert (job.source, job.commit, job.ref, job.tree) == ("worktree", "c0ffee", "refs/heads/main", "root-tree")
    assert job.trigger == {"event": "push", "sha": "c0ffee"}
    assert job.created_at == 1_764_324_930.0
    assert job.dirty is True
    assert job.rerun_of is None
    assert job.id.startswith("20251128-101530-")


def test_a_frozen_job_is_triggered_from_the_cli_unless_told_otherwise():
    assert freeze_at(pipeline(MINIMAL)).trigger == {"event": "cli"}


def test_tasks_without_code_run_in_the_root_tree():
    p = pipeline(THREE)
    job = freeze_at(p, tree="root", code_trees={"train": "train-tree"})
    assert job.code_trees == {"prepare": "root", "train": "train-tree", "report": "root"}


def test_code_trees_name_only_the_pipelines_tasks():
    job = freeze_at(pipeline(MINIMAL), tree="root", code_trees={"train": "t", "gone": "g"})
    assert job.code_trees == {"prepare": "root", "train": "t"}


def _plain_json(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.parametrize("text", [MINIMAL, THREE, RICH], ids=["minimal", "three", "rich"])
def test_the_spec_is_plain_json_and_normalises_back_to_an_equal_pipeline(text):
    p = pipeline(text)
    job = freeze_at(p)
    assert _plain_json(job.spec)
    assert json.loads(json.dumps(job.spec)) == job.spec
    assert job.pipeline_model() == p
    assert job.spec == spec_of(p)


def test_the_spec_keeps_the_gitops_fields():
    spec = freeze_at(pipeline(RICH)).spec
    prepare = spec["tasks"][0]
    assert (prepare["code"], prepare["timeout"], prepare["cache"]) == ("tasks/prepare", 5400.0, True)
    assert prepare["retry"] == {"max_attempts": 3, "delay": 10.0, "backoff": 2.0}
    assert spec["concurrency"] == {"group": "rich", "cancel_in_progress": True}
    assert spec["on"]["push"] == {"branches": ["main"], "paths": ["tasks/**"]}
    assert spec["notify"] == {"slack": {"channel": "#ml"}}


def test_the_spec_id_is_stable_for_equal_specs():
    first = freeze_at(pipeline(RICH), now=1.0)
    second = freeze_at(pipeline(RICH), now=2.0, commit="another", tree="another")
    assert first.spec_id == second.spec_id == spec_id(first.spec)
    assert len(first.spec_id) == 16
    assert first.id != second.id


def test_the_spec_id_does_not_depend_on_key_order():
    spec = spec_of(pipeline(RICH))
    reordered = json.loads(json.dumps(spec, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert list(reordered) != list(spec)
    assert spec_id(reordered) == spec_id(spec)


@pytest.mark.parametrize(
    "old, new",
    [
        ("name: demo", "name: demo2"),
        ("command: echo train", "command: echo  train"),
        ("    dependencies: [prepare]\n", ""),
        ("    command: echo prepare\n", "    command: echo prepare\n    skip: true\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    continue_on_failure: true\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    timeout: 5m\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    code: tasks/prepare\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    resources: {cpu: 2}\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    environment: {envs: {A: '1'}}\n"),
        ("    command: echo prepare\n", "    command: echo prepare\n    retry: {max_attempts: 2}\n"),
        ('version: "26.4.4"', 'version: "26.4.5"'),
        ("tasks:", "concurrency: demo\ntasks:"),
    ],
    ids=[
        "name",
        "command",
        "dependency",
        "skip",
        "continue_on_failure",
        "timeout",
        "code",
        "resources",
        "envs",
        "retry",
        "version",
        "concurrency",
    ],
)
def test_the_spec_id_changes_when_anything_in_the_spec_changes(old, new):
    assert old in MINIMAL
    changed = MINIMAL.replace(old, new, 1)
    assert freeze_at(pipeline(changed)).spec_id != freeze_at(pipeline(MINIMAL)).spec_id


def test_the_spec_id_changes_when_tasks_are_reordered():
    p = pipeline("""\
        version: "1"
        name: p
        tasks:
          - {name: a, command: a}
          - {name: b, command: b}
        """)
    q = pipeline("""\
        version: "1"
        name: p
        tasks:
          - {name: b, command: b}
          - {name: a, command: a}
        """)
    assert freeze_at(p).spec_id != freeze_at(q).spec_id


# --- job ids --------------------------------------------------------------------------------------------------


def test_a_job_id_is_the_utc_time_and_a_random_suffix():
    job_id = new_job_id(1_764_324_930.0)  # 2025-11-28 10:15:30 UTC
    stamp, suffix = job_id.rsplit("-", 1)
    assert stamp == "20251128-101530"
    assert len(suffix) == 6 and all(c in "0123456789abcdef" for c in suffix)


def test_job_ids_sort_by_time():
    times = [
        1_000_000_000.0,
        1_000_000_001.0,
        1_000_000_059.0,
        1_000_000_060.0,
        1_000_003_600.0,
        1_600_000_000.0,
        1_764_324_930.0,
        4_102_444_800.0,
    ]  # seconds, minutes, hours, years, 2100
    ids = [new_job_id(t) for t in times]
    assert sorted(ids) == ids
    assert sorted(ids[::-1]) == ids


def test_job_ids_made_in_the_same_second_are_unique():
    ids = [new_job_id(1_764_324_930.0) for _ in range(20)]
    assert len(set(ids)) == len(ids)
    jobs = [freeze_at(pipeline(MINIMAL), now=1_764_324_930.0) for _ in range(5)]
    assert len({j.id for j in jobs}) == len(jobs)


# --- rerun ----------------------------------------------------------------------------------------------------


def test_a_rerun_keeps_the_frozen_spec_and_snapshot_and_names_the_original():
    original = freeze_at(
        pipeline(RICH),
        now=1_764_324_930.0,
        tree="root",
        code_trees={"prepare": "code"},
        trigger={"event": "push"},
        dirty=True,
    )
    again = rerun(original, now=1_764_328_530.0)
    assert again.id != original.id
    assert again.id > original.id  # later, so it sorts after
    assert again.rerun_of == original.id
    assert again.trigger == {"event": "rerun", "of": original.id}
    assert again.created_at == 1_764_328_530.0
    assert again.spec == original.spec
    assert again.spec_id == original.spec_id
    assert (again.commit, again.ref, again.tree) == (original.commit, original.ref, original.tree)
    assert dict(again.code_trees) == dict(original.code_trees) == {"prepare": "code", "train": "root"}
    assert (again.pipeline, again.pipeline_path, again.repository, again.source, again.dirty) == (
        original.pipeline,
        original.pipeline_path,
        original.repository,
        original.source,
        original.dirty,
    )
    assert again.pipeline_model() == original.pipeline_model()


def test_a_rerun_takes_the_trigger_it_is_given():
    original = freeze_at(pipeline(MINIMAL))
    again = rerun(original, trigger={"event": "manual", "user": "kim"})
    assert again.trigger == {"event": "manual", "user": "kim"}
    assert again.rerun_of == original.id


def test_a_rerun_of_a_rerun_names_the_job_it_repeats():
    original = freeze_at(pipeline(MINIMAL), now=1.0)
    first = rerun(original, now=2.0)
    second = rerun(first, now=3.0)
    assert second.rerun_of == first.id
    assert second.spec_id == original.spec_id
    assert len({original.id, first.id, second.id}) == 3


def test_a_rerun_does_not_share_code_trees_with_the_original():
    original = freeze_at(pipeline(MINIMAL))
    again = rerun(original)
    assert again.code_trees is not original.code_trees
