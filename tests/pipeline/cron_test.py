"""Cron expressions as GitHub Actions writes them: five fields, names, ranges, steps and lists."""

from __future__ import annotations

import pytest

from fasttrack_gitops.pipeline.cron import parse_cron


def test_every_night_at_three():
    cron = parse_cron("0 3 * * *")
    assert cron.minutes == {0} and cron.hours == {3}
    assert cron.days == set(range(1, 32)) and cron.months == set(range(1, 13))
    assert cron.weekdays == set(range(7))
    assert not cron.days_restricted and not cron.weekdays_restricted


def test_weekdays_range():
    cron = parse_cron("0 3 * * 1-5")
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert cron.weekdays_restricted and not cron.days_restricted


@pytest.mark.parametrize("expr", ["*/15 * * * MON-FRI", "*/15 * * * mon-fri", "*/15 * * * Mon-Fri"])
def test_day_names_are_case_insensitive(expr):
    cron = parse_cron(expr)
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.weekdays == {1, 2, 3, 4, 5}


def test_month_names():
    cron = parse_cron("0 0 1 jan,JUL *")
    assert cron.months == {1, 7} and cron.days == {1}
    assert cron.days_restricted


def test_sunday_is_0_and_7():
    assert parse_cron("0 0 * * 7").weekdays == {0}
    assert parse_cron("0 0 * * 0").weekdays == {0}
    assert parse_cron("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert parse_cron("0 0 * * sun").weekdays == {0}


def test_steps_lists_and_ranges():
    assert parse_cron("1,2,3-9/3 * * * *").minutes == {1, 2, 3, 6, 9}
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}  # a start with a step runs to the end
    assert parse_cron("0 */6 * * *").hours == {0, 6, 12, 18}
    assert parse_cron("  0   3 * *   * ").hours == {3}  # any whitespace between fields


@pytest.mark.parametrize("expr, message", [
    ("0 25 * * *", "hour: 25 is outside 0-23"),
    ("60 * * * *", "minute: 60 is outside 0-59"),
    ("0 0 0 * *", "day of month: 0 is outside 1-31"),
    ("0 0 * 13 *", "month: 13 is outside 1-12"),
    ("0 0 * * 8", "day of week: 8 is outside 0-7"),
    ("* * *", "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has 3"),
    ("* * * * * *", "this one has 6"),
    ("", "this one has 0"),
    ("@daily", "this one has 1"),
    ("*/0 * * * *", "minute: step '0' must be a positive whole number"),
    ("*/x * * * *", "minute: step 'x' must be a positive whole number"),
    ("5-1 * * * *", "minute: range '5-1' runs backwards"),
    ("0 0 * * fri-mon", "day of week: range 'fri-mon' runs backwards"),
    ("0 0 1 foo *", "month: 'foo' is not a number or a name (jan, feb"),
    ("x * * * *", "minute: 'x' is not a number"),
    ("1,,2 * * * *", "minute: '' is not a number"),
    ("-1 * * * *", "minute: '' is not a number"),
    ("0 0 * jan-mon *", "month: 'mon' is not a number or a name"),
])
def test_invalid_expressions_name_the_field(expr, message):
    with pytest.raises(ValueError) as caught:
        parse_cron(expr)
    assert message in str(caught.value)


def test_non_ascii_digits_are_not_numbers():
    with pytest.raises(ValueError):
        parse_cron("٣ * * * *")
