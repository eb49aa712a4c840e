"""Cron expressions as GitHub Actions writes them: five fields, UTC.

Parsed into the set of allowed values per field, which is all the daemon's
scheduler needs to find the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass

_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}),
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
        raise ValueError(f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                         f"this one has {len(fields)}")
    sets = []
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        sets.append(_parse_field(text, name, low, high, names))
    weekdays = frozenset(0 if d == 7 else d for d in sets[4])
    return Cron(sets[0], sets[1], sets[2], sets[3], weekdays,
                days_restricted=fields[2] != "*", weekdays_restricted=fields[4] != "*")


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
        raise ValueError(f"{name}: '{text}' is not a number" + (
            f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}-{high}")
    return value


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # isdigit alone takes '٣'
