"""Cron expressions as GitHub Actions writes them: five fields, UTC.

Parsed into the set of allowed values per field; `matches`, `next_tick` and
`latest_tick` answer the daemon's clock questions from those sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# (name, lowest, highest, {month or weekday name: its number}) per field, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
            )
        },
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 is folded into 0)
    days_restricted: bool  # cron's rule: when both day fields are restricted, either may match
    weekdays_restricted: bool


def parse_cron(expr: str) -> Cron:
    """Parse '0 3 * * 1-5'; raise ValueError naming the field that is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has {len(fields)}"
        )
    sets = []
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        sets.append(_parse_field(text, name, low, high, names))
    weekdays = frozenset(0 if d == 7 else d for d in sets[4])
    return Cron(
        sets[0],
        sets[1],
        sets[2],
        sets[3],
        weekdays,
        days_restricted=fields[2] != "*",
        weekdays_restricted=fields[4] != "*",
    )


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not _is_number(step_text) or int(step_text) == 0:
                raise ValueError(f"{name}: step '{step_text}' must be a positive whole number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if start > end:
                raise ValueError(f"{name}: range '{base}' runs backwards")
        else:
            start = _value(base, name, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not _is_number(text):
        raise ValueError(f"{name}: '{text}' is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}-{high}")
    return value


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # isdigit alone takes '٣'


# --- ticks -----------------------------------------------------------------------------
#
# The daemon asks two questions of a schedule: "when do I wake up next?"
# (next_tick) and, after downtime, "which one tick did I miss?" (latest_tick:
# a missed week of hourly ticks runs once, not 168 times). Both walk the
# calendar field by field, skipping a whole month, day or hour as soon as that
# field cannot match, so a year-long gap costs a few hundred steps, not half a
# million minutes.

_MINUTE = timedelta(minutes=1)
_FIVE_YEARS = timedelta(days=5 * 366)


def matches(cron: Cron, when: datetime) -> bool:
    """Whether the schedule fires in the minute of `when` (naive means UTC; seconds are ignored)."""
    when = _utc(when)
    return (
        when.minute in cron.minutes
        and when.hour in cron.hours
        and when.month in cron.months
        and _day_matches(cron, when)
    )


def latest_tick(cron: Cron, after: float, until: float) -> float | None:
    """The latest scheduled minute t with after < t <= until (epoch seconds), or None when there is none."""
    t = _from_epoch(until).replace(second=0, microsecond=0)
    floor = _from_epoch(after)
    while t > floor:
        if t.month not in cron.months:
            t = t.replace(day=1, hour=0, minute=0) - _MINUTE  # the last minute of the month before
        elif not _day_matches(cron, t):
            t = t.replace(hour=0, minute=0) - _MINUTE
        elif t.hour not in cron.hours:
            t = t.replace(minute=0) - _MINUTE
        elif t.minute not in cron.minutes:
            earlier = [m for m in cron.minutes if m < t.minute]
            t = t.replace(minute=max(earlier)) if earlier else t.replace(minute=0) - _MINUTE
        else:
            return t.timestamp()
    return None


def next_tick(cron: Cron, after: float) -> float:
    """The first scheduled minute strictly after `after`; ValueError when none falls within five years.

    Five years covers every real calendar rule (29 February comes round in
    four); a schedule that never fires (30 February) is reported, not looped on.
    """
    start = _from_epoch(after).replace(second=0, microsecond=0) + _MINUTE
    t, limit = start, start + _FIVE_YEARS
    while t <= limit:
        if t.month not in cron.months:
            t = _first_of_next_month(t)
        elif not _day_matches(cron, t):
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
        elif t.hour not in cron.hours:
            t = t.replace(minute=0) + timedelta(hours=1)
        elif t.minute not in cron.minutes:
            later = [m for m in cron.minutes if m > t.minute]
            t = t.replace(minute=min(later)) if later else t.replace(minute=0) + timedelta(hours=1)
        else:
            return t.timestamp()
    raise ValueError("the schedule does not fire within five years")


def _day_matches(cron: Cron, when: datetime) -> bool:
    """Cron's day rule: when both day fields are restricted, either may match; otherwise both must."""
    day = when.day in cron.days
    weekday = (when.weekday() + 1) % 7 in cron.weekdays  # Python's Monday is 0, cron's Sunday is 0
    if cron.days_restricted and cron.weekdays_restricted:
        return day or weekday
    return day and weekday


def _first_of_next_month(when: datetime) -> datetime:
    if when.month == 12:
        return when.replace(year=when.year + 1, month=1, day=1, hour=0, minute=0)
    return when.replace(month=when.month + 1, day=1, hour=0, minute=0)


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
