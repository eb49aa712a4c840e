"""Model results: reading a task's metrics file, and comparing a job's metrics with its baseline's.

Each bad file asserts that the error names the file and says what to write
instead; a property test feeds random bytes and checks that nothing but a
MetricsFileError comes out. The comparisons read like the cases of the
issue: a metric gone, a new one, noise, every kind of gate.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.metrics import (
    MAX_METRICS_FILE,
    BaseRef,
    Comparison,
    MetricsFileError,
    as_json,
    compare,
    read_metrics,
)
from fasttrack_gitops.core.pipeline import check_pipeline


def pipeline(rules: str = "", *, task: str = "evaluate", more: str = ""):
    """A pipeline whose task `task` reads metrics.json with `rules` (YAML lines under rules:)."""
    text = f"version: '1'\nname: d\ntasks:\n  - name: {task}\n    command: x\n"
    text += "    metrics:\n      files: [metrics.json]\n"
    if rules:
        text += "      rules:\n" + textwrap.indent(textwrap.dedent(rules), "        ")
    result = check_pipeline((text + more).encode(), "p.yaml")
    assert result.ok, result.diagnostics
    return result.pipeline


def row(c: Comparison, name: str, task: str = "evaluate"):
    (found,) = [r for r in c.rows if r.name == name and r.task == task]
    return found


# --- reading a metrics file -------------------------------------------------------


def test_json_yaml_and_toml_are_read_and_nested_names_joined_with_dots():
    assert read_metrics("m.json", b'{"val": {"acc": 0.9, "f1": {"macro": 1}}, "loss": 0.3}') == {
        "val.acc": 0.9,
        "val.f1.macro": 1.0,
        "loss": 0.3,
    }
    assert read_metrics("out/m.yaml", b"val:\n  acc: 0.9\nloss: .3\n") == {"val.acc": 0.9, "loss": 0.3}
    assert read_metrics("m.YML", b"{epochs: 3}") == {"epochs": 3.0}
    assert read_metrics("m.toml", b"loss = 0.3\n[val]\nacc = 9e-1\n") == {"loss": 0.3, "val.acc": 0.9}


def test_an_empty_file_says_what_to_write():
    for data in (b"", b"  \n"):
        with pytest.raises(MetricsFileError, match=r"^metrics.json: the file is empty; .*\"accuracy\": 0.93"):
            read_metrics("metrics.json", data)


@pytest.mark.parametrize(
    ("path", "data", "where"),
    [
        ("metrics.json", b'{"accuracy": 0.9,\n "loss": }', "not valid JSON at line 2, column 10"),
        ("metrics.yaml", b"accuracy: 0.9\nloss: [1\n", "not valid YAML at line 3"),
        ("metrics.toml", b"accuracy = \n", "not valid TOML: .*line 1"),
    ],
)
def test_a_file_that_does_not_parse_names_the_line(path, data, where):
    with pytest.raises(MetricsFileError, match=f"^{path}: {where}"):
        read_metrics(path, data)


def test_a_file_over_one_mebibyte_is_refused_before_parsing():
    data = b'{"a": 1' + b" " * MAX_METRICS_FILE + b"}"
    with pytest.raises(MetricsFileError, match=r"^metrics.json: 1,048,584 bytes is more than the 1,048,576 bytes"):
        read_metrics("metrics.json", data)


@pytest.mark.parametrize(
    ("path", "data", "word"),
    [
        ("m.json", b'{"val": {"acc": NaN}}', "NaN"),
        ("m.json", b'{"acc": Infinity}', "infinite"),
        ("m.json", b'{"acc": -1e999}', "infinite"),
        ("m.yaml", b"acc: .nan\n", "NaN"),
        ("m.toml", b"acc = inf\n", "infinite"),
    ],
)
def test_nan_and_infinity_are_refused(path, data, word):
    with pytest.raises(MetricsFileError, match=f"'(val.)?acc' is {word}, which cannot be compared; write a finite"):
        read_metrics(path, data)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'{"acc": "0.9"}', "text \\('0.9'\\)"),
        (b'{"acc": true}', "a boolean \\(true\\)"),
        (b'{"acc": null}', "empty \\(null\\)"),
    ],
)
def test_a_value_that_is_not_a_number_is_refused(data, kind):
    with pytest.raises(MetricsFileError, match=f"^metrics.json: 'acc' is {kind}, not a number; metrics are numbers"):
        read_metrics("metrics.json", data)


def test_a_list_is_refused_with_the_issue_s_words():
    with pytest.raises(MetricsFileError) as caught:
        read_metrics("metrics.json", b'{"scores": [0.9, 0.8]}')
    assert str(caught.value) == ("metrics.json: 'scores' is a list; metrics are numbers or nested mappings of numbers")


def test_a_key_containing_a_dot_is_ambiguous():
    with pytest.raises(MetricsFileError, match=r"^m.json: the key 'val.acc.top1' contains a dot.*nest it instead"):
        read_metrics("m.json", b'{"val": {"acc.top1": 0.9}}')


@pytest.mark.parametrize("data", [b"[1, 2]", b"0.93", b'"accuracy"'])
def test_the_top_level_must_be_a_mapping(data):
    with pytest.raises(MetricsFileError, match=r"^m.json: the top level is .*, not a mapping; write name: value pairs"):
        read_metrics("m.json", data)


def test_an_unknown_extension_says_which_are_read():
    with pytest.raises(MetricsFileError, match=r"^m.csv: a metrics file is JSON, YAML or TOML.*\.toml"):
        read_metrics("m.csv", b"acc,0.9\n")


def test_a_yaml_alias_bomb_is_refused_not_walked():
    lines = ["a0: &a0 {v: 1}"] + [f"a{i}: &a{i} {{x: *a{i - 1}, y: *a{i - 1}}}" for i in range(1, 30)]
    with pytest.raises(MetricsFileError, match="more than 100,000 values"):
        read_metrics("m.yaml", "\n".join(lines).encode())


def test_deep_nesting_is_refused():
    with pytest.raises(MetricsFileError, match="^m.json: "):
        read_metrics("m.json", b'{"a":' * 5000 + b"1" + b"}" * 5000)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), extension=st.sampled_from([".json", ".yaml", ".yml", ".toml", ".txt"]))
def test_random_bytes_give_metrics_or_a_metrics_file_error(data, extension):
    try:
        metrics = read_metrics("m" + extension, data)
    except MetricsFileError as e:
        assert str(e).startswith("m" + extension + ": ")
    else:
        assert all(isinstance(v, float) for v in metrics.values())


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(st.floats() | st.text(max_size=3) | st.booleans(), lambda c: st.dictionaries(st.text(max_size=4), c))
)
def test_random_json_documents_give_metrics_or_a_metrics_file_error(document):
    try:
        read_metrics("m.json", json.dumps(document).encode())
    except MetricsFileError:
        pass


# --- comparing ----------------------------------------------------------------------


def test_better_worse_and_changed_follow_the_direction():
    p = pipeline("accuracy: {direction: higher}\nloss: {direction: lower}\n")
    c = compare(
        p,
        {"evaluate": {"accuracy": 0.95, "loss": 0.4, "epochs": 4}},
        {"evaluate": {"accuracy": 0.9, "loss": 0.3, "epochs": 3}},
    )
    assert row(c, "accuracy").verdict == "better"
    assert row(c, "loss").verdict == "worse"
    assert row(c, "epochs").verdict == "changed"  # no direction: it moved, neither better nor worse
    assert row(c, "loss").delta == pytest.approx(0.1) and row(c, "loss").delta_pct == pytest.approx(33.333, rel=1e-3)
    assert c.gates_failed == 0 and all(r.gate is None for r in c.rows)


def test_a_metric_the_base_lacks_is_new_and_one_the_head_lacks_is_missing():
    c = compare(pipeline(), {"evaluate": {"f1": 0.5}}, {"evaluate": {"old": 1.0}})
    assert (row(c, "f1").verdict, row(c, "f1").base, row(c, "f1").delta) == ("new", None, None)
    assert (row(c, "old").verdict, row(c, "old").head) == ("missing", None)
    assert row(c, "old").reason == "this job did not produce it"


def test_two_tasks_with_the_same_metric_name_are_two_rows():
    p = pipeline("acc: {direction: higher}\n", more="  - name: train\n    command: x\n")
    c = compare(
        p, {"evaluate": {"acc": 0.9}, "train": {"acc": 0.99}}, {"evaluate": {"acc": 0.8}, "train": {"acc": 0.99}}
    )
    assert [(r.task, r.name, r.verdict) for r in c.rows] == [("evaluate", "acc", "better"), ("train", "acc", "same")]


def test_a_change_within_an_absolute_noise_band_is_the_same():
    p = pipeline("acc: {direction: higher, noise: 0.002}\n")
    within = compare(p, {"evaluate": {"acc": 0.9015}}, {"evaluate": {"acc": 0.9}})
    assert (row(within, "acc").verdict, row(within, "acc").reason) == ("same", "≈ within noise")
    beyond = compare(p, {"evaluate": {"acc": 0.897}}, {"evaluate": {"acc": 0.9}})
    assert row(beyond, "acc").verdict == "worse"


def test_a_noise_band_in_percent_is_of_the_base_value():
    p = pipeline("loss: {direction: lower, noise: '1%'}\n")
    assert row(compare(p, {"evaluate": {"loss": 201.9}}, {"evaluate": {"loss": 200}}), "loss").verdict == "same"
    assert row(compare(p, {"evaluate": {"loss": 202.1}}, {"evaluate": {"loss": 200}}), "loss").verdict == "worse"
    assert row(compare(p, {"evaluate": {"loss": -2.01}}, {"evaluate": {"loss": -2}}), "loss").verdict == "same"


def test_gate_min_and_max_judge_the_head_value():
    p = pipeline("acc: {gate: {min: 0.9}}\nlatency: {gate: {max: 120}}\n")
    c = compare(p, {"evaluate": {"acc": 0.88, "latency": 100}}, None)
    assert (row(c, "acc").gate, row(c, "acc").reason, row(c, "acc").gate_text) == (
        "fail",
        "0.88 is below the minimum 0.9",
        "≥ 0.9",
    )
    assert (row(c, "latency").gate, row(c, "latency").gate_text) == ("pass", "≤ 120")
    c = compare(p, {"evaluate": {"acc": 0.9, "latency": 121}}, None)
    assert row(c, "acc").gate == "pass"
    assert (row(c, "latency").gate, row(c, "latency").reason) == ("fail", "121 is above the maximum 120")
    assert c.gates_failed == 1


def test_max_regression_absolute_in_the_bad_direction():
    p = pipeline("loss: {direction: lower, gate: {max_regression: 0.05}}\n")
    assert row(compare(p, {"evaluate": {"loss": 0.35}}, {"evaluate": {"loss": 0.3}}), "loss").gate == "pass"
    failed = row(compare(p, {"evaluate": {"loss": 0.36}}, {"evaluate": {"loss": 0.3}}), "loss")
    assert (failed.gate, failed.gate_text) == ("fail", "at most 0.05 worse")
    assert "0.06 worse than the baseline, more than the 0.05 allowed" in failed.reason
    improved = row(compare(p, {"evaluate": {"loss": 0.1}}, {"evaluate": {"loss": 0.3}}), "loss")
    assert (improved.gate, improved.verdict) == ("pass", "better")


def test_max_regression_in_percent_of_the_base_magnitude():
    p = pipeline("acc: {direction: higher, gate: {max_regression: '1%'}}\n")
    assert row(compare(p, {"evaluate": {"acc": 0.891}}, {"evaluate": {"acc": 0.9}}), "acc").gate == "pass"
    failed = row(compare(p, {"evaluate": {"acc": 0.88}}, {"evaluate": {"acc": 0.9}}), "acc")
    assert (failed.gate, failed.gate_text) == ("fail", "at most 1% worse")
    assert failed.reason.startswith("2.22% worse than the baseline, more than the 1% allowed")


def test_max_regression_without_a_base_is_not_judged_and_not_failed():
    p = pipeline(
        "acc: {direction: higher, gate: {max_regression: '1%'}}\nf1: {direction: higher, gate: {min: 0.5, max_regression: 0.1}}\n"
    )
    c = compare(p, {"evaluate": {"acc": 0.5, "f1": 0.6}}, None)
    assert (row(c, "acc").gate, row(c, "acc").reason) == (None, "max_regression not judged: no baseline value")
    assert (row(c, "f1").gate, row(c, "f1").gate_text) == ("pass", "≥ 0.5")
    assert c.gates_failed == 0


def test_required_fails_when_the_metric_is_missing():
    p = pipeline("auc: {gate: {required: true}}\n")
    present = compare(p, {"evaluate": {"auc": 0.7}}, {"evaluate": {"auc": 0.7}})
    assert (row(present, "auc").gate, row(present, "auc").gate_text) == ("pass", "required")
    gone = compare(p, {"evaluate": {}}, {"evaluate": {"auc": 0.7}})
    assert (row(gone, "auc").verdict, row(gone, "auc").gate) == ("missing", "fail")
    assert "required, but no task produced it" in row(gone, "auc").reason


def test_a_gate_on_a_metric_no_task_produced_gets_a_failed_row():
    p = pipeline("acc: {direction: higher, gate: {min: 0.9}}\nloss: {direction: lower}\n")
    c = compare(p, {"evaluate": {"f1": 0.5}}, {"evaluate": {"f1": 0.5}})
    assert [r.name for r in c.rows] == ["f1", "acc"]  # loss has no gate: no row for it
    acc = row(c, "acc")
    assert (acc.head, acc.base, acc.verdict, acc.gate, acc.reason) == (
        None,
        None,
        "missing",
        "fail",
        "no task produced it",
    )
    assert c.gates_failed == 1


def test_as_json_is_the_published_shape():
    p = pipeline("acc: {direction: higher, gate: {min: 0.9}}\n")
    ref = BaseRef("20261201-101530-3fa9c1", commit="def5678", ref="main", age_s=3600.0)
    c = compare(p, {"evaluate": {"acc": 0.88}}, {"evaluate": {"acc": 0.93}}, base_ref=ref, problems=["x: missing"])
    out = json.loads(json.dumps(as_json(c), allow_nan=False))
    assert out["base"]["job"] == "20261201-101530-3fa9c1" and out["base"]["commit"] == "def5678"
    assert out["gates_failed"] == 1 and out["problems"] == ["x: missing"]
    (metric,) = out["metrics"]
    assert {"task", "name", "head", "base", "delta", "verdict", "gate", "reason"} <= set(metric)
    assert (metric["task"], metric["name"], metric["verdict"], metric["gate"]) == ("evaluate", "acc", "worse", "fail")
    assert as_json(compare(p, {}, None))["base"] is None


def test_a_task_the_pipeline_no_longer_has_still_shows_its_metrics():
    c = compare(pipeline(), {}, {"old-task": {"acc": 0.9}})
    assert [(r.task, r.verdict) for r in c.rows] == [("old-task", "missing")]
