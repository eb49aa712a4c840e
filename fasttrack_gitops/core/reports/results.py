"""What a job's model results say to people: a Markdown section, a check title, a terminal table, Slack lines. Pure.

Every shape reads one metrics.Comparison and says it in the same order: the
failed gates first (they are why a check fails), then what changed, biggest
first, then what did not. Two marks sit side by side: ▲/▼ for which way the
number moved, ✅/❌ for whether that is good by the metric's direction, since
a loss going down is good news. Where space is short (a check run's summary,
a Slack message) the unchanged metrics go first and rows with a gate never go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fasttrack_gitops.core.metrics import Comparison, MetricRow
from fasttrack_gitops.core.render.jobs import table
from fasttrack_gitops.core.reports.markdown import byte_size, code, inline, shorten

HEADING = "### Model results"
STALE_AFTER = 14 * 86400  # seconds: a baseline older than this is called stale in the report
NAME_MAX = 120  # characters of a metric's name in a table
PROBLEM_MAX = 300  # characters of one problem
PROBLEMS_SHOWN = 20
_COLUMNS = ("metric", "base", "head", "Δ", "Δ%", "")


@dataclass(frozen=True)
class ResultsSection:
    """What a report shows of a job's model results: the Markdown section, the comparison it shows (the gates
    decide the conclusion) and the plots as (title, signed URL) for a check run's images."""

    markdown: str
    comparison: Comparison
    images: tuple[tuple[str, str], ...] = ()


def results_markdown(
    c: Comparison, *, base_label: str, images: Sequence[tuple[str, str]] = (), max_bytes: int = 20_000
) -> str:
    """The "Model results" section of a check run or job summary, within `max_bytes` UTF-8 bytes.

    `base_label` names the baseline ("main@def5678"), or says why there is
    none when `c.base` is None. `images` are (title, URL) pairs of the
    plots. Rows with a gate are never cut, so the section can exceed
    `max_bytes` only when they alone do.
    """
    ordered = _ordered(c)
    changed = [r for r in ordered if r.changed or r.gate == "fail"]
    unchanged = [r for r in ordered if not (r.changed or r.gate == "fail")]
    names = _labels(c)
    head = [HEADING, "", _baseline_line(c, base_label), ""]
    failed = [r for r in ordered if r.gate == "fail"]
    if failed:
        head.append(f"**❌ {len(failed)} gate{'s' if len(failed) != 1 else ''} failed**")
        head += [f"- {inline(_gate_sentence(r, names[r]))}" for r in failed]
        head.append("")
    if not c.rows and not c.problems:
        head.append("_No metrics were produced._")
        head.append("")
    text = "\n".join(head) + "\n"
    tail = _problems(c)
    budget = max_bytes - byte_size(text) - byte_size(tail)
    summary = f"{len(unchanged)} unchanged metric{'s' if len(unchanged) != 1 else ''}"
    opening, closing = f"<details><summary>{summary}</summary>\n\n", "</details>\n\n"
    folded_least = byte_size(opening + closing + _table(unchanged, names, 0, c.base is not None)) if unchanged else 0
    if changed:
        section = _table(changed, names, budget - folded_least, c.base is not None)
        text += section + "\n"
        budget -= byte_size(section) + 1
    for title, url in images:
        image = f"**{inline(title)}**\n\n![{inline(title).replace(']', '')}]({url.replace(')', '%29')})\n\n"
        if byte_size(image) <= budget - folded_least:
            text += image
            budget -= byte_size(image)
    if unchanged:
        inner_budget = budget - byte_size(opening) - byte_size(closing)
        kept_whole = any(r.gate is not None for r in unchanged) or inner_budget > 200
        if kept_whole:
            text += opening + _table(unchanged, names, inner_budget, c.base is not None) + closing
        else:
            text += f"_{summary} not shown here._\n\n"
    return text + tail


