"""Pipeline parameters: conversion of overrides, the values a job runs with, and the environment tasks get."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline.model import normalise, to_fasttrack
from fasttrack_gitops.core.pipeline.params import (
    Param,
    ParamError,
    apply,
    convert,
    env_name,
    environment,
    from_item,
    from_request,
    parse_assignments,
    parse_lines,
    to_item,
)


def param(kind: str, default, choices=()) -> Param:
    return from_item({"name": "p", "type": kind, "default": default, "choices": list(choices)})


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("integer", "3", 3),
        ("integer", " -12 ", -12),
        ("number", "0.5", 0.5),
        ("number", "2", 2),
        ("number", "1e-3", 0.001),
        ("boolean", "TRUE", True),
        ("boolean", "no", False),
        ("boolean", "0", False),
        ("string", " spaced $(x) ", " spaced $(x) "),
    ],
)
def test_text_converts_to_the_parameter_type(kind, text, value):
    converted = convert(param(kind, value), text)
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("integer", "3.5"),
        ("integer", "x"),
        ("integer", True),
        ("number", "inf"),
        ("number", "nan"),
        ("boolean", "2"),
        ("boolean", 1),
        ("string", 3),
    ],
)
def test_a_value_that_does_not_fit_the_type_is_refused(kind, given):
    with pytest.raises(ParamError, match="parameter 'p' is"):
        convert(param(kind, {"integer": 1, "number": 1.0, "boolean": True, "string": "s"}[kind]), given)


def test_json_scalars_of_the_right_type_are_taken_as_they_are():
    assert convert(param("number", 0.1), 2) == 2
    assert convert(param("boolean", False), True) is True
    assert convert(param("integer", 1), 7) == 7


def test_choices_bound_the_values():
    mode = param("string", "fast", ["fast", "slow"])
    assert convert(mode, "slow") == "slow"
    with pytest.raises(ParamError, match="'medium' is not one of fast, slow"):
        convert(mode, "medium")


def test_apply_sets_values_and_names_the_known_parameters_for_an_unknown_one():
    params = (param("integer", 1),)
    [applied] = apply(params, {"p": "4"}, pipeline="x")
    assert (applied.value, applied.default, applied.overridden) == (4, 1, True)
    with pytest.raises(ParamError, match="pipeline 'x' has no parameter 'q', 'r'; its parameters: p"):
        apply(params, {"q": "1", "r": "2"}, pipeline="x")


def test_the_environment_names_and_texts():
    params = (
        from_item({"name": "learning_rate", "default": 0.001}),
        from_item({"name": "Dry", "default": True}),
        from_item({"name": "n", "default": 3, "value": 5}),
    )
    assert environment(params) == {"PARAM_LEARNING_RATE": "0.001", "PARAM_DRY": "true", "PARAM_N": "5"}
    assert env_name("a_b") == "PARAM_A_B"


def test_assignments_keep_everything_after_the_first_equals_sign():
    assert parse_assignments(["a=b=c", "x=", "a=again"]) == {"a": "again", "x": ""}
    assert parse_lines("# note\n lr=0.1 \n\nnote=a b\n", where="input") == {"lr": "0.1", "note": "a b"}
    for bad in ("=1", "1x=2", "no-equals", "bad-name=1"):
        with pytest.raises(ParamError, match="write NAME=VALUE"):
            parse_assignments([bad])


def test_a_request_gives_an_object_of_scalars():
    assert from_request(None) == {} and from_request({"a": 1, "b": "x", "c": False}) == {"a": 1, "b": "x", "c": False}
    for bad in ([], {"a": None}, {"a": {"b": 1}}, {"a b": 1}):
        with pytest.raises(ParamError):
            from_request(bad)


def test_a_job_spec_records_an_override_as_value_and_reads_it_back():
    pipeline = normalise(
        {"name": "p", "version": "1", "params": [{"name": "n", "default": 1}], "tasks": [{"name": "a"}]}
    )
    [n] = apply(pipeline.params, {"n": "2"}, pipeline="p")
    assert to_item(n, with_value=True) == {"name": "n", "type": "integer", "default": 1, "value": 2}
    assert to_item(n) == {"name": "n", "type": "integer", "default": 1}  # a file (an export) has no value
    spec = to_fasttrack(type(pipeline)(**{**pipeline.__dict__, "params": (n,)}), include_gitops=True)
    assert normalise(spec).params == (n,)


VALUES = {
    "integer": st.integers(min_value=-(10**12), max_value=10**12),
    "number": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "boolean": st.booleans(),
    "string": st.text(max_size=40).filter(lambda s: "\x00" not in s),
}


@given(st.sampled_from(sorted(VALUES)).flatmap(lambda k: st.tuples(st.just(k), VALUES[k])))
def test_a_value_written_into_the_environment_converts_back_to_itself(kind_and_value):
    """What `run --param NAME=$PARAM_NAME` would give: the text of a value converts back to the value."""
    kind, value = kind_and_value
    p = param(kind, value)
    text = environment((p,))["PARAM_P"]
    back = convert(p, text)
    if kind == "number":
        assert math.isclose(back, value, rel_tol=0, abs_tol=0) or back == value
    else:
        assert back == value
