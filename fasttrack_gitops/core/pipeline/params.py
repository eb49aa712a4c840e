"""Pipeline parameters: their definitions, the values a job runs with, and how a task receives them. Pure.

FastTrack keeps a top-level `params` list in its exports, but its
documentation does not describe an item (the exports we have carry
`params: []`), so fasttrack-gitops defines one (README, "Parameters"):

    params:
      - name: learning_rate        # [A-Za-z_][A-Za-z0-9_]*, unique ignoring case
        type: number               # string | integer | number | boolean (default: the default's type)
        default: 0.001
        description: Step size     # optional
        choices: [0.001, 0.01]     # optional: the only values allowed

A job freezes one value per parameter: the default, or an override given
when it was made (`run --param`, `trigger --param`, the daemon's trigger
API, a `/fasttrack run` comment, a `workflow_dispatch` input). Overrides
arrive as text (or JSON scalars) and are converted to the parameter's type
here, once, before anything runs. A task receives each value as the
environment variable PARAM_<NAME> (the name upper-cased): never through a
command line or a shell, so any text is safe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from fasttrack_gitops.core.errors import UsageError

TYPES = ("string", "integer", "number", "boolean")
ENV_PREFIX = "PARAM_"
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# Compiled on first use: only a pipeline with params, or a run given --param, has a name or an integer to read.
@cache
def _name() -> re.Pattern[str]:
    return re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@cache
def _integer() -> re.Pattern[str]:
    return re.compile(r"[+-]?[0-9]+")


class ParamError(UsageError):
    """An override names no parameter of the pipeline, or its value does not fit the parameter's type."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # one of TYPES
    default: Any
    description: str = ""
    choices: tuple[Any, ...] = ()
    value: Any = None  # what the job runs with: the default unless overridden (from_item fills it in)

    @property
    def overridden(self) -> bool:
        return not _same(self.value, self.default)

    @property
    def env_name(self) -> str:
        return env_name(self.name)


def env_name(name: str) -> str:
    """The variable a task reads a parameter from: PARAM_LEARNING_RATE."""
    return ENV_PREFIX + name.upper()


