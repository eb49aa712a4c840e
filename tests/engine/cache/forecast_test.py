"""`plan`'s questions to the cache: keys as the runner makes them, a reused input's digest carried to its
dependants, why a miss misses, an index that cannot be read; a real repository and a real local cache."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from commands.run_test import commit, make_repo, put

from fasttrack_gitops.core import cache
from fasttrack_gitops.engine.cache import Entry, Hit, Miss
from fasttrack_gitops.engine.cache.forecast import base_changes, forecast_job
from fasttrack_gitops.engine.cache.keys import job_keys
from fasttrack_gitops.engine.cache.local import LocalCacheIndex
from fasttrack_gitops.engine.plan import plan_file

PIPELINE = """\
version: "26.4.4"
name: ml
cache: true
tasks:
  - name: prepare
    code: tasks/prepare
    command: cp data.txt "$PIPELINE_OUTPUT_ROOT/"
  - name: train
    code: tasks/train
    dependencies: [prepare]
    command: sh train.sh
"""
EARLIER = "20261201-000000-aaaaaa"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_repo(
        root, {"pipelines/ml.yaml": PIPELINE, "tasks/prepare/data.txt": "abc\n", "tasks/train/train.sh": "true\n"}
    )
    return root


def planned(repo: Path, rev: str | None = None):
    found = plan_file(repo, "pipelines/ml.yaml", rev=rev)
    assert found.job is not None
    return found


def record(index: LocalCacheIndex, state: Path, planned_file, task: str, digests: dict[str, str]) -> Entry:
    """What a run leaves: the task's outputs in its job's folder and its entry (as JobCache.finished records it)."""
    folder = state / "data" / EARLIER / "tasks" / task / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text(f"{task}\n")
    files = asyncio.run(index.outputs(EARLIER, task))
    ingredients = job_keys(planned_file.job, planned_file.snapshot).ingredients(task, digests)
    assert ingredients is not None
    entry = Entry(cache.cache_key(ingredients), EARLIER, task, "ml", "c" * 40, time.time(), ingredients, files)
    return asyncio.run(index.record(entry))


def forecast(planned_file, index, durations=None, **options):
    return asyncio.run(forecast_job(planned_file.job, planned_file.snapshot, index, durations or {}, **options))


def by_name(found) -> dict[str, tuple[str, str, str | None]]:
    return {t.name: (t.action, t.reason, t.reuse_from) for t in found.tasks}


def test_a_reused_input_gives_its_entry_digest_to_its_dependant(repo, tmp_path):
    state = tmp_path / "state"
    first = planned(repo)
    index = LocalCacheIndex(state, first.job.repository, "ml")
    assert by_name(forecast(first, index)) == {
        "prepare": ("run", "no earlier run with this key", None),
        "train": ("run", "input 'prepare' will run", None),
    }
    prepare = record(index, state, first, "prepare", {})
    found = by_name(forecast(first, index))
    assert found["prepare"] == ("reuse", "reused from job 20261201-000000-aaaaaa (commit ccccccc)", EARLIER)
    assert found["train"] == ("run", "no earlier run with this key", None)  # looked up with prepare's digest

    record(index, state, first, "train", {"prepare": prepare.digest})
    found = forecast(first, index, {"prepare": 30.0, "train": 90.0})
    assert {t.action for t in found.tasks} == {"reuse"}
    assert found.saved.cpu_hours == pytest.approx(120 / 3600)


def test_a_miss_says_what_changed_since_the_latest_entry(repo, tmp_path):
    state = tmp_path / "state"
    first = planned(repo)
    index = LocalCacheIndex(state, first.job.repository, "ml")
    prepare = record(index, state, first, "prepare", {})
    record(index, state, first, "train", {"prepare": prepare.digest})
    old = prepare.ingredients["code"]["tree"]
    put(repo, "tasks/prepare/data.txt", "xyz\n")
    commit(repo)
    second = planned(repo)
    new = second.job.code_trees["prepare"]

    found = by_name(forecast(second, index))
    assert found["prepare"] == ("run", f"code of tasks/prepare changed ({old[:7]} → {new[:7]})", None)
    assert found["train"] == (
        "run",
        "input 'prepare' will run; reused if its outputs come out byte-identical",
        None,
    )
    assert base_changes(second.job, second.snapshot, first.job, first.snapshot) == {
        "prepare": (f"code of tasks/prepare changed ({old[:7]} → {new[:7]})",),
        "train": (),
    }


def test_no_cache_asks_nothing(repo, tmp_path):
    class Refuses:
        where = "nowhere"

        async def lookup(self, key: str) -> Hit | Miss:
            raise AssertionError("looked up")

        async def latest(self, task: str) -> Entry | None:
            raise AssertionError("asked")

    found = forecast(planned(repo), Refuses(), no_cache=True)
    assert {t.reason for t in found.tasks} == {"--no-cache: nothing is reused"}


def test_an_index_that_cannot_be_read_makes_the_task_run_and_says_so(repo):
    class Broken:
        where = "a broken disk"

        async def lookup(self, key: str) -> Hit | Miss:
            raise OSError(5, "Input/output error")

        async def latest(self, task: str) -> Entry | None:
            raise OSError(5, "Input/output error")

    found = by_name(forecast(planned(repo), Broken()))
    assert found["prepare"][0] == "run"
    assert found["prepare"][1].startswith("the task cache could not be read (")
    assert found["train"] == ("run", "input 'prepare' will run", None)


def test_a_cache_path_that_matches_nothing_is_a_warning(tmp_path):
    root = tmp_path / "repo"
    text = PIPELINE.replace("    code: tasks/train\n", "    code: tasks/train\n    cache: {paths: [data/*.csv]}\n")
    make_repo(root, {"pipelines/ml.yaml": text, "tasks/prepare/data.txt": "a\n", "tasks/train/train.sh": "true\n"})
    found = forecast(planned(root), LocalCacheIndex(tmp_path / "state", str(root), "ml"))
    assert found.warnings == (
        "task 'train': cache path 'data/*.csv' matches no file at this commit, so it adds nothing to the cache "
        "key; fix the path or remove it",
    )
