"""The forecast: the runner's rules applied before a run (what runs, is reused, skipped, and why), the critical
path over what runs, and the CPU and GPU hours spent and saved. Plain data in, plain data out."""

from __future__ import annotations

from typing import Any

import pytest

from fasttrack_gitops.core.forecast import CACHE_OFF, NO_CACHE, SKIPPED, Cached, as_json, forecast, with_base
from fasttrack_gitops.core.pipeline.model import normalise

JOB = "20261202-101530-3fa9c1"
HIT = Cached(JOB, f"reused from job {JOB} (commit 3f2a1c0)")


def pipeline(*tasks: dict[str, Any], cache: bool = True):
    return normalise({"version": "1", "name": "ml", "cache": cache, "tasks": list(tasks)})


def task(name: str, *deps: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "command": "true", **({"dependencies": list(deps)} if deps else {}), **more}


# prepare -> train -> evaluate, and prepare -> report: a diamond's half
ML = pipeline(
    task("prepare", resources={"cpu": 2}),
    task("train", "prepare", resources={"cpu": 8, "cuda.shares": 2}),
    task("evaluate", "train", resources={"cpu": 1, "cuda.shares": 1}),
    task("report", "prepare"),
)
DURATIONS = {"prepare": 600.0, "train": 3600.0, "evaluate": 900.0, "report": 60.0}


def actions(found) -> dict[str, tuple[str, str]]:
    return {t.name: (t.action, t.reason) for t in found.tasks}


def test_every_hit_is_reused_when_its_inputs_are():
    found = forecast(ML, dict.fromkeys(("prepare", "train", "evaluate", "report"), HIT), DURATIONS)
    assert {t.action for t in found.tasks} == {"reuse"}
    assert all(t.reuse_from == JOB for t in found.tasks)
    assert found.estimate_s == 0.0 and found.critical_path == ()
    # what reusing saves: train 8 cpu x 1 h, evaluate 1 cpu x 0.25 h, ...; GPU: 2 x 1 h + 1 x 0.25 h
    assert found.saved.gpu_hours == pytest.approx(2.25)
    assert found.saved.cpu_hours == pytest.approx(2 * 600 / 3600 + 8 + 0.25 + 1 * 60 / 3600)
    assert found.run.cpu_hours == 0.0


def test_a_miss_runs_with_its_reason_and_its_dependants_wait_for_its_outputs():
    cached = {"prepare": HIT, "train": Cached(None, "code of tasks/train changed (3f2a1c0 → 9b0e44d)"), "report": HIT}
    found = forecast(ML, cached, DURATIONS)
    assert actions(found) == {
        "prepare": ("reuse", HIT.reason),
        "train": ("run", "code of tasks/train changed (3f2a1c0 → 9b0e44d)"),
        "evaluate": ("run", "input 'train' will run"),
        "report": ("reuse", HIT.reason),
    }
    assert found.critical_path == ("train", "evaluate")
    assert found.estimate_s == 4500.0
    assert [t.name for t in found.tasks if t.critical] == ["train", "evaluate"]
    assert found.run.gpu_hours == pytest.approx(2.25)
    assert found.saved.cpu_hours == pytest.approx(2 * 600 / 3600 + 60 / 3600)


def test_a_hit_behind_an_input_that_runs_still_runs():
    """A caller may hand answers for every task: a dependant's key is unknown while its input runs."""
    found = forecast(ML, {"prepare": Cached(None, "no earlier run with this key"), "train": HIT}, DURATIONS)
    assert actions(found)["train"] == ("run", "input 'prepare' will run")


def test_early_cutoff_is_named_when_the_dependant_has_an_earlier_entry():
    cached = {"prepare": Cached(None, "image changed")}
    found = forecast(ML, cached, DURATIONS, earlier={"train"})
    assert actions(found)["train"] == ("run", "input 'prepare' will run; reused if its outputs come out byte-identical")
    assert actions(found)["report"] == ("run", "input 'prepare' will run")


def test_skip_and_cache_off():
    p = pipeline(
        task("prepare", skip=True),
        task("train", "prepare"),
        task("evaluate", "train", cache=False),
        task("report", "evaluate"),
    )
    found = forecast(p, {"train": HIT}, DURATIONS, earlier={"report"})
    assert actions(found) == {
        "prepare": ("skip", SKIPPED),
        "train": ("reuse", HIT.reason),  # a skipped input's outputs are an empty folder: known
        "evaluate": ("run", CACHE_OFF),
        "report": ("run", "input 'evaluate' will run; reused if its outputs come out byte-identical"),
    }
    skipped = found.tasks[0]
    assert (skipped.cpu_hours, skipped.gpu_hours) == (0.0, 0.0)
    assert found.critical_path == ("evaluate", "report")


def test_no_cache_runs_everything_on_the_longest_chain():
    found = forecast(ML, {}, DURATIONS, no_cache=True)
    assert {reason for _, reason in actions(found).values()} == {NO_CACHE}
    assert found.critical_path == ("prepare", "train", "evaluate")
    assert found.estimate_s == 600 + 3600 + 900


def test_without_past_durations_the_estimate_is_unknown_and_the_path_is_the_longest_chain():
    found = forecast(ML, {}, {}, no_cache=True)
    assert found.estimate_s is None
    assert found.critical_path == ("prepare", "train", "evaluate")
    assert found.unestimated == ("prepare", "train", "evaluate", "report")
    assert all(t.cpu_hours is None for t in found.tasks)


def test_a_multi_node_task_spends_its_resources_on_every_node():
    p = pipeline(task("train", cluster_mode="multi-node", cluster_size=4, resources={"cpu": 2, "cuda.shares": 1}))
    found = forecast(p, {}, {"train": 1800.0}, no_cache=True)
    assert (found.run.cpu_hours, found.run.gpu_hours) == (4.0, 2.0)


def test_the_json_shape_and_the_base():
    found = forecast(ML, {"prepare": HIT}, DURATIONS, commit="c" * 40)
    found = with_base(found, "main", {"train": ("code of tasks/train changed (1111111 → 2222222)",)})
    data = as_json(found)
    assert {"pipeline", "commit", "tasks", "estimate_s", "critical_path", "resources"} <= data.keys()
    assert data["pipeline"] == "ml" and data["commit"] == "c" * 40 and data["base"] == "main"
    train = next(t for t in data["tasks"] if t["name"] == "train")
    assert train == {
        "name": "train",
        "action": "run",
        "reason": "its cache key could not be computed",
        "reuse_from": None,
        "estimate_s": 3600.0,
        "cpu_hours": 8.0,
        "gpu_hours": 2.0,
        "critical": True,
        "since_base": ["code of tasks/train changed (1111111 → 2222222)"],
    }
    assert data["resources"]["run"]["gpu_hours"] == pytest.approx(2.25)
    assert data["counts"] == {"run": 3, "reuse": 1, "skip": 0}
    assert data["critical_path"] == ["train", "evaluate"]
