"""A report's summary when the job is big: GitHub's byte limit, and a graph Mermaid would refuse to draw."""

from __future__ import annotations

import re

from core.reports.markdown_reading import fenced_blocks, size, table_rows
from core.reports.stored_jobs import PUBLIC, report_of, stored

from fasttrack_gitops.core.job import TaskState
from fasttrack_gitops.core.reports.markdown import MAX_BYTES
from fasttrack_gitops.engine.state.store import Store


def test_a_summary_too_big_for_github_is_cut_at_a_row_and_keeps_where_the_job_came_from(store: Store):
    chain = (
        "\n".join(
            ['version: "26.4.4"', "name: long", "tasks:"]
            + [
                f"  - {{name: step{i:03}, command: 'true'{f', dependencies: [step{i - 1:03}]' if i else ''}}}"
                for i in range(400)
            ]
        )
        + "\n"
    )
    job = stored(store, chain)
    for i in range(400):
        store.set_task_state(job.id, f"step{i:03}", TaskState.SKIPPED, reason=f"skip ✅ {i} " + "why " * 70)

    report = report_of(store, job)

    assert size(report.summary) <= MAX_BYTES
    fenced_blocks(report.summary)  # none left open: the graph that did not fit is left out whole
    assert "```mermaid" not in report.summary
    note = re.search(
        r"\(truncated: (\d+) more characters; see the job's log with "
        rf"`fasttrack-gitops jobs logs {job.id}`\)",
        report.summary,
    )
    assert note is not None and int(note[1]) > 60_000
    rows = table_rows(report.summary)
    assert 100 < len(rows) < 400 and all(len(row) == 5 for row in rows)
    assert rows[-1][0] == f"`step{len(rows) - 1:03}`"
    assert report.summary.endswith(f"- **Job:** [{job.id}]({PUBLIC}/jobs/{job.id})\n")
    assert len(report.tasks) == 400  # the rows for other reporters stay whole


def test_a_graph_mermaid_would_refuse_to_draw_is_left_out_with_a_word(store: Store):
    fan = ['version: "26.4.4"', "name: wide", "tasks:"] + [f"  - {{name: s{i}, command: 'true'}}" for i in range(30)]
    fan += [
        f"  - {{name: j{k}, command: 'true', dependencies: [{', '.join(f's{i}' for i in range(30))}]}}"
        for k in range(20)
    ]  # 600 edges
    job = stored(store, "\n".join(fan) + "\n")

    report = report_of(store, job)

    assert "```mermaid" not in report.summary
    assert "_The graph of 50 tasks is too big to draw here._" in report.summary
    assert len(table_rows(report.summary)) == 50