def gate_title(c: Comparison) -> str | None:
    """The first failed gate, for a check run's title: "accuracy 0.93 → 0.88 (gate ≥ 0.9)"; None if all hold."""
    names = _labels(c)
    for r in _ordered(c):
        if r.gate == "fail":
            return _gate_sentence(r, names[r])
    return None


PLAIN_COLUMNS = (*_COLUMNS[:-1], "result")


def plain_rows(c: Comparison) -> list[list[str]]:
    """The comparison's rows as plain text cells (PLAIN_COLUMNS), failed gates first: a terminal or a page."""
    names = _labels(c)
    return [_cells(r, names[r], plain=True, has_base=c.base is not None) for r in _ordered(c)]


def results_text(c: Comparison) -> str:
    """The comparison as a plain terminal table, with the failed gates and problems under it."""
    if not c.rows:
        out = "no metrics\n"
    else:
        out = table(plain_rows(c), PLAIN_COLUMNS)
    if c.gates_failed:
        out += f"{c.gates_failed} gate{'s' if c.gates_failed != 1 else ''} failed\n"
    out += "".join(f"problem: {p}\n" for p in c.problems)
    return out


def slack_lines(c: Comparison, limit: int = 8) -> list[str]:
    """At most `limit` lines for Slack mrkdwn: failed gates, then the biggest relative changes.

    "accuracy 0.93 → 0.88 ▼ -5.4% ❌ gate ≥ 0.9"; the last line says how many more when they do not fit.
    """
    names = _labels(c)
    picked = [r for r in _ordered(c) if r.gate == "fail" or r.changed]
    lines = []
    for r in picked:
        move = f" {_arrow(r)} {_pct(r.delta_pct)}".rstrip() if r.delta is not None else ""
        values = _values_in_words(r)
        mark = _mark(r, c.base is not None).removeprefix("missing").strip()  # the values say it
        lines.append(_slack_escape(f"{names[r]} {values}{move} {mark}".strip()))
    if len(lines) > limit:
        more = len(lines) - (limit - 1)
        lines = lines[: limit - 1] + [f"… and {more} more"]
    return lines


# --- shared pieces -------------------------------------------------------------------


def _ordered(c: Comparison) -> list[MetricRow]:
    """Failed gates, then changes by size (relative where known), then new and missing metrics, then the rest;
    ties in the comparison's order."""

    def rank(r: MetricRow) -> tuple[int, float]:
        if r.gate == "fail":
            return (0, 0.0)
        if r.delta is not None and r.changed:
            return (1, -(abs(r.delta_pct) if r.delta_pct is not None else abs(r.delta)))
        return (2, 0.0) if r.changed else (3, 0.0)

    return sorted(c.rows, key=rank)


def _labels(c: Comparison) -> dict[MetricRow, str]:
    """Each row's metric name, qualified with its task ("evaluate/accuracy") when two tasks share the name."""
    tasks_of: dict[str, set[str]] = {}
    for r in c.rows:
        tasks_of.setdefault(r.name, set()).add(r.task)
    return {r: f"{r.task}/{r.name}" if len(tasks_of[r.name]) > 1 else r.name for r in c.rows}


def _baseline_line(c: Comparison, base_label: str) -> str:
    if c.base is None:
        why = base_label.strip() or "there is no earlier job to compare with"
        return f"No baseline: {inline(why)}. The values are this job's alone."
    parts = [f"Compared with {code(base_label)}" if base_label else "Compared with"]
    job = f"[{c.base.job}]({c.base.url})" if c.base.url else code(c.base.job)
    parts.append(f"job {job}")
    if c.base.age_s is not None:
        stale = " (stale: more than 14 days older than this job)"
        parts.append(f"{_age(c.base.age_s)} old" + (stale if c.base.age_s > STALE_AFTER else ""))
    return " · ".join(parts)


