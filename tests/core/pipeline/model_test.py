"""Real exported pipeline files, the normalised model, and the export back to FastTrack's shape."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
import yaml

from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.pipeline.model import DEFAULT_MEM, Mount, Resources, Retry, normalise, to_fasttrack
from fasttrack_gitops.core.pipeline.results import MetricGate, MetricRule, Threshold
from fasttrack_gitops.engine.workspace import open_repository

FILE = "pipelines/p.yaml"


def check(text: str, **kwargs):
    return check_pipeline(textwrap.dedent(text).encode("utf-8"), FILE, **kwargs)


def errors(result) -> list:
    return [d for d in result.diagnostics if d.is_error]


def round_trip(pipeline, *, include_gitops: bool = False):
    """Export, dump as YAML, check the dump again: (result of the second check, the dumped text)."""
    dumped = yaml.safe_dump(to_fasttrack(pipeline, include_gitops=include_gitops), sort_keys=False, allow_unicode=True)
    return check_pipeline(dumped.encode("utf-8"), "exported.yaml"), dumped


def filesystem_lookup(root: Path):
    def lookup(relpath: str) -> str:
        target = root / relpath
        if not target.exists():
            return "missing"
        if root.resolve() not in (target.resolve(), *target.resolve().parents):
            return "escapes"
        return "dir" if target.is_dir() else "not-a-dir"

    return lookup


# --- the real exported files ----------------------------------------------------------------


def test_every_real_exported_file_validates_with_zero_errors_unchanged(fasttrack_examples):
    for path in fasttrack_examples:
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        result = check_pipeline(path.read_bytes(), str(path))
        assert errors(result) == [], (path.name, result.diagnostics)
        assert result.pipeline is not None
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # checking never rewrites the file


def test_the_real_files_cover_both_export_shapes(fasttrack_examples):
    pipelines = {p.name: check_pipeline(p.read_bytes(), str(p)).pipeline for p in fasttrack_examples}
    owners = {key for p in pipelines.values() for key in p.ownership}
    types = {t.type for p in pipelines.values() for t in p.tasks}
    assert {"domain", "domain_name"} <= owners
    assert {"custom", "Custom Task", "deployment"} <= types


def test_the_torchtune_export_normalises_its_quirks(fasttrack_examples):
    path = next(p for p in fasttrack_examples if p.name.startswith("torchtune"))
    p = check_pipeline(path.read_bytes(), str(path)).pipeline
    assert p.name == "torchtune-example" and p.version == "25.6.5.post2"
    assert p.ownership == {"domain_name": "default", "scope": "personal"}
    assert p.graph == {
        "download-model": (),
        "fine-tune-single": ("download-model",),
        "fine-tune-multi": ("download-model",),
        "evaluate": ("fine-tune-single", "fine-tune-multi"),
    }
    evaluate = p.task("evaluate")
    assert evaluate.resources == Resources(cpu=2.0, mem=4 << 30, shmem=0, accelerators=(("cuda.shares", 1.5),))
    assert p.task("fine-tune-single").resources.accelerators == (("cuda.shares", 5.0),)  # '5' in the file
    assert p.task("fine-tune-multi").cluster_mode == "multi-node" and p.task("fine-tune-multi").cluster_size == 2
    assert evaluate.mounts == (Mount("baift-examples", "examples"),)
    assert p.task("download-model").scaling_group == "nvidia-H100"


def test_the_docs_rag_export_has_deployment_services(fasttrack_examples):
    path = next(p for p in fasttrack_examples if p.name.startswith("docs-rag"))
    p = check_pipeline(path.read_bytes(), str(path)).pipeline
    services = [t for t in p.tasks if t.is_service]
    assert [t.name for t in services] == ["serve-fastapi", "serve-gradio"]
    assert all(t.command is None and t.service["replicas"] == 1 for t in services)
    assert p.task("build-indices").retry == Retry(max_attempts=2, delay=30.0)
    assert dict(p.envs)["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"


def test_real_files_round_trip_through_the_fasttrack_export(fasttrack_examples):
    for path in fasttrack_examples:
        original = check_pipeline(path.read_bytes(), str(path)).pipeline
        again, dumped = round_trip(original)
        assert errors(again) == [], (path.name, again.diagnostics, dumped)
        assert again.pipeline == original, path.name


# --- the examples repository -----------------------------------------------------------------


def test_examples_repo_pipelines_validate_with_zero_diagnostics(examples_repo):
    repo = open_repository(examples_repo, "examples-repo")
    assert repo.diagnostics == []
    files = repo.pipeline_files()
    assert [f.name for f in files] == ["data-quality.yaml", "train-compare.yaml"]
    for path in files:
        result = check_pipeline(path.read_bytes(), repo.display(path), code_lookup=repo.code_lookup())
        assert result.diagnostics == [], result.diagnostics
        assert all(t.code for t in result.pipeline.tasks)


def test_examples_repo_pipelines_round_trip_with_the_gitops_keys(examples_repo):
    for path in sorted((examples_repo / "pipelines").glob("*.yaml")):
        original = check_pipeline(path.read_bytes(), str(path), code_lookup=filesystem_lookup(examples_repo)).pipeline
        assert original is not None
        again, dumped = round_trip(original, include_gitops=True)
        assert again.diagnostics == [], (path.name, again.diagnostics)
        assert again.pipeline == original, path.name


def test_examples_repo_pipeline_reads_its_gitops_keys(examples_repo):
    p = check_pipeline((examples_repo / "pipelines" / "train-compare.yaml").read_bytes(), "x").pipeline
    assert p.triggers == {
        "push": {"branches": ["main"], "paths": ["pipelines/train-compare.yaml", "tasks/**"]},
        "pull_request": {"paths": ["pipelines/train-compare.yaml", "tasks/**"]},
        "manual": {},
    }
    assert p.concurrency == {"group": "train-compare", "cancel_in_progress": True}
    assert p.notify == {"slack": {"channel": "#ml-pipelines", "on": ["failure", "success"]}}
    assert p.task("prepare-data").cache is True and p.task("prepare-data").timeout == 300
    assert p.task("train-logreg").image == p.task("compare").image  # the shared x- anchor
    assert p.task("compare").dependencies == ("train-logreg", "train-mlp")  # order kept: input1, input2


def test_export_without_gitops_keys_drops_them(examples_repo):
    p = check_pipeline((examples_repo / "pipelines" / "data-quality.yaml").read_bytes(), "x").pipeline
    exported = to_fasttrack(p)
    assert not {"on", "concurrency", "notify"} & set(exported)
    assert not {"code", "timeout", "cache"} & set(exported["tasks"][0])
    assert "code" in to_fasttrack(p, include_gitops=True)["tasks"][0]


# --- normalisation --------------------------------------------------------------------------------


def test_defaults_are_filled_in():
    p = check("version: 26.4\nname: demo\ntasks:\n  - name: a\n    command: x\n").pipeline
    assert p.version == "26.4"
    t = p.task("a")
    assert (t.type, t.description, t.dependencies, t.skip, t.continue_on_failure) == ("custom", "", (), False, False)
    assert (t.cluster_mode, t.cluster_size, t.module_uri) == ("single-node", 1, "")
    assert t.resources == Resources(cpu=1.0, mem=DEFAULT_MEM)
    assert t.retry == Retry() and t.timeout is None and t.code is None and t.cache is False
    assert p.triggers is None and p.concurrency is None and p.notify == {}
    with pytest.raises(KeyError):
        p.task("nope")


def test_trigger_spellings_normalise_to_one_shape():
    base = "version: '1'\nname: d\ntasks:\n  - name: a\n    command: x\n"
    assert check(base + "on: push\n").pipeline.triggers == {"push": {}}
    assert check(base + "on: [push, manual]\n").pipeline.triggers == {"push": {}, "manual": {}}
    mapping = "on:\n  push:\n    branches: main\n  manual: false\n  x-note: 1\n"
    assert check(base + mapping).pipeline.triggers == {"push": {"branches": ["main"]}}
    assert check(base + "concurrency: g\n").pipeline.concurrency == {"group": "g", "cancel_in_progress": False}


def test_environment_values_become_strings_and_x_keys_are_dropped():
    p = check("""\
        version: '1'
        name: d
        ownership: {domain: default, x-team: ml}
        environment:
          envs: {SEED: 42, DEBUG: true, EMPTY: null, RATE: 0.5}
        tasks:
          - name: a
            command: x
            code: tasks/./a/
            resources: {cpu: "2", mem: 512m, cuda.device: 1, x-note: hi}
            service: {x-ignored: 1}
            type: serving
        """).pipeline
    assert p.envs == (("SEED", "42"), ("DEBUG", "true"), ("EMPTY", ""), ("RATE", "0.5"))
    assert p.ownership == {"domain": "default"}
    t = p.task("a")
    assert t.code == "tasks/a"
    assert t.resources == Resources(cpu=2.0, mem=512 << 20, accelerators=(("cuda.device", 1.0),))
    assert t.resources.gpu == 1.0
    assert t.resources.describe() == "cpu 2 · mem 512m · cuda.device 1"
    assert t.service == {}


def test_round_trip_of_a_pipeline_using_every_gitops_key():
    original = check("""\
        version: '1'
        name: d
        on:
          push: {branches: [main], paths-ignore: ['docs/**']}
          schedule: [{cron: '0 3 * * *'}]
          manual: true
        concurrency: {group: d, cancel_in_progress: true}
        notify: {slack: {channel: '#x', on: [always]}}
        tasks:
          - name: a
            command: x
            code: tasks/a
            timeout: 1h30m
            cache: true
            retry: {max_attempts: 3, delay: 30s, backoff: 2}
            mounts: [data, 'models:/models']
            resources: {cpu: 0.5, mem: 1.5G, cuda.shares: '0.5'}
            resource_opts: {shmem: 64m}
        """).pipeline
    again, dumped = round_trip(original, include_gitops=True)
    assert again.diagnostics == [], dumped
    assert again.pipeline == original


def test_round_trip_keeps_a_memory_size_that_no_unit_divides():
    original = check(
        "version: '1'\nname: d\ntasks:\n  - name: a\n    command: x\n    resources: {mem: 1000000001}\n"
    ).pipeline
    again, _ = round_trip(original)
    assert again.pipeline.task("a").resources.mem == 1000000001


def test_round_trip_keeps_precise_gpu_shares():
    original = check(
        "version: '1'\nname: d\ntasks:\n  - name: a\n    command: x\n    resources: {cuda.shares: 0.1234567}\n"
    ).pipeline
    again, _ = round_trip(original)
    assert again.pipeline == original


def test_round_trip_keeps_the_results_keys():
    original = check("""\
        version: '1'
        name: d
        tasks:
          - name: evaluate
            command: x
            metrics:
              files: [metrics.json, extra/scores.toml]
              rules:
                accuracy: {direction: higher, noise: 0.002, gate: {min: 0.9, max_regression: '1%'}}
                loss: {direction: lower, noise: '0.5%', gate: {max: 2, max_regression: 0.1, required: true}}
                val.f1: {gate: {required: true}}
            plots: [{path: plots/roc.png, title: ROC curve}, plots/pr.svg]
            artifacts: [model/, report.html]
        """).pipeline
    again, dumped = round_trip(original, include_gitops=True)
    assert again.diagnostics == [], dumped
    assert again.pipeline == original
    rules = original.tasks[0].metrics.rules
    assert rules["accuracy"].gate.max_regression == Threshold(1.0, percent=True)
    assert rules["loss"].noise == Threshold(0.5, percent=True) and rules["loss"].gate.max_regression == Threshold(0.1)
    assert rules["val.f1"] == MetricRule(gate=MetricGate(required=True))


def test_a_task_without_results_keys_has_none_and_its_export_is_unchanged():
    p = check("version: '1'\nname: d\ntasks:\n  - {name: a, command: x}\n").pipeline
    task = p.tasks[0]
    assert (task.metrics, task.plots, task.artifacts) == (None, (), ())
    exported = to_fasttrack(p, include_gitops=True)["tasks"][0]
    assert not {"metrics", "plots", "artifacts"} & set(exported)


def test_a_job_frozen_before_the_results_keys_still_loads():
    """A spec stored by an older version (no metrics, plots or artifacts keys) normalises with their defaults."""
    spec = {
        "version": "1",
        "name": "d",
        "description": "",
        "environment": {"envs": {}},
        "params": [],
        "tasks": [{"name": "a", "type": "custom", "command": "x", "dependencies": [], "cache": True}],
    }
    task = normalise(spec).tasks[0]
    assert (task.metrics, task.plots, task.artifacts, task.cache) == (None, (), (), True)
