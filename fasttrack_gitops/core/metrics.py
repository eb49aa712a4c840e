"""Model results: read a task's metrics file, compare a job's metrics with a baseline's, judge the gates. Pure.

A metrics file is a task's output (JSON, YAML or TOML) mapping names to
numbers; nested mappings are flattened with dots as DVC does, so
`{"val": {"acc": 0.9}}` is the metric `val.acc`. The file is the task
author's, written by their code, so everything wrong with it becomes a
MetricsFileError whose message names the file and says what to write
instead; nothing else escapes `read_metrics`.

`compare` is a decision over plain data: the pipeline's rules (see
core/pipeline/results.py), this job's values and the baseline's, per task.
It answers, for every metric, how it moved and whether that is better or
worse, and whether its gate holds. The wording of a report is
core/reports/results.py's.
"""

from __future__ import annotations

import json
import math
import posixpath
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.results import MetricGate, MetricRule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project supports 3.10, which has no tomllib
    import tomli as tomllib

MAX_METRICS_FILE = 1 << 20  # bytes
MAX_DEPTH = 32  # levels of nesting
MAX_METRICS = 100_000  # values and mappings in one file: a YAML alias bomb is refused, not walked
Verdict = Literal["better", "worse", "same", "changed", "new", "missing"]
GateResult = Literal["pass", "fail"]
_HINT = "metrics are numbers or nested mappings of numbers"


class MetricsFileError(ValueError):
    """A metrics file that cannot be read as metrics; the message names the file and what to do."""


# --- reading ----------------------------------------------------------------------


