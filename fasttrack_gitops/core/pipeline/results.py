"""What a task declares about its results: metrics files and their rules, plots, artifacts. Pure.

The declarations live beside the task in the pipeline file (`metrics`,
`plots`, `artifacts`), and every path in them is a path under the task's
outputs. This module holds their model (frozen dataclasses, built from data
the schema has passed), writes them back for the frozen spec, and checks
what the schema cannot: paths that leave the outputs, plots that are not
images, a regression limit without a direction to regress in. Reading and
comparing the values is core/metrics.py's.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, NodePath, diagnostic, json_path
from fasttrack_gitops.core.pipeline.yamlsource import Document

Direction = Literal["higher", "lower"]
METRICS_EXTENSIONS = (".json", ".yaml", ".yml", ".toml")
PLOT_EXTENSIONS = (".png", ".svg", ".jpg", ".jpeg")
_EXAMPLES = {"metrics file": "metrics.json", "plot": "plots/roc.png", "artifact": "model/"}


@dataclass(frozen=True)
class Threshold:
    """An amount of change: absolute, or `value` percent of the baseline's magnitude."""

    value: float
    percent: bool = False

    def amount(self, base: float) -> float:
        """The threshold as an absolute amount around `base`."""
        return abs(base) * self.value / 100 if self.percent else self.value

    def __str__(self) -> str:
        return f"{_number(self.value)}%" if self.percent else _number(self.value)


@dataclass(frozen=True)
class MetricGate:
    """Bounds a metric must meet. A gated metric that is missing fails; `required` alone gates on presence."""

    min: float | None = None
    max: float | None = None
    max_regression: Threshold | None = None  # how much worse than the baseline, in the rule's direction
    required: bool = False


@dataclass(frozen=True)
class MetricRule:
    direction: Direction | None = None  # which way is better; None: a change is neither better nor worse
    noise: Threshold | None = None  # a change this small is no change
    gate: MetricGate | None = None


@dataclass(frozen=True)
class MetricsSpec:
    files: tuple[str, ...]  # under the task's outputs
    rules: Mapping[str, MetricRule] = field(default_factory=dict)  # flattened metric name -> rule


@dataclass(frozen=True)
class Plot:
    path: str  # under the task's outputs
    title: str | None = None

    @property
    def label(self) -> str:
        return self.title or posixpath.basename(self.path)


# --- from checked data, and back -----------------------------------------------------


def metrics_spec(value: Any) -> MetricsSpec | None:
    """A task's checked `metrics` mapping -> MetricsSpec (None when the task has none)."""
    if not value:
        return None
    rules = {name: _rule(rule) for name, rule in (value.get("rules") or {}).items() if not name.startswith("x-")}
    return MetricsSpec(files=tuple(value["files"]), rules=rules)


def plots(value: Any) -> tuple[Plot, ...]:
    return tuple(Plot(p) if isinstance(p, str) else Plot(p["path"], p.get("title")) for p in value or ())


