"""A pipeline's DAG laid out and drawn as inline SVG, on the server: what the console's job page shows (pure).

No JavaScript library and nothing fetched: the layout is layered, left to
right, as dag.layers() gives them (a task one column right of its deepest
dependency), each column ordered by the mean row of the task's
dependencies (one barycentre pass: few crossings for the shapes pipelines
have, and linear time for a 200-task job). Edges are cubic curves from a
box's right side to the next one's left side.

Every task is a link to its page (keyboard-reachable), coloured by state
through a CSS class AND labelled with the state in words, so the state is
never told by colour alone; the page's script updates both live. Text is
XML-escaped; ids carry no task name (a name is any text), only its index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape

from fasttrack_gitops.core.pipeline import dag
from fasttrack_gitops.core.pipeline.model import Pipeline

BOX_W, BOX_H = 168, 40
GAP_X, GAP_Y = 56, 14
PAD = 8
LABEL_CHARS = 22


@dataclass(frozen=True)
class Box:
    name: str
    x: int
    y: int


def layout(pipeline: Pipeline) -> dict[str, Box]:
    """Each task's box, top-left corner, in SVG units."""
    graph = pipeline.graph
    rows: dict[str, float] = {}
    boxes: dict[str, Box] = {}
    for column, names in enumerate(dag.layers(graph)):
        order = {n: i for i, n in enumerate(names)}

        def barycentre(name: str, order: Mapping[str, int] = order) -> tuple[float, int]:
            deps = [rows[d] for d in graph[name] if d in rows]
            return (sum(deps) / len(deps) if deps else float(order[name]), order[name])

        for row, name in enumerate(sorted(names, key=barycentre)):
            rows[name] = row
            boxes[name] = Box(name, PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    return boxes


def svg(pipeline: Pipeline, states: Mapping[str, str], href: Callable[[str], str]) -> str:
    """The drawing; `states` task -> state, `href(task)` the task page's URL (escaped here)."""
    boxes = layout(pipeline)
    if not boxes:
        return '<svg class="dag" role="img" aria-label="empty pipeline" width="0" height="0"></svg>'
    width = max(b.x for b in boxes.values()) + BOX_W + PAD
    height = max(b.y for b in boxes.values()) + BOX_H + PAD
    index = {t.name: i for i, t in enumerate(pipeline.tasks)}
    edges = []
    for task in pipeline.tasks:
        to = boxes[task.name]
        for dep in task.dependencies:
            if dep not in boxes:
                continue
            fr = boxes[dep]
            x1, y1, x2, y2 = fr.x + BOX_W, fr.y + BOX_H // 2, to.x, to.y + BOX_H // 2
            mid = (x1 + x2) // 2
            edges.append(
                f'<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"/>'
            )
    nodes = []
    for task in pipeline.tasks:
        b = boxes[task.name]
        state = states.get(task.name, "pending")
        label = task.name if len(task.name) <= LABEL_CHARS else task.name[: LABEL_CHARS - 1] + "…"
        nodes.append(
            f'<a class="node state-{escape(state)}" id="node-{index[task.name]}" data-task="{escape(task.name)}" '
            f'href="{escape(href(task.name))}" aria-label="{escape(task.name)}: {escape(state)}">'
            f"<title>{escape(task.name)}: {escape(state)}</title>"
            f'<rect x="{b.x}" y="{b.y}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
            f'<text class="name" x="{b.x + 10}" y="{b.y + 17}">{escape(label)}</text>'
            f'<text class="state" x="{b.x + 10}" y="{b.y + 32}">{escape(state)}</text></a>'
        )
    return (
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="group" aria-label="the pipeline\'s tasks and dependencies">'
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path class="arrow" d="M0,0 L8,4 L0,8 z"/></marker></defs>'
        f'<g class="edges">{"".join(edges)}</g><g class="nodes">{"".join(nodes)}</g></svg>'
    )