def type_of(value: Any) -> str:
    """The parameter type a default's YAML value has (a parameter with no `type` takes it)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def from_item(item: Mapping[str, Any]) -> Param:
    """A `params` item (checked by the schema and `problems`, or a stored job's) -> Param."""
    default = item.get("default")
    kind = item.get("type") or type_of(default)
    value = item.get("value", default)  # a job's spec records an override as `value`
    return Param(
        name=str(item.get("name", "")),
        type=kind,
        default=default,
        description=item.get("description") or "",
        choices=tuple(item.get("choices") or ()),
        value=value,
    )


def to_item(param: Param, *, with_value: bool = False) -> dict[str, Any]:
    """The `params` item as a file writes it; with_value adds the job's override (a job's frozen spec)."""
    out: dict[str, Any] = {"name": param.name, "type": param.type, "default": param.default}
    if param.description:
        out["description"] = param.description
    if param.choices:
        out["choices"] = list(param.choices)
    if with_value and param.overridden:
        out["value"] = param.value
    return out


def env_text(value: Any) -> str:
    """A value as its environment variable holds it: true/false, 3, 0.001, the text itself."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def environment(params: Iterable[Param]) -> dict[str, str]:
    """PARAM_<NAME> -> value, for every parameter of a job."""
    return {p.env_name: env_text(p.value) for p in params}


# -- checking definitions (semantics.py turns these into FT140/FT141 at their line) ------------------


def problems(items: list[Any]) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """(path inside `params`, code, message) for each schema-valid item whose meaning is wrong."""
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        if name.upper() in seen:
            yield (
                (i, "name"),
                "FT141",
                (
                    f"parameter '{name}' has the same name as '{seen[name.upper()]}' (names are compared ignoring "
                    f"case: both would be {env_name(name)}); rename one"
                ),
            )
        seen.setdefault(name.upper(), name)
        param = from_item(item)
        if "default" in item and not _fits(param.type, param.default):
            yield (
                (i, "default"),
                "FT140",
                (
                    f"parameter '{name}': default {param.default!r} is not of its type {param.type}; "
                    f"write {_example(param.type)}"
                ),
            )
        for j, choice in enumerate(param.choices):
            if not _fits(param.type, choice):
                yield (
                    (i, "choices", j),
                    "FT140",
                    f"parameter '{name}': choice {choice!r} is not of its type {param.type}",
                )
        if param.choices and "default" in item and not any(_same(param.default, c) for c in param.choices):
            yield (
                (i, "default"),
                "FT140",
                (f"parameter '{name}': default {param.default!r} is not one of its choices {_listed(param.choices)}"),
            )


# -- overrides -------------------------------------------------------------------------------------


def parse_assignments(texts: Iterable[str], *, where: str = "--param") -> dict[str, str]:
    """NAME=VALUE texts -> {NAME: VALUE} (the value may hold any character, '=' too; the last one wins)."""
    found: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not _name().fullmatch(name):
            raise ParamError(f"{where} {text!r}: write NAME=VALUE, NAME of letters, digits and '_' (e.g. lr=0.01)")
        found[name] = value
    return found


def parse_lines(text: str, *, where: str) -> dict[str, str]:
    """NAME=VALUE lines (an Action input); blank lines and # comments skipped."""
    lines = [line.strip() for line in text.splitlines()]
    return parse_assignments((line for line in lines if line and not line.startswith("#")), where=where)


def from_request(value: Any, *, where: str = "params") -> dict[str, Any]:
    """A JSON request's `params`: an object of names to strings, numbers or booleans (None: none given)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamError(f'{where} must be an object of parameter names to values, e.g. {{"lr": "0.01"}}')
    for name, given in value.items():
        if not isinstance(name, str) or not _name().fullmatch(name):
            raise ParamError(f"{where}: {name!r} is not a parameter name (letters, digits and '_')")
        if not isinstance(given, str | int | float | bool):
            raise ParamError(f"{where}.{name}: give a string, a number or a boolean")
    return dict(value)


def apply(params: tuple[Param, ...], overrides: Mapping[str, Any], *, pipeline: str) -> tuple[Param, ...]:
    """The parameters with the overrides as their values; ParamError for an unknown name or a wrong value."""
    by_name = {p.name: p for p in params}
    unknown = [name for name in overrides if name not in by_name]
    if unknown:
        known = ", ".join(p.name for p in params) or "none"
        raise ParamError(
            f"pipeline '{pipeline}' has no parameter {', '.join(repr(n) for n in unknown)}; its parameters: {known}"
        )
    return tuple(replace(p, value=convert(p, overrides[p.name])) if p.name in overrides else p for p in params)


def convert(param: Param, given: Any) -> Any:
    """An override (text, or a JSON scalar) as a value of the parameter's type; ParamError saying what fits."""
    value = _converted(param.type, given)
    if value is None:
        raise ParamError(
            f"parameter '{param.name}' is {_a(param.type)}: {given!r} is not; write {_example(param.type)}"
        )
    if param.choices and not any(_same(value, c) for c in param.choices):
        raise ParamError(f"parameter '{param.name}': {given!r} is not one of {_listed(param.choices)}")
    return value


def _converted(kind: str, given: Any) -> Any:
    if kind == "string":
        return given if isinstance(given, str) else None
    if isinstance(given, str):
        text = given.strip()
        if kind == "boolean":
            low = text.lower()
            return True if low in _TRUE else False if low in _FALSE else None
        if kind == "integer":
            return int(text) if _integer().fullmatch(text) else None
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if _integer().fullmatch(text) else number
    return given if _fits(kind, given) else None


def _fits(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, str)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: True is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _a(kind: str) -> str:
    return {"integer": "an integer", "number": "a number", "boolean": "a boolean", "string": "a string"}[kind]


def _example(kind: str) -> str:
    return {"integer": "e.g. 3", "number": "e.g. 0.01", "boolean": "true or false", "string": "a quoted text"}[kind]


def _listed(choices: tuple[Any, ...]) -> str:
    return ", ".join(env_text(c) for c in choices)
