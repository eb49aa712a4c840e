"""A forecast (core/forecast.py) in words: a Markdown section for a step summary, a table for a terminal. Pure.

Both start with the same headline, so what a pull request's summary says
and what `plan` prints on a laptop read alike:
"will run 3 · reuse 7 of 10 tasks · ~12m · saves ~1.5 GPU-h".
"""

from __future__ import annotations

from fasttrack_gitops.core.forecast import Forecast, TaskPlan
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.render.jobs import table
from fasttrack_gitops.core.reports.markdown import cell, code, inline

ICONS = {"run": "▶️", "reuse": "♻️", "skip": "⏭️"}


def headline(found: Forecast) -> str:
    """'will run 3 · reuse 7 of 10 tasks · ~12m · saves ~1.5 GPU-h'."""
    parts = [f"will run {found.count('run')}", f"reuse {found.count('reuse')} of {len(found.tasks)} tasks"]
    if found.count("skip"):
        parts[-1] = f"reuse {found.count('reuse')} · skip {found.count('skip')} of {len(found.tasks)} tasks"
    parts.append(_total_estimate(found))
    saves = _saves(found)
    if saves:
        parts.append(saves)
    return " · ".join(parts)


def plan_text(found: Forecast) -> str:
    """The headline, one row per task (a `*` marks the critical path), the critical path and the base's changes."""
    where = f" at {found.commit[:12]}" if found.commit else ""
    head = f"plan {found.pipeline}{where}: {headline(found)}\n\n"
    rows: list[tuple[str, ...]] = [
        (("*" if t.critical else " ") + t.name, t.action, estimate(t), t.reason) for t in found.tasks
    ]
    header: tuple[str, ...] = (" task", "action", "estimate", "why")
    if found.base is not None:
        rows = [(*row, _since(t)) for row, t in zip(rows, found.tasks)]
        header += (f"changed since {found.base}",)
    text = head + table(rows, header)
    text += f"\ncritical path: {' → '.join(found.critical_path) or 'none (nothing runs)'}\n"
    if found.unestimated:
        text += f"no past duration, so not in the estimate: {_few(found.unestimated)}\n"
    return text


def plan_markdown(found: Forecast) -> str:
    """A section for a step summary or a comment: headline, the critical path, and a table of every task."""
    where = f" at {code(found.commit[:12])}" if found.commit else ""
    lines = [
        f"### Plan for {code(found.pipeline)}{where}",
        "",
        f"**{inline(headline(found))}**",
        "",
        f"Critical path: {' → '.join(code(n) for n in found.critical_path) or 'none (nothing runs)'}",
        "",
    ]
    if found.unestimated:
        lines += [f"No past duration, so not in the estimate: {inline(_few(found.unestimated))}", ""]
    since = found.base is not None
    lines.append("| task | action | why | estimate |" + (f" changed since {cell(found.base or '')} |" if since else ""))
    lines.append("| --- | --- | --- | --- |" + (" --- |" if since else ""))
    for t in found.tasks:
        name = code(t.name, cell=True) + (" **(critical)**" if t.critical else "")
        row = f"| {name} | {ICONS[t.action]} {t.action} | {cell(t.reason)} | {estimate(t)} |"
        lines.append(row + (f" {cell(_since(t))} |" if since else ""))
    return "\n".join(lines) + "\n"


def estimate(plan: TaskPlan) -> str:
    """'~4m' (its past median), '-' when it has none; a reused or skipped task costs nothing ('0')."""
    if plan.action != "run":
        return "0"
    return f"~{format_duration(plan.estimate_s)}" if plan.estimate_s is not None else "-"


def _since(plan: TaskPlan) -> str:
    return "; ".join(plan.since_base) if plan.since_base else "nothing"


def _total_estimate(found: Forecast) -> str:
    if found.estimate_s is None:
        return "duration unknown (no earlier run to estimate from)"
    return f"~{format_duration(found.estimate_s)}" if found.estimate_s else "nothing to wait for"


def _saves(found: Forecast) -> str:
    if found.saved.gpu_hours >= 0.05:
        return f"saves ~{found.saved.gpu_hours:.1f} GPU-h"
    if found.saved.cpu_hours >= 0.05:
        return f"saves ~{found.saved.cpu_hours:.1f} CPU-h"
    return ""


def _few(names: tuple[str, ...], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
