"""The console's DAG drawing: layered left to right, every task a link with its state in words, names escaped."""

from __future__ import annotations

import re
import xml.dom.minidom

from fasttrack_gitops.core.pipeline.model import normalise
from fasttrack_gitops.core.render.dag_svg import BOX_W, GAP_X, layout, svg


def pipeline(tasks: list[dict]):
    return normalise({"version": "26.4.4", "name": "p", "tasks": tasks})


def test_each_task_sits_one_column_right_of_its_deepest_dependency():
    p = pipeline(
        [
            {"name": "a", "command": "x"},
            {"name": "b", "command": "x", "dependencies": ["a"]},
            {"name": "c", "command": "x", "dependencies": ["a", "b"]},
            {"name": "d", "command": "x"},
        ]
    )
    boxes = layout(p)
    step = BOX_W + GAP_X
    assert (boxes["a"].x, boxes["b"].x, boxes["c"].x, boxes["d"].x) == (8, 8 + step, 8 + 2 * step, 8)
    assert boxes["a"].y != boxes["d"].y


def test_the_drawing_is_valid_svg_with_states_in_words_and_names_escaped():
    evil = '<script>alert("x")</script>&\''
    p = pipeline([{"name": "ok", "command": "x"}, {"name": "b", "command": "x", "dependencies": ["ok"]}])
    p = p.__class__(
        **{
            **p.__dict__,
            "tasks": (
                p.tasks[0].__class__(**{**p.tasks[0].__dict__, "name": evil}),
                p.tasks[1].__class__(**{**p.tasks[1].__dict__, "dependencies": (evil,)}),
            ),
        }
    )
    drawn = svg(p, {evil: "failed", "b": "skipped"}, lambda t: f"/jobs/j/tasks/{t}")
    xml.dom.minidom.parseString(drawn)  # well-formed: nothing a name holds breaks out
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert drawn.count('class="node state-') == 2 and ">failed</text>" in drawn and ">skipped</text>" in drawn
    assert len(re.findall(r'<path class="edge"', drawn)) == 1


def test_two_hundred_tasks_are_laid_out_quickly():
    import time

    tasks = [
        {"name": f"t{i}", "command": "x", "dependencies": [f"t{i - 1}", f"t{i // 2}"] if i > 1 else []}
        for i in range(200)
    ]
    p = pipeline(tasks)
    started = time.perf_counter()
    drawn = svg(p, {}, lambda t: t)
    assert time.perf_counter() - started < 0.5
    assert drawn.count('<a class="node') == 200