def _age(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def _gate_sentence(r: MetricRow, name: str) -> str:
    gate = f"(gate {r.gate_text})" if r.gate_text[:1] in "≥≤" else f"(gate: {r.gate_text})"
    if r.head is None:
        return f"{name} missing {gate}"
    return f"{name} {_values_in_words(r)} {gate}"


def _values_in_words(r: MetricRow) -> str:
    if r.head is None:
        return f"{number(r.base)} → missing" if r.base is not None else "missing"
    return f"{number(r.base)} → {number(r.head)}" if r.base is not None else number(r.head)


def _table(rows: list[MetricRow], names: dict[MetricRow, str], budget: int, has_base: bool) -> str:
    """A Markdown table of `rows` within `budget` bytes, dropping rows without a gate from the end first."""
    header = "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS) + "\n"
    lines = [_line(r, names[r], has_base) for r in rows]
    gated = [r.gate is not None for r in rows]
    size = byte_size(header) + sum(byte_size(line) for line in lines)
    keep = [True] * len(rows)
    note_room = 60
    for i in reversed(range(len(rows))):
        if size + note_room <= budget:
            break
        if not gated[i]:
            keep[i] = False
            size -= byte_size(lines[i])
    left_out = keep.count(False)
    body = "".join(line for line, k in zip(lines, keep) if k)
    note = f"\n_… and {left_out} more_\n" if left_out else ""
    return header + body + note


def _line(r: MetricRow, name: str, has_base: bool) -> str:
    return "| " + " | ".join(_cells(r, name, plain=False, has_base=has_base)) + " |\n"


def _cells(r: MetricRow, name: str, *, plain: bool, has_base: bool = True) -> list[str]:
    moved = bool(r.delta)  # None or 0: nothing to show
    delta = f"{_arrow(r)} {signed(r.delta)}" if moved else ""
    shown = shorten(name, NAME_MAX)
    return [
        shown if plain else code(shown, cell=True),
        number(r.base) if r.base is not None else "",
        number(r.head) if r.head is not None else "",
        delta,
        _pct(r.delta_pct) if moved else "",
        _mark(r, has_base) if plain else inline(_mark(r, has_base)).replace("|", "\\|"),
    ]


def _problems(c: Comparison) -> str:
    """What kept metrics from being read, at most PROBLEMS_SHOWN of them."""
    if not c.problems:
        return ""
    lines = ["**Problems**", ""]
    lines += [f"- {inline(shorten(p, PROBLEM_MAX))}" for p in c.problems[:PROBLEMS_SHOWN]]
    if len(c.problems) > PROBLEMS_SHOWN:
        lines.append(f"- … and {len(c.problems) - PROBLEMS_SHOWN} more")
    return "\n".join(lines) + "\n"


def _arrow(r: MetricRow) -> str:
    if r.delta is None or r.delta == 0:
        return ""
    return "▲" if r.delta > 0 else "▼"


def _mark(r: MetricRow, has_base: bool = True) -> str:
    """✅/❌ for good or bad news by the direction, then the gate: "❌ gate ≥ 0.9". Without a baseline
    nothing is new."""
    new = "new" if has_base else ""
    words = {"better": "✅", "worse": "❌", "new": new, "missing": "missing", "changed": "", "same": ""}[r.verdict]
    if r.verdict == "same" and r.delta:
        words = "≈ within noise"
    if r.gate == "fail":
        words = f"{words} ❌ gate {r.gate_text}" if words not in ("❌", "") else f"❌ gate {r.gate_text}"
    elif r.gate == "pass":
        words = f"{words} · gate {r.gate_text} holds" if words else f"gate {r.gate_text} holds"
    return words.strip()


def number(x: float | None) -> str:
    """A metric's value, short: 0.93, 12, 1.235e+06; at most 4 significant digits for long fractions."""
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = repr(float(x))
    return text if len(text) <= 7 else f"{x:.4g}"


def signed(x: float | None) -> str:
    return "" if x is None else ("+" if x > 0 else "") + number(x)


def _pct(p: float | None) -> str:
    if p is None:
        return ""
    if p != 0 and abs(p) < 0.1:
        return f"{p:+.2g}%"
    return f"{p:+.1f}%"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
