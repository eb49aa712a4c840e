"""`fasttrack-gitops graph`: a pipeline's DAG as a table, Mermaid, DOT and JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import MINIMAL

from fasttrack_gitops.cli import main

# train-compare: prepare-data -> {train-logreg, train-mlp} -> compare -> report
TASKS = ["prepare-data", "train-logreg", "train-mlp", "compare", "report"]
EDGES = [  # (from, to, input number), in dependency order
    ("prepare-data", "train-logreg", 1),
    ("prepare-data", "train-mlp", 1),
    ("train-logreg", "compare", 1),
    ("train-mlp", "compare", 2),
    ("compare", "report", 1),
]

BROKEN = MINIMAL.replace("dependencies: [prepare]", "dependencies: [prepar]")


@pytest.fixture
def train_compare(examples_repo):
    return str(examples_repo / "pipelines" / "train-compare.yaml")


def graph(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["graph", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_is_a_table_by_step_with_resources_and_needs(capsys, train_compare):
    code, out, err = graph(capsys, train_compare)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "train-compare: 5 tasks in 4 steps"
    header = next(line for line in lines if line.startswith("step"))
    assert header.split() == ["step", "task", "resources", "needs"]
    mlp = next(line for line in lines if "train-mlp" in line)
    assert "cuda.shares 1" in mlp
    assert mlp.rstrip().endswith("prepare-data")
    compare = next(line for line in lines if line.split()[:2] == ["3", "compare"])
    assert compare.rstrip().endswith("train-logreg, train-mlp")
    assert "report (continue on failure)" in out


def test_text_is_the_default_format(capsys, train_compare):
    assert graph(capsys, train_compare)[1] == graph(capsys, "--format", "text", train_compare)[1]


def test_mermaid_has_one_node_per_task_and_one_arrow_per_dependency(capsys, train_compare):
    code, out, _ = graph(capsys, "--format", "mermaid", train_compare)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = {m.group(1): m.group(2) for m in (re.match(r'\s+(\w+)\["<b>([^<]+)</b>', line) for line in lines) if m}
    assert sorted(nodes.values()) == sorted(TASKS)
    arrows = [tuple(line.split(" --> ")) for line in (line.strip() for line in lines) if " --> " in line]
    assert len(arrows) == len(EDGES) == out.count("-->")
    assert [(nodes[a], nodes[b]) for a, b in arrows] == [(f, t) for f, t, _ in EDGES]


def test_dot_labels_each_edge_with_its_input_number(capsys, train_compare):
    code, out, _ = graph(capsys, "--format", "dot", train_compare)
    assert code == 0
    assert out.startswith('digraph "train-compare" {')
    assert out.rstrip().endswith("}")
    edges = re.findall(r'"([^"]+)" -> "([^"]+)" \[label="input(\d+)"\]', out)
    assert [(f, t, int(k)) for f, t, k in edges] == EDGES
    for task in TASKS:
        assert f'"{task}" [label="{task}\\n' in out


def test_json_has_tasks_edges_with_inputs_and_layers(capsys, train_compare):
    code, out, _ = graph(capsys, "--format", "json", train_compare)
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "train-compare"
    assert [t["name"] for t in data["tasks"]] == TASKS
    assert [(e["from"], e["to"], e["input"]) for e in data["edges"]] == EDGES
    assert data["layers"] == [["prepare-data"], ["train-logreg", "train-mlp"], ["compare"], ["report"]]
    mlp = data["tasks"][2]
    assert mlp["resources"]["cuda.shares"] == 1
    assert mlp["code"] == "tasks/train"


@pytest.mark.parametrize("fmt", ["text", "mermaid", "dot", "json"])
def test_every_real_exported_pipeline_can_be_drawn(capsys, fasttrack_examples, fmt):
    for pipeline in fasttrack_examples:
        code, out, err = graph(capsys, "--format", fmt, str(pipeline))
        assert (code, err) == (0, ""), pipeline
        assert out


@pytest.mark.parametrize("fmt", ["text", "mermaid", "dot", "json"])
def test_an_invalid_pipeline_prints_diagnostics_on_stderr_and_nothing_on_stdout(
    capsys, write, tmp_path, monkeypatch, fmt
):
    write("broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, out, err = graph(capsys, "--format", fmt, "broken.yaml")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "broken.yaml:7:20: error FT103: task 'train' depends on unknown task 'prepar' (did you mean 'prepare'?)"
    ]


def test_a_directory_is_a_usage_error(capsys, examples_repo):
    code, out, err = graph(capsys, str(examples_repo))
    assert code == 2
    assert out == ""
    assert "is a directory" in err


def test_dot_escapes_backslashes_in_names(capsys, write):
    path = write("p.yaml", MINIMAL.replace("name: demo", "name: 'C:\\'"))
    code, out, _ = graph(capsys, "--format", "dot", str(path))
    assert code == 0
    header = out.splitlines()[0]
    quoted = re.fullmatch(r'digraph "(.*)" \{', header).group(1)
    assert quoted == "C:\\\\"  # the backslash itself escaped, so the closing quote is a real one


@pytest.mark.parametrize(
    "argv, expected_code, expected_err",
    [
        (["graph", "broken.yaml"], 1, "error FT103"),
        (["graph", "."], 2, "is a directory"),
        (["graph", "missing.yaml"], 2, "does not exist"),
        (["graph", "--format", "svg", "broken.yaml"], 2, "Invalid value for '--format'"),
    ],
)
def test_bad_input_in_a_real_process_exits_cleanly_without_a_traceback(tmp_path, argv, expected_code, expected_err):
    (tmp_path / "broken.yaml").write_text(BROKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "fasttrack_gitops", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == expected_code
    assert proc.stdout == ""
    assert expected_err in proc.stderr
    assert "Traceback" not in proc.stderr
