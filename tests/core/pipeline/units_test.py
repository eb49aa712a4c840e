"""Sizes, amounts and durations: the parsers behind cpu, mem, shmem, GPU shares, timeout and retry delay."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline.schema import schema_path
from fasttrack_gitops.core.pipeline.units import (
    OutOfRange,
    format_duration,
    format_size,
    parse_amount,
    parse_duration,
    parse_size,
)

KIB, MIB, GIB, TIB, PIB = (1 << s for s in (10, 20, 30, 40, 50))


def _schema_defs() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))["$defs"]


def _string_pattern(name: str) -> str:
    (branch,) = [b for b in _schema_defs()[name]["anyOf"] if b.get("type") == "string"]
    return branch["pattern"]


# --- parse_size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size",
    [
        ("512m", 512 * MIB),
        ("16g", 16 * GIB),
        ("1.5G", 3 * GIB // 2),
        ("2GiB", 2 * GIB),
        ("2gib", 2 * GIB),
        ("64M", 64 * MIB),
        ("256mb", 256 * MIB),
        ("1k", KIB),
        ("1t", TIB),
        ("1p", PIB),
        ("100b", 100),
        ("100", 100),
        ("0g", 0),
        ("0", 0),
        ("0.5m", MIB // 2),
    ],
)
def test_parse_size_binary_units(text, size):
    assert parse_size(text) == size


def test_parse_size_integer_is_bytes():
    assert parse_size(1024) == 1024
    assert parse_size(0) == 0


@pytest.mark.parametrize(
    "bad", ["16 GB", "16gg", "g", "", "-1g", ".5g", "5.g", "1e3", "1,5g", "16x", "1.5.2g", "16 g", "two"]
)
def test_parse_size_refuses_other_spellings(bad):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(bad)


def test_parse_size_refuses_negative_integers_and_booleans():
    with pytest.raises(ValueError, match="negative size"):
        parse_size(-1)
    with pytest.raises(ValueError):
        parse_size(True)


def test_parse_size_accepts_the_kubernetes_spelling_2Gi():
    assert parse_size("2Gi") == 2 * GIB


# --- format_size -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, text",
    [
        (512 * MIB, "512m"),
        (16 * GIB, "16g"),
        (3 * GIB // 2, "1536m"),
        (KIB, "1k"),
        (PIB, "1p"),
        (1024 * PIB, "1024p"),
        (0, "0"),
        (1023, "1023"),
    ],
)
def test_format_size_writes_the_largest_exact_unit(size, text):
    assert format_size(size) == text


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(min_value=0, max_value=1 << 10), unit=st.sampled_from([KIB, MIB, GIB, TIB, PIB]))
def test_format_size_round_trips_whole_units(amount, unit):
    assert parse_size(format_size(amount * unit)) == amount * unit


def test_a_size_beyond_one_exbibyte_is_out_of_range_not_a_crash():
    with pytest.raises(OutOfRange, match="more than 1 EiB"):
        parse_size("2000P")
    with pytest.raises(OutOfRange):
        parse_size("9" * 400)


def test_a_duration_beyond_a_year_is_out_of_range():
    with pytest.raises(OutOfRange, match="more than a year"):
        parse_duration("8785h")
    with pytest.raises(OutOfRange):
        parse_duration(10**400)


def test_format_size_is_exact_for_any_byte_count():
    assert parse_size(format_size(1025)) == 1025  # written "1k"
    assert parse_size(format_size(1_000_000_001)) == 1_000_000_001  # written "954m"


# --- parse_amount ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, amount", [(2, 2.0), (0.5, 0.5), ("5", 5.0), ("1.5", 1.5), (0, 0.0), ("0", 0.0)])
def test_parse_amount(value, amount):
    assert parse_amount(value) == amount


@pytest.mark.parametrize("bad", ["abc", True, -1, "-0.5", float("nan"), float("inf"), ""])
def test_parse_amount_refuses(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_parse_amount_positive_refuses_zero():
    assert parse_amount(0) == 0.0
    with pytest.raises(ValueError, match="must be positive"):
        parse_amount(0, positive=True)
    assert parse_amount("0.25", positive=True) == 0.25


# --- durations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("90s", 90),
        ("45m", 2700),
        ("2h", 7200),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1d", 86400),
        ("1.5h", 5400),
        ("1m30s", 90),
        (90, 90),
        (1.5, 1.5),
        (0, 0),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "", "m", "1x", "1h 30m", "600", "90S", "h1", "1.h", True, -1])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    "seconds, text", [(5400, "1h30m"), (90, "1m30s"), (0.25, "250ms"), (86401, "1d1s"), (3600, "1h")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- the schema's patterns and the parsers agree -------------------------------------------------------------


def _parser_accepts(parse, text: str) -> bool:
    try:
        parse(text)
    except OutOfRange:
        return True  # well spelt, too large: semantics reports it
    except ValueError:
        return False
    return True


SIZE_TEXT = st.text(alphabet="0123456789.kKmMgGtTpPiIbBxX -", max_size=8)


@settings(max_examples=500, deadline=None)
@given(text=SIZE_TEXT | st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,3})?([kKmMgGtTpP]([iI]?[bB])?|[bB])?\Z"))
def test_schema_size_pattern_and_parse_size_agree(text):
    schema_accepts = re.search(_string_pattern("size"), text) is not None
    assert schema_accepts == _parser_accepts(parse_size, text), text


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789.msdhx ", max_size=8))
def test_schema_duration_pattern_and_parse_duration_agree(text):
    schema_accepts = re.search(_string_pattern("duration"), text) is not None
    assert schema_accepts == _parser_accepts(parse_duration, text), text


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="0123456789.-abc ", max_size=6))
def test_schema_gpu_amount_pattern_and_parse_amount_agree(text):
    schema_accepts = re.search(_string_pattern("gpuAmount"), text) is not None
    try:
        amount = parse_amount(text)
        parser_accepts = math.isfinite(amount)
    except ValueError:
        parser_accepts = False
    if schema_accepts:
        assert parser_accepts, text  # everything the schema lets through converts
