"""A report's text: each failed task's log tail in a block it cannot break out of, sharing GitHub's limit."""

from __future__ import annotations

from pathlib import Path

from core.reports.markdown_reading import fenced_blocks, mermaid_classes, size, table_rows
from core.reports.stored_jobs import ran, report_of, run_for_real, skipped, stored

from fasttrack_gitops.core.job import Outcome
from fasttrack_gitops.core.reports.markdown import MAX_BYTES
from fasttrack_gitops.engine.state.store import Store


def test_a_failed_task_is_named_in_the_title_and_its_log_tail_cannot_break_out_of_its_block(
    tmp_path: Path, store: Store
):
    job = run_for_real(
        tmp_path,
        store,
        """\
        version: "26.4.4"
        name: train-eval
        tasks:
          - name: prepare
            command: echo prepared
          - name: train
            dependencies: [prepare]
            command: |
              printf 'loading data\\n```\\n````\\nnot a closing fence: ~~~\\nCUDA out of memory\\n'; exit 3
          - name: lint
            command: "true"
          - name: eval
            dependencies: [train]
            command: echo never
        """,
    )

    report = report_of(store, job)

    log = "loading data\n```\n````\nnot a closing fence: ~~~\nCUDA out of memory\n"
    assert report.title == "Failed: train (exit 3); 2 of 4 tasks succeeded"
    assert (report.status, report.conclusion) == ("failed", "failure")
    rows = table_rows(report.summary)
    assert [row[:2] for row in rows] == [
        ["`prepare`", "✅ succeeded"],
        ["`train`", "❌ failed"],
        ["`lint`", "✅ succeeded"],
        ["`eval`", "⏭️ skipped"],
    ]
    assert rows[1][3:] == ["1", "exit code 3"]
    assert "train" in rows[3][4]  # why eval did not run
    assert mermaid_classes(report.summary) == {"t0": "succeeded", "t1": "failed", "t2": "succeeded", "t3": "skipped"}
    assert "### ❌ `train`: exit code 3" in report.text
    assert fenced_blocks(report.text) == [("text", log)]  # the log's own fences stayed inside
    assert report.failed_logs == {"train": log}


def test_the_log_tails_of_several_failed_tasks_share_the_room_and_keep_their_ends(store: Store):
    job = stored(store)
    ran(store, job, "prepare", start=0, seconds=10)
    ran(store, job, "lint", start=0, seconds=10, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")
    ran(store, job, "train", start=10, seconds=10, outcome=Outcome.FAILED, exit_code=3, reason="exit code 3")
    skipped(store, job, "eval")
    for task in ("lint", "train"):
        store.log_path(job.id, task, 1).write_text(
            "".join(f"{task} line {i:05} {'é' * 400}\n" for i in range(5000)) + f"{task}: the last line\n"
        )

    report = report_of(store, job)

    assert size(report.text) <= MAX_BYTES
    blocks = fenced_blocks(report.text)
    assert [b[0] for b in blocks] == ["text", "text"]
    assert blocks[0][1].endswith("train: the last line\n") and blocks[1][1].endswith("lint: the last line\n")
    assert all(size(content) > 20_000 for _, content in blocks)  # a fair share each
    assert report.text.count("left out to fit; see `fasttrack-gitops jobs logs") == 2
    assert report.text.index("`train`") < report.text.index("`lint`")  # pipeline order


def test_twenty_failed_tasks_each_keep_a_heading_and_the_end_of_their_log(store: Store):
    tasks = "\n".join(f"  - {{name: t{i:02}, command: 'false'}}" for i in range(20))
    job = stored(store, f'version: "26.4.4"\nname: many\ntasks:\n{tasks}\n')
    for i in range(20):
        ran(store, job, f"t{i:02}", start=0, seconds=1, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")
        store.log_path(job.id, f"t{i:02}", 1).write_text("".join(f"{'x' * 900} {n}\n" for n in range(200)))

    report = report_of(store, job)

    assert size(report.text) <= MAX_BYTES and "(truncated:" not in report.text  # the shares fit: no cut at the end
    blocks = fenced_blocks(report.text)
    assert len(blocks) == 20 and all(content.endswith(" 199\n") for _, content in blocks)
    assert all(f"### ❌ `t{i:02}`: exit code 1" in report.text for i in range(20))