def read_metrics(path: str, data: bytes) -> dict[str, float]:
    """The metrics in one file's bytes, flattened: {"val.acc": 0.9}. The format is chosen by the extension."""
    if len(data) > MAX_METRICS_FILE:
        raise MetricsFileError(
            f"{path}: {len(data):,} bytes is more than the {MAX_METRICS_FILE:,} bytes a metrics file may hold; "
            "write summary numbers only (per-sample values belong in an artifact)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MetricsFileError(f"{path}: not UTF-8 text (byte {e.start}); write the metrics as UTF-8") from None
    if not text.strip():
        raise MetricsFileError(
            f'{path}: the file is empty; the task should write its metrics there, e.g. {{"accuracy": 0.93}}'
        )
    loaded = _parse(path, text)
    if not isinstance(loaded, dict):
        raise MetricsFileError(
            f"{path}: the top level is {_kind(loaded)}, not a mapping; write name: value pairs, "
            'e.g. {"accuracy": 0.93}'
        )
    return _flatten(path, loaded)


def _parse(path: str, text: str) -> Any:
    extension = posixpath.splitext(path.lower())[1]
    try:
        if extension == ".json":
            return json.loads(text)
        if extension in (".yaml", ".yml"):
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if extension == ".toml":
            return tomllib.loads(text)
    except json.JSONDecodeError as e:
        raise MetricsFileError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise MetricsFileError(f"{path}: not valid YAML{where}: {problem}") from None
    except tomllib.TOMLDecodeError as e:
        raise MetricsFileError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise MetricsFileError(f"{path}: nested too deeply to read; metrics nest a few levels at most") from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of more digits than Python converts
        raise MetricsFileError(f"{path}: cannot be read: {e}") from None
    raise MetricsFileError(
        f"{path}: a metrics file is JSON, YAML or TOML, told by its extension (.json, .yaml, .yml, .toml); "
        "rename it or write it in one of them"
    )


def _flatten(path: str, top: dict[Any, Any]) -> dict[str, float]:
    """Nested mappings -> dotted names, in the file's order, with a bound on what is visited."""
    out: dict[str, float] = {}
    visited = 0

    def walk(prefix: str, mapping: dict[Any, Any], depth: int) -> None:
        nonlocal visited
        if depth > MAX_DEPTH:
            raise MetricsFileError(f"{path}: '{prefix}' nests deeper than {MAX_DEPTH} levels; flatten the names")
        for key, value in mapping.items():
            visited += 1
            if visited > MAX_METRICS:
                raise MetricsFileError(
                    f"{path}: more than {MAX_METRICS:,} values (YAML aliases count each time they are used); "
                    "write summary numbers only"
                )
            name = _name(path, prefix, key)
            if isinstance(value, dict):
                walk(name, value, depth + 1)
            else:
                out[name] = _value(path, name, value)

    walk("", top, 1)
    return out


def _name(path: str, prefix: str, key: Any) -> str:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise MetricsFileError(
            f"{path}: the key {key!r} under '{prefix or 'the top level'}' is not a name; write names as text"
        )
    key = str(key)
    where = f"'{prefix}.{key}'" if prefix else f"'{key}'"
    if "." in key:
        raise MetricsFileError(
            f"{path}: the key {where} contains a dot, which is ambiguous once nested names are joined with dots; "
            "nest it instead (val: {acc: 0.9}) or use '_' or '/'"
        )
    if not key.strip():
        raise MetricsFileError(f"{path}: an empty key under '{prefix or 'the top level'}'; name every metric")
    return f"{prefix}.{key}" if prefix else key


def _value(path: str, name: str, value: Any) -> float:
    if isinstance(value, list):
        raise MetricsFileError(f"{path}: '{name}' is a list; {_HINT}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsFileError(f"{path}: '{name}' is {_kind(value)}, not a number; {_HINT}")
    try:
        number = float(value)
    except OverflowError:
        raise MetricsFileError(f"{path}: '{name}' is too large for a number; {_HINT}") from None
    if not math.isfinite(number):
        raise MetricsFileError(
            f"{path}: '{name}' is {'NaN' if math.isnan(number) else 'infinite'}, which cannot be compared; "
            "write a finite number, or leave the metric out"
        )
    return number


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:39] + "…"
        return f"text ({shown!r})"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


# --- comparing --------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One metric of one task, this job's value against the baseline's.

    verdict: better/worse by the rule's direction; "same" when equal or
    within the noise band; "changed" when it moved but the rule gives no
    direction to call it better or worse; "new" when the baseline has no
    value (or there is no baseline); "missing" when this job has none.
    gate: None when the rule has no gate or nothing in it could be judged.
    """

    task: str
    name: str
    head: float | None
    base: float | None
    delta: float | None  # head - base
    delta_pct: float | None  # delta as a percentage of |base|; None when base is 0 or either is missing
    verdict: Verdict
    gate: GateResult | None
    reason: str  # why, in words: "≈ within noise", "0.88 < min 0.9", "no task produced it"
    gate_text: str = ""  # what the gate asks, shortly ("≥ 0.9", "at most 1% worse", "required"); the failed check

    @property
    def changed(self) -> bool:
        return self.verdict != "same"


@dataclass(frozen=True)
class BaseRef:
    """The job the metrics are compared with."""

    job: str
    commit: str | None = None
    ref: str | None = None
    age_s: float | None = None  # how long before this job it ran
    url: str | None = None


@dataclass(frozen=True)
class Comparison:
    rows: tuple[MetricRow, ...]
    base: BaseRef | None
    problems: tuple[str, ...] = ()  # what kept metrics from being read: a missing file, a MetricsFileError
    gates_failed: int = 0


def compare(
    pipeline: Pipeline,
    head: Mapping[str, Mapping[str, float]],
    base: Mapping[str, Mapping[str, float]] | None,
    *,
    base_ref: BaseRef | None = None,
    problems: Sequence[str] = (),
) -> Comparison:
    """Every metric of head or base (task -> {name: value}), judged by the pipeline's rules.

    A gated rule whose metric no task produced gets a row too, its gate
    failed. Rows follow the pipeline's task order, then tasks it no longer
    has, each task's metrics in the order head then base gives them.
    """
    rules = {t.name: t.metrics.rules for t in pipeline.tasks if t.metrics is not None}
    tasks = [t.name for t in pipeline.tasks]
    tasks += [name for name in [*head, *(base or {})] if name not in tasks]
    rows: list[MetricRow] = []
    for task in dict.fromkeys(tasks):
        ours, theirs = head.get(task, {}), (base or {}).get(task, {})
        task_rules = rules.get(task, {})
        names = [*ours, *(n for n in theirs if n not in ours)]
        names += [n for n, r in task_rules.items() if r.gate is not None and n not in ours and n not in theirs]
        for name in names:
            values = _float_or_none(ours.get(name)), _float_or_none(theirs.get(name))
            rows.append(_row(task, name, *values, task_rules.get(name), base is not None))
    return Comparison(
        rows=tuple(rows),
        base=base_ref,
        problems=tuple(problems),
        gates_failed=sum(1 for r in rows if r.gate == "fail"),
    )


def _row(
    task: str, name: str, head: float | None, base: float | None, rule: MetricRule | None, has_base: bool
) -> MetricRow:
    rule = rule or MetricRule()
    delta = delta_pct = None
    if head is not None and base is not None:
        delta = _finite(head - base)
        delta_pct = _finite(delta / abs(base) * 100) if delta is not None and base != 0 else None
    verdict, why = _verdict(head, base, delta, rule, has_base)
    gate, gate_why, gate_text = _judge(rule, head, base) if rule.gate is not None else (None, "", "")
    reason = "; ".join(part for part in (why, gate_why) if part)
    return MetricRow(task, name, head, base, delta, delta_pct, verdict, gate, reason, gate_text)


def _verdict(
    head: float | None, base: float | None, delta: float | None, rule: MetricRule, has_base: bool
) -> tuple[Verdict, str]:
    if head is None:
        return "missing", "this job did not produce it" if base is not None else ""
    if base is None:
        return "new", "the baseline has no value" if has_base else ""
    if delta is None:  # the difference overflowed: surely not noise
        delta = math.inf if head > base else -math.inf
    if delta == 0:
        return "same", ""
    if rule.noise is not None and _at_most(abs(delta), rule.noise.amount(base)):
        return "same", "≈ within noise"
    if rule.direction is None:
        return "changed", ""
    good = delta > 0 if rule.direction == "higher" else delta < 0
    return ("better" if good else "worse"), ""


def _judge(rule: MetricRule, head: float | None, base: float | None) -> tuple[GateResult | None, str, str]:
    """(result, why, what the gate asks) of the rule's gate; the first failed check wins."""
    gate = rule.gate
    assert gate is not None
    asks = gate_words(gate, rule)
    if head is None:
        return (
            "fail",
            "required, but no task produced it" if gate.required else "no task produced it",
            ("required" if gate.required else asks[0] if asks else "required"),
        )
    if gate.min is not None and head < gate.min:
        return "fail", f"{_short(head)} is below the minimum {_short(gate.min)}", f"≥ {_short(gate.min)}"
    if gate.max is not None and head > gate.max:
        return "fail", f"{_short(head)} is above the maximum {_short(gate.max)}", f"≤ {_short(gate.max)}"
    judged = gate.min is not None or gate.max is not None or gate.required
    if gate.max_regression is not None and rule.direction is not None:
        if base is None:
            note = "max_regression not judged: no baseline value"
            judged_asks = [a for a in asks if not a.startswith("at most")]
            return ("pass" if judged else None), note, ", ".join(judged_asks)
        worse_by = (base - head) if rule.direction == "higher" else (head - base)
        allowed = gate.max_regression.amount(base)
        if not _at_most(worse_by, allowed):
            by = f"{worse_by / abs(base) * 100:.3g}%" if gate.max_regression.percent and base else _short(worse_by)
            return (
                "fail",
                f"{by} worse than the baseline, more than the {gate.max_regression} allowed",
                (f"at most {gate.max_regression} worse"),
            )
        judged = True
    return ("pass" if judged else None), "", ", ".join(asks)


def gate_words(gate: MetricGate, rule: MetricRule) -> list[str]:
    """What a gate asks, each check in a few words: ["≥ 0.9", "at most 1% worse"]."""
    words = []
    if gate.min is not None:
        words.append(f"≥ {_short(gate.min)}")
    if gate.max is not None:
        words.append(f"≤ {_short(gate.max)}")
    if gate.max_regression is not None and rule.direction is not None:
        words.append(f"at most {gate.max_regression} worse")
    if gate.required and not words:
        words.append("required")
    return words


def _at_most(x: float, limit: float) -> bool:
    """x <= limit, forgiving the last bits of a float difference (0.9 - 0.891 is 0.009000000000000008)."""
    return x <= limit or math.isclose(x, limit, rel_tol=1e-9, abs_tol=1e-12)


def _float_or_none(x: float | None) -> float | None:
    return None if x is None else float(x)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _short(x: float) -> str:
    """A value in a reason: as written when short (0.9, 12), else 4 significant digits."""
    text = repr(x) if not float(x).is_integer() else str(int(x)) if abs(x) < 1e15 else f"{x:.4g}"
    return text if len(text) <= 8 else f"{x:.4g}"


def as_json(c: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON (a published interface: keys are added, never renamed or removed)."""
    base = None
    if c.base is not None:
        base = {"job": c.base.job, "commit": c.base.commit, "ref": c.base.ref, "age_s": c.base.age_s, "url": c.base.url}
    return {
        "base": base,
        "metrics": [
            {
                "task": r.task,
                "name": r.name,
                "head": r.head,
                "base": r.base,
                "delta": r.delta,
                "delta_pct": r.delta_pct,
                "verdict": r.verdict,
                "gate": r.gate,
                "reason": r.reason,
            }
            for r in c.rows
        ],
        "gates_failed": c.gates_failed,
        "problems": list(c.problems),
    }
