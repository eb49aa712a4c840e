"""A pipeline's DAG as Mermaid, Graphviz DOT, JSON or a text table.

Task states (from a job) are optional: with them, Mermaid nodes are coloured
by state, the way checks and job summaries show a running job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.core.pipeline.model import Pipeline, Task

# state -> (fill, stroke); the colours GitHub uses for the same states
STATE_COLOURS = {
    "pending": ("#f6f8fa", "#8c959f"),
    "waiting": ("#f6f8fa", "#8c959f"),
    "submitted": ("#ddf4ff", "#54aeff"),
    "running": ("#ddf4ff", "#0969da"),
    "succeeded": ("#dafbe1", "#1a7f37"),
    "reused": ("#dafbe1", "#4ac26b"),
    "failed": ("#ffebe9", "#cf222e"),
    "skipped": ("#f6f8fa", "#d0d7de"),
    "cancelled": ("#fff8c5", "#9a6700"),
}


def _flags(task: Task) -> list[str]:
    flags = []
    if task.skip:
        flags.append("skip")
    if task.continue_on_failure:
        flags.append("continue on failure")
    if task.is_service:
        flags.append(task.type)
    return flags


def mermaid(pipeline: Pipeline, states: Mapping[str, str] | None = None) -> str:
    ids = {t.name: f"t{i}" for i, t in enumerate(pipeline.tasks)}
    lines = ["flowchart LR"]
    for task in pipeline.tasks:
        label = f"<b>{task.name}</b><br/>{task.resources.describe()}"
        if _flags(task):
            label += f"<br/><i>{', '.join(_flags(task))}</i>"
        lines.append(f'  {ids[task.name]}["{label.replace(chr(34), "#quot;")}"]')
    for task in pipeline.tasks:
        for dep in task.dependencies:
            lines.append(f"  {ids[dep]} --> {ids[task.name]}")
    if states:
        used = sorted({s for s in states.values() if s in STATE_COLOURS})
        for state in used:
            fill, stroke = STATE_COLOURS[state]
            lines.append(f"  classDef {state} fill:{fill},stroke:{stroke},color:#1f2328")
        for name, state in states.items():
            if name in ids and state in STATE_COLOURS:
                lines.append(f"  class {ids[name]} {state}")
    return "\n".join(lines) + "\n"


def dot(pipeline: Pipeline) -> str:
    lines = [
        f'digraph "{_dot_escape(pipeline.name)}" {{',
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
    ]
    for task in pipeline.tasks:
        label = "\\n".join(_dot_escape(part) for part in [task.name, task.resources.describe(), *_flags(task)])
        style = ', style="rounded,dashed"' if task.skip else ""
        lines.append(f'  "{_dot_escape(task.name)}" [label="{label}"{style}];')
    for task in pipeline.tasks:
        for k, dep in enumerate(task.dependencies, start=1):
            lines.append(f'  "{_dot_escape(dep)}" -> "{_dot_escape(task.name)}" [label="input{k}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def as_json(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "name": pipeline.name,
        "tasks": [
            {
                "name": t.name,
                "type": t.type,
                "dependencies": list(t.dependencies),
                "resources": {
                    "cpu": t.resources.cpu,
                    "mem": t.resources.mem,
                    "shmem": t.resources.shmem,
                    **dict(t.resources.accelerators),
                },
                "skip": t.skip,
                "continue_on_failure": t.continue_on_failure,
                "code": t.code,
                "image": t.image,
            }
            for t in pipeline.tasks
        ],
        "edges": [
            {"from": dep, "to": t.name, "input": k}
            for t in pipeline.tasks
            for k, dep in enumerate(t.dependencies, start=1)
        ],
        "layers": dag.layers(pipeline.graph),
    }


def text(pipeline: Pipeline) -> str:
    """A table: the step each task can run in, its resources, what it waits for."""
    steps = dag.layers(pipeline.graph)
    rows = []
    for number, names in enumerate(steps, start=1):
        for i, name in enumerate(names):
            task = pipeline.task(name)
            needs = ", ".join(task.dependencies) or "-"
            note = f" ({', '.join(_flags(task))})" if _flags(task) else ""
            rows.append((f"{number}" if i == 0 else "", name + note, task.resources.describe(), needs))
    header = ("step", "task", "resources", "needs")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]
    plural = "s" if len(pipeline.tasks) != 1 else ""
    out = [
        f"{pipeline.name}: {len(pipeline.tasks)} task{plural} in {len(steps)} step{'s' if len(steps) != 1 else ''}",
        "",
    ]
    for row in [header, *rows]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(out) + "\n"