def artifacts(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def _rule(raw: Mapping[str, Any]) -> MetricRule:
    gate = raw.get("gate")
    return MetricRule(
        direction=raw.get("direction"),
        noise=threshold(raw["noise"]) if raw.get("noise") is not None else None,
        gate=None
        if gate is None
        else MetricGate(
            min=_float_or_none(gate.get("min")),
            max=_float_or_none(gate.get("max")),
            max_regression=threshold(gate["max_regression"]) if gate.get("max_regression") is not None else None,
            required=bool(gate.get("required", False)),
        ),
    )


def threshold(value: float | str) -> Threshold:
    """2 -> Threshold(2.0), "1%" -> Threshold(1.0, percent=True)."""
    if isinstance(value, str):
        return Threshold(float(value.rstrip("%")), percent=value.endswith("%"))
    return Threshold(float(value))


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def results_to_spec(
    metrics: MetricsSpec | None, plot_list: tuple[Plot, ...], artifact_list: tuple[str, ...]
) -> dict[str, Any]:
    """The task's result keys as the pipeline file writes them (only those it has), for the frozen spec."""
    out: dict[str, Any] = {}
    if metrics is not None:
        out["metrics"] = {"files": list(metrics.files)}
        if metrics.rules:
            out["metrics"]["rules"] = {name: _rule_to_spec(rule) for name, rule in metrics.rules.items()}
    if plot_list:
        out["plots"] = [{"path": p.path, **({"title": p.title} if p.title is not None else {})} for p in plot_list]
    if artifact_list:
        out["artifacts"] = list(artifact_list)
    return out


def _rule_to_spec(rule: MetricRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.direction is not None:
        out["direction"] = rule.direction
    if rule.noise is not None:
        out["noise"] = _threshold_to_spec(rule.noise)
    if rule.gate is not None:
        gate: dict[str, Any] = {}
        for key in ("min", "max"):
            if getattr(rule.gate, key) is not None:
                gate[key] = getattr(rule.gate, key)
        if rule.gate.max_regression is not None:
            gate["max_regression"] = _threshold_to_spec(rule.gate.max_regression)
        if rule.gate.required:
            gate["required"] = True
        out["gate"] = gate
    return out


def _threshold_to_spec(t: Threshold) -> float | str:
    return str(t) if t.percent else t.value


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


# --- checks of meaning --------------------------------------------------------------


def check(doc: Document, who: str, task: Mapping[str, Any], base: NodePath) -> Iterator[Diagnostic]:
    """The task's result declarations: paths inside the outputs, plots that are images, rules that make sense.

    Reads the raw data defensively, like semantics.check: a value of the wrong
    type is the schema's to report.
    """
    metrics = task.get("metrics")
    files = metrics.get("files") if isinstance(metrics, dict) else None
    for j, path in enumerate(files if isinstance(files, list) else []):
        where = base + ("metrics", "files", j)
        if isinstance(path, str) and path:
            yield from _check_output_path(doc, who, "metrics file", path, where)
            if not path.lower().endswith(METRICS_EXTENSIONS):
                yield _at(
                    doc,
                    "FT121",
                    f"{who} has metrics file '{path}', which is not JSON, YAML or TOML by its name; "
                    "name it with .json, .yaml, .yml or .toml",
                    where,
                )
    rules = metrics.get("rules") if isinstance(metrics, dict) else None
    for name, rule in rules.items() if isinstance(rules, dict) else ():
        yield from _check_rule(doc, who, name, rule, base + ("metrics", "rules", name))

    plot_list = task.get("plots")
    for j, plot in enumerate(plot_list if isinstance(plot_list, list) else []):
        path = plot.get("path") if isinstance(plot, dict) else plot
        where = base + ("plots", j) + (("path",) if isinstance(plot, dict) else ())
        if not isinstance(path, str) or not path:
            continue
        yield from _check_output_path(doc, who, "plot", path, where)
        if not path.lower().endswith(PLOT_EXTENSIONS):
            yield _at(
                doc,
                "FT120",
                f"{who} has plot '{path}', which is not a PNG, SVG or JPEG image by its name; "
                "plots are shown as images: write .png, .svg, .jpg or .jpeg (list other files under artifacts)",
                where,
            )

    artifact_list = task.get("artifacts")
    for j, path in enumerate(artifact_list if isinstance(artifact_list, list) else []):
        if isinstance(path, str) and path:
            yield from _check_output_path(doc, who, "artifact", path, base + ("artifacts", j))


def _check_output_path(doc: Document, who: str, what: str, path: str, where: NodePath) -> Iterator[Diagnostic]:
    parts = path.split("/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path) or "\\" in path or ".." in parts:
        yield _at(
            doc,
            "FT119",
            f"{who} has {what} '{path}', which is not a path inside the task's outputs; "
            f"write it relative to the outputs folder, with forward slashes and without '..' (e.g. {_EXAMPLES[what]})",
            where,
        )


def _check_rule(doc: Document, who: str, name: Any, rule: Any, where: NodePath) -> Iterator[Diagnostic]:
    if isinstance(name, str) and not name.strip():
        yield _at(
            doc,
            "FT122",
            f"{who} has a metric rule with an empty name; key each rule by the metric's flattened name (val.acc)",
            where,
            key=True,
        )
    gate = rule.get("gate") if isinstance(rule, dict) else None
    if isinstance(gate, dict) and gate.get("max_regression") is not None and rule.get("direction") is None:
        yield _at(
            doc,
            "FT123",
            f"{who} gates metric '{name}' on max_regression but gives no direction, so a regression has no "
            "meaning; add direction: higher (bigger is better) or direction: lower",
            where + ("gate", "max_regression"),
            key=True,
        )


def _at(doc: Document, code: str, message: str, path: NodePath, *, key: bool = False) -> Diagnostic:
    m = doc.source.key(path) if key else doc.source.value(path)
    return diagnostic(code, message, doc.file, m.line, m.column, json_path(path))
