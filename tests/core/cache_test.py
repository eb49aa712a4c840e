"""Cache keys and output manifests: what changes a key, what does not, how a difference reads, what a manifest is."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fasttrack_gitops.core import cache
from fasttrack_gitops.core.cache import EMPTY_OUTPUTS, ManifestError, OutputFile
from fasttrack_gitops.core.pipeline.model import normalise
from fasttrack_gitops.core.taskenv import task_environment

TREE_A = "3f2a1c0" + "a" * 33
TREE_B = "9b0e44d" + "b" * 33
PREPARE_OUT = cache.outputs_digest([OutputFile("data.csv", 3, "c" * 64)])
SECRET_VALUE = "hunter2-very-secret-token"


def pipeline_data() -> dict[str, Any]:
    return {
        "version": "1",
        "name": "ml",
        "environment": {"envs": {"STAGE": "dev"}},
        "params": [{"name": "lr", "value": 0.1}],
        "tasks": [
            {"name": "prepare", "command": "python prepare.py", "environment": {"image": "python:3.11"}},
            {
                "name": "train",
                "description": "trains the model",
                "command": "python train.py",
                "code": "tasks/train",
                "dependencies": ["prepare"],
                "environment": {
                    "image": "pytorch:2.1",
                    "envs": {"EPOCHS": 3, "TOKEN": "${{ secrets.HF_TOKEN }}"},
                },
                "resources": {"cpu": 4, "mem": "16g", "cuda.shares": 1},
                "retry": {"max_attempts": 2, "delay": "10s"},
                "timeout": "1h",
                "cache": {"paths": ["data/labels.csv"]},
            },
        ],
    }


def key_of(
    data: dict[str, Any],
    *,
    tree: str = TREE_A,
    paths: dict[str, str] | None = None,
    inputs: list[tuple[str, str]] | None = None,
) -> str:
    return cache.cache_key(parts_of(data, tree=tree, paths=paths, inputs=inputs))


def parts_of(data, *, tree=TREE_A, paths=None, inputs=None) -> dict[str, Any]:
    pipeline = normalise(data)
    return cache.ingredients(
        pipeline,
        pipeline.task("train"),
        code_tree=tree,
        paths={"data/labels.csv": "1" * 40} if paths is None else paths,
        inputs=[("prepare", PREPARE_OUT)] if inputs is None else inputs,
    )


def changed(edit) -> dict[str, Any]:
    data = copy.deepcopy(pipeline_data())
    edit(data)
    return data


def train(data: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = data["tasks"][1]
    return task


BASE = key_of(pipeline_data())


# -- what changes a key, and what does not


def test_the_key_is_a_sha256_and_the_same_for_the_same_ingredients():
    assert len(BASE) == 64 and all(c in "0123456789abcdef" for c in BASE)
    assert key_of(pipeline_data()) == BASE


def test_the_key_does_not_depend_on_the_order_of_mappings():
    parts = parts_of(pipeline_data())
    reordered = dict(reversed(list(parts.items())))
    reordered["envs"] = dict(reversed(list(parts["envs"].items())))
    assert list(reordered) != list(parts) and list(reordered["envs"]) != list(parts["envs"])
    assert cache.cache_key(reordered) == BASE

    data = pipeline_data()
    envs = train(data)["environment"]["envs"]
    train(data)["environment"]["envs"] = dict(reversed(list(envs.items())))
    assert key_of(data) == BASE


@pytest.mark.parametrize(
    "what, edit",
    [
        ("image", lambda d: train(d)["environment"].update(image="pytorch:2.2")),
        ("command", lambda d: train(d).update(command="python train.py --fast")),
        ("a task env", lambda d: train(d)["environment"]["envs"].update(EPOCHS=4)),
        ("a new task env", lambda d: train(d)["environment"]["envs"].update(SEED=1)),
        ("a pipeline env", lambda d: d["environment"]["envs"].update(STAGE="prod")),
        ("the params", lambda d: d["params"][0].update(value=0.2)),
        ("the cluster size", lambda d: train(d).update(cluster_mode="multi-node", cluster_size=2)),
        ("the mounts", lambda d: train(d).update(mounts=["datasets:data"])),
        ("the code folder", lambda d: train(d).update(code="tasks/train2")),
        ("the secret's name", lambda d: train(d)["environment"]["envs"].update(TOKEN="${{ secrets.OTHER }}")),
    ],
)
def test_a_change_to_what_can_change_the_outputs_changes_the_key(what, edit):
    assert key_of(changed(edit)) != BASE, what


def test_the_code_tree_the_cache_paths_and_the_inputs_digests_change_the_key():
    assert key_of(pipeline_data(), tree=TREE_B) != BASE
    assert key_of(pipeline_data(), paths={"data/labels.csv": "2" * 40}) != BASE
    assert key_of(pipeline_data(), paths={"data/labels.csv": "1" * 40, "configs/a.yaml": "3" * 40}) != BASE
    assert key_of(pipeline_data(), inputs=[("prepare", EMPTY_OUTPUTS)]) != BASE


@pytest.mark.parametrize(
    "what, edit",
    [
        ("resources", lambda d: train(d).update(resources={"cpu": 8, "mem": "64g", "cuda.shares": 2})),
        ("timeout", lambda d: train(d).update(timeout="3h")),
        ("retry", lambda d: train(d).update(retry={"max_attempts": 5, "delay": "1m"})),
        ("description", lambda d: train(d).update(description="trains it better")),
        ("another task", lambda d: d["tasks"][0].update(command="python prepare.py --v2")),
    ],
)
def test_what_changes_only_how_a_task_runs_leaves_the_key_alone(what, edit):
    assert key_of(changed(edit)) == BASE, what


def test_a_secret_enters_the_key_by_name_never_by_value():
    data = pipeline_data()
    pipeline = normalise(data)
    # What the task really sees: the value resolved at start...
    seen = task_environment(pipeline, pipeline.task("train"), {"HF_TOKEN": SECRET_VALUE})
    assert seen.env["TOKEN"] == SECRET_VALUE
    # ...but the ingredients hold the reference as written, and nothing of the value.
    parts = parts_of(data)
    assert parts["envs"]["TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert SECRET_VALUE not in json.dumps(parts)
    assert SECRET_VALUE not in cache.cache_key(parts)
    # A rotated token is the same text in the pipeline file: the same key.
    assert cache.cache_key(parts) == BASE


# -- how a difference reads


def test_changes_says_which_code_changed_with_short_tree_ids():
    old, new = parts_of(pipeline_data()), parts_of(pipeline_data(), tree=TREE_B)
    assert cache.changes(old, new) == ["code of tasks/train changed (3f2a1c0 → 9b0e44d)"]


def test_changes_names_each_difference_in_plain_words():
    old = parts_of(pipeline_data())
    data = changed(
        lambda d: (
            train(d)["environment"].update(image="pytorch:2.2"),
            train(d).update(command="python train.py --fast"),
            train(d)["environment"]["envs"].update(EPOCHS=4),
            d["environment"]["envs"].update(STAGE="prod"),
        )
    )
    new = parts_of(data, paths={"data/labels.csv": "2" * 40, "configs/a.yaml": "3" * 40})
    assert cache.changes(old, new) == [
        "image changed",
        "command changed",
        "env EPOCHS changed",
        "pipeline env STAGE changed",
        "configs/a.yaml added",
        "data/labels.csv changed (1111111 → 2222222)",
    ]
    assert cache.changes(old, parts_of(pipeline_data(), inputs=[("prepare", EMPTY_OUTPUTS)])) == [
        "outputs of input 'prepare' changed"
    ]
    assert cache.changes(old, parts_of(pipeline_data(), inputs=[])) == ["dependencies changed"]
    assert cache.changes(old, old) == []


def test_changes_never_shows_an_env_value():
    old = parts_of(pipeline_data())
    new = parts_of(changed(lambda d: train(d)["environment"]["envs"].update(EPOCHS="a-value-we-must-not-print")))
    assert cache.changes(old, new) == ["env EPOCHS changed"]


def test_a_key_of_another_format_version_is_said_to_be_so():
    old = dict(parts_of(pipeline_data()), version=0)
    assert cache.changes(old, parts_of(pipeline_data())) == ["the cache key format changed (a new fasttrack-gitops)"]


# -- manifests

FILES = (
    OutputFile("model/weights.bin", 1024, "a" * 64),
    OutputFile("metrics.json", 12, "b" * 64),
    OutputFile("a b.txt", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
)


def test_a_manifest_is_sorted_lines_and_parses_back_to_the_same_files():
    text = cache.manifest_text(FILES)
    assert text.splitlines() == [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 a b.txt",
        f"{'b' * 64} 12 metrics.json",
        f"{'a' * 64} 1024 model/weights.bin",
    ]
    parsed = cache.parse_manifest(text)
    assert parsed == tuple(sorted(FILES, key=lambda f: f.path))
    assert cache.manifest_text(parsed) == text
    assert cache.outputs_digest(parsed) == cache.outputs_digest(reversed(FILES))


@pytest.mark.parametrize(
    "line, words",
    [
        ("not a manifest line", "expected '<sha256> <size> <path>'"),
        (f"{'a' * 63} 1 x", "expected '<sha256> <size> <path>'"),
        (f"{'A' * 64} 1 x", "expected '<sha256> <size> <path>'"),
        (f"{'a' * 64} -1 x", "expected '<sha256> <size> <path>'"),
        (f"{'a' * 64} 1", "expected '<sha256> <size> <path>'"),
        (f"{'a' * 64} 1 /etc/passwd", "path '/etc/passwd' is absolute, leaves the folder or repeats"),
        (f"{'a' * 64} 1 ../outside", "path '../outside' is absolute, leaves the folder or repeats"),
        (f"{'a' * 64} 1 a/../../b", "path 'a/../../b' is absolute"),
    ],
)
def test_a_manifest_line_that_does_not_parse_is_named(line, words):
    text = f"{'f' * 64} 5 first.txt\n{line}\n"
    with pytest.raises(ManifestError) as caught:
        cache.parse_manifest(text, what="jobs/x/tasks/train/manifest.txt")
    assert str(caught.value).startswith("jobs/x/tasks/train/manifest.txt, line 2: ")
    assert words in str(caught.value)


def test_a_path_listed_twice_is_refused():
    text = f"{'a' * 64} 1 model.bin\n{'b' * 64} 2 model.bin\n"
    with pytest.raises(ManifestError, match=r"manifest, line 2: path 'model.bin' .* repeats"):
        cache.parse_manifest(text)


def test_no_outputs_have_the_digest_of_an_empty_manifest():
    assert cache.manifest_text(()) == ""
    assert cache.parse_manifest("") == ()
    assert (
        EMPTY_OUTPUTS == cache.outputs_digest(()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert cache.outputs_digest([OutputFile("empty", 0, EMPTY_OUTPUTS)]) != EMPTY_OUTPUTS
