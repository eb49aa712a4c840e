"""Parsers for the quantities a pipeline writes: sizes, CPU, accelerators, durations.

The schema's patterns say which spellings are allowed; these turn an allowed
spelling into a number (a test checks the two agree). Each raises ValueError
for a spelling it does not accept.
"""

from __future__ import annotations

import math
import re
from functools import cache

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:([kKmMgGtTpP])[iI]?[bB]?|[bB])?")
_SIZE_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MAX_SIZE = 1 << 60  # 1 EiB: far beyond any node, and safely inside float precision for the units above


MAX_DURATION = 366 * 86400  # a timeout or delay longer than a year is a slip


class OutOfRange(ValueError):
    """Well spelt, but too large to mean anything (a 400-digit memory size)."""


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@cache
def _duration_part() -> re.Pattern[str]:
    """Compiled on first use: only a pipeline with a timeout or a retry delay has a duration to read."""
    return re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


def parse_size(value: int | str) -> int:
    """'512m' -> 536870912; '1.5G' -> 1610612736; an integer is bytes. Binary units (Backend.AI's)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size: {value}")
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"not a size: {value!r}")
    number, unit = match.groups()
    size = float(number) * _SIZE_UNITS[unit.lower() if unit else None]
    if size > MAX_SIZE:
        raise OutOfRange(f"size {value!r} is more than 1 EiB")
    return int(size)


def format_size(n: int) -> str:
    """536870912 -> '512m', the way FastTrack writes sizes; exact whenever possible."""
    for unit in ("p", "t", "g", "m", "k"):
        scale = _SIZE_UNITS[unit]
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)  # not a whole number of any unit: exact bytes


def parse_amount(value: int | float | str, *, positive: bool = False) -> float:
    """CPU cores or accelerator shares/devices: 2, 0.5, '5', '1.5'."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = float(value)  # ValueError for non-numeric strings
    except OverflowError:
        raise OutOfRange(f"too large: {value!r}") from None
    if not math.isfinite(number):
        raise OutOfRange(f"not a finite number: {value!r}")
    if number < 0 or (positive and number == 0):
        raise ValueError(f"must be {'positive' if positive else '>= 0'}: {value!r}")
    return number


def parse_duration(value: int | float | str) -> float:
    """Seconds: 90 -> 90.0, '90s' -> 90.0, '45m' -> 2700.0, '1h30m' -> 5400.0."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative duration: {value}")
        if value > MAX_DURATION:
            raise OutOfRange(f"duration {value} is more than a year")
        return float(value)
    text = value
    parts = _duration_part().findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds > MAX_DURATION:
        raise OutOfRange(f"duration {value!r} is more than a year")
    return seconds


def format_duration(seconds: float) -> str:
    """5400 -> '1h30m'; 90 -> '1m30s'; 0.25 -> '250ms'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(round(seconds))
    out = ""
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= scale:
            out += f"{whole // scale}{unit}"
            whole %= scale
    return out
