"""Cron expressions as GitHub Actions writes them: five fields, names, ranges, steps and lists.

Then the clock: which minutes a schedule fires in, the next tick to sleep
until, and the one latest tick missed while the daemon was down, checked
against a minute-by-minute walk for random schedules.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline.cron import latest_tick, matches, next_tick, parse_cron


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


@pytest.mark.parametrize(
    "expr, message",
    [
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
    ],
)
def test_invalid_expressions_name_the_field(expr, message):
    with pytest.raises(ValueError) as caught:
        parse_cron(expr)
    assert message in str(caught.value)


def test_non_ascii_digits_are_not_numbers():
    with pytest.raises(ValueError):
        parse_cron("٣ * * * *")


# --- ticks ---------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def epoch(*args: int) -> float:
    return utc(*args).timestamp()


@pytest.mark.parametrize(
    "expr, when, fires",
    [
        ("0 3 * * *", utc(2025, 11, 28, 3, 0), True),
        ("0 3 * * *", utc(2025, 11, 28, 3, 0, 59), True),  # minute resolution
        ("0 3 * * *", utc(2025, 11, 28, 3, 1), False),
        ("0 3 * * *", datetime(2025, 11, 28, 3, 0), True),  # naive means UTC
        ("0 3 * * *", datetime(2025, 11, 28, 12, 0, tzinfo=timezone(timedelta(hours=9))), True),  # 03:00 UTC
        ("0 0 * * 1-5", utc(2025, 12, 1, 0, 0), True),  # Monday
        ("0 0 * * 1-5", utc(2025, 11, 30, 0, 0), False),  # Sunday
        ("0 0 * * 0", utc(2025, 11, 30, 0, 0), True),
        ("0 0 * * 7", utc(2025, 11, 30, 0, 0), True),
        ("0 0 1 * *", utc(2025, 12, 1, 0, 0), True),
        ("0 0 1 * *", utc(2025, 12, 2, 0, 0), False),
        ("0 0 * 2 *", utc(2025, 3, 1, 0, 0), False),
        # both day fields restricted: either matches (Friday the 13th rule)
        ("0 0 13 * 5", utc(2025, 11, 13, 0, 0), True),  # the 13th, a Thursday
        ("0 0 13 * 5", utc(2025, 11, 14, 0, 0), True),  # a Friday
        ("0 0 13 * 5", utc(2025, 11, 12, 0, 0), False),
        # only one restricted: both must hold (the other is every day anyway)
        ("0 0 13 * *", utc(2025, 11, 14, 0, 0), False),
        ("0 0 29 2 *", utc(2024, 2, 29, 0, 0), True),
    ],
)
def test_matches(expr, when, fires):
    assert matches(parse_cron(expr), when) is fires


def test_a_missed_week_of_hourly_ticks_is_one_tick_the_latest():
    last_run = epoch(2025, 11, 17, 9, 0)
    now = epoch(2025, 11, 24, 9, 30, 12)
    assert latest_tick(parse_cron("0 * * * *"), last_run, now) == epoch(2025, 11, 24, 9, 0)


@pytest.mark.parametrize(
    "expr, after, until, expected",
    [
        ("0 3 * * *", (2025, 11, 27, 3, 0), (2025, 11, 28, 3, 0), (2025, 11, 28, 3, 0)),  # until is included
        ("0 3 * * *", (2025, 11, 28, 3, 0), (2025, 11, 28, 3, 0), None),  # after is not
        ("0 3 * * *", (2025, 11, 28, 2, 0), (2025, 11, 28, 2, 59), None),
        ("*/15 * * * *", (2025, 1, 1, 0, 0), (2025, 1, 1, 10, 14), (2025, 1, 1, 10, 0)),
        ("0 0 1 */3 *", (2024, 6, 1, 0, 0), (2025, 6, 15, 0, 0), (2025, 4, 1, 0, 0)),  # Jan, Apr, Jul, Oct
        ("30 9 * * mon", (2025, 11, 1, 0, 0), (2025, 11, 30, 23, 59), (2025, 11, 24, 9, 30)),
        ("0 0 13 * 5", (2025, 11, 1, 0, 0), (2025, 11, 30, 0, 0), (2025, 11, 28, 0, 0)),  # a Friday after the 13th
        ("0 12 29 2 *", (2020, 3, 1, 0, 0), (2027, 1, 1, 0, 0), (2024, 2, 29, 12, 0)),
        ("0 0 31 * *", (2025, 1, 1, 0, 0), (2025, 7, 15, 0, 0), (2025, 5, 31, 0, 0)),  # June has no 31st
        ("59 23 31 12 *", (2024, 1, 1, 0, 0), (2025, 12, 30, 0, 0), (2024, 12, 31, 23, 59)),  # a year back
        ("0 0 30 2 *", (2020, 1, 1, 0, 0), (2025, 1, 1, 0, 0), None),  # never
    ],
)
def test_latest_tick(expr, after, until, expected):
    result = latest_tick(parse_cron(expr), epoch(*after), epoch(*until))
    assert result == (epoch(*expected) if expected else None)


@pytest.mark.parametrize(
    "expr, after, expected",
    [
        ("0 3 * * *", (2025, 11, 28, 3, 0), (2025, 11, 29, 3, 0)),  # strictly after
        ("0 3 * * *", (2025, 11, 28, 2, 59, 59), (2025, 11, 28, 3, 0)),
        ("*/15 * * * *", (2025, 1, 1, 10, 14), (2025, 1, 1, 10, 15)),
        ("0 0 1 1 *", (2025, 6, 1, 0, 0), (2026, 1, 1, 0, 0)),  # over the year's end
        ("30 9 * * mon", (2025, 11, 30, 12, 0), (2025, 12, 1, 9, 30)),
        ("0 0 13 * 5", (2025, 11, 1, 0, 0), (2025, 11, 7, 0, 0)),  # a Friday before the 13th
        ("0 12 29 2 *", (2025, 3, 1, 0, 0), (2028, 2, 29, 12, 0)),
        ("0 0 31 * *", (2025, 4, 1, 0, 0), (2025, 5, 31, 0, 0)),
    ],
)
def test_next_tick(expr, after, expected):
    assert next_tick(parse_cron(expr), epoch(*after)) == epoch(*expected)


def test_next_tick_of_fractional_seconds_is_the_next_whole_minute():
    assert next_tick(parse_cron("* * * * *"), epoch(2025, 1, 1, 0, 0) + 0.5) == epoch(2025, 1, 1, 0, 1)


def test_a_schedule_that_never_fires_has_no_next_tick():
    with pytest.raises(ValueError, match="within five years"):
        next_tick(parse_cron("0 0 30 2 *"), epoch(2025, 1, 1, 0, 0))


def test_year_long_gaps():
    """The walk skips whole months, days and hours, so a year costs a few hundred steps (about a millisecond)."""
    cron = parse_cron("59 23 31 12 *")
    assert latest_tick(cron, epoch(2025, 1, 1, 0, 0), epoch(2025, 12, 31, 23, 58)) is None
    assert latest_tick(cron, epoch(2024, 12, 31, 23, 59), epoch(2025, 12, 31, 23, 59)) == epoch(2025, 12, 31, 23, 59)
    assert next_tick(cron, epoch(2024, 12, 31, 23, 59)) == epoch(2025, 12, 31, 23, 59)


FIELD = st.sampled_from(["*", "*/7", "0", "5,35", "1-3", "*/2"])
DAY = st.sampled_from(["*", "1", "13", "29", "31", "*/10", "1-7"])
MONTH = st.sampled_from(["*", "2", "*/4", "jan,feb"])
WEEKDAY = st.sampled_from(["*", "0", "5", "1-5", "sat,sun"])


@settings(max_examples=60, deadline=None)
@given(
    minute=FIELD,
    hour=st.sampled_from(["*", "0", "*/5", "23"]),
    day=DAY,
    month=MONTH,
    weekday=WEEKDAY,
    start=st.integers(0, 4 * 365 * 24 * 60),
    span=st.integers(0, 3 * 24 * 60),
)
def test_ticks_agree_with_a_minute_by_minute_walk(minute, hour, day, month, weekday, start, span):
    cron = parse_cron(f"{minute} {hour} {day} {month} {weekday}")
    after = epoch(2023, 1, 1, 0, 0) + start * 60 + 17  # off the minute, as a clock is
    until = after + span * 60
    fires = [
        t
        for t in range(int(after) // 60 * 60 + 60, int(until) + 1, 60)
        if matches(cron, datetime.fromtimestamp(t, timezone.utc))
    ]
    assert latest_tick(cron, after, until) == (float(fires[-1]) if fires else None)
    if fires:
        assert next_tick(cron, after) == float(fires[0])
