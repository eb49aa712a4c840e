"""What a person sees about a job on GitHub and Slack: reports of real jobs in a real store in tmp_path.

Jobs are driven through the store's own writes (as the runner makes them), or
run for real on the local executor where the story needs real logs. Each test
reads the report as a person would: the title, the table rows, the coloured
graph, the log tails, the notes, and what must never show (a secret).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import textwrap
from pathlib import Path

import pytest

from fasttrack_gitops.core.comment_commands import Gate
from fasttrack_gitops.core.events import PullRequest
from fasttrack_gitops.core.job import Outcome, PipelineJob, TaskState, freeze, freeze_invalid
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.reports.build import MAX_BYTES, conclusion, fit, gate_report, job_report
from fasttrack_gitops.core.reports.model import JobReport, TaskRow
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.reporters.logtail import failed_log_tails
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.ledger import JobKey, Ledger
from fasttrack_gitops.engine.state.store import Store

COMMIT = "c0ffee" * 6 + "beef"
CANARY = "canary-5ecr3t-Zq81xW"
PUBLIC = "https://ci.example.com"
PIPELINE = """\
version: "26.4.4"
name: train-eval
notify:
  slack: {channel: "#ml", on: [failure]}
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    command: echo train
    timeout: 30m
  - name: lint
    command: echo lint
    continue_on_failure: true
  - name: eval
    dependencies: [train]
    command: echo eval
"""
ENDS = {Outcome.SUCCEEDED: TaskState.SUCCEEDED, Outcome.CANCELLED: TaskState.CANCELLED}


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state") as opened:
        yield opened


def stored(store: Store, text: str = PIPELINE, *, trigger: dict | None = None) -> PipelineJob:
    checked = check_pipeline(textwrap.dedent(text).encode(), "pipelines/p.yaml")
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        source="commit",
        commit=COMMIT,
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
        trigger=trigger or {"event": "push", "ref": "refs/heads/main", "sender": "alice"},
        now=1_700_000_000.0,
    )
    store.create_job(job)
    return job


def ran(
    store: Store,
    job: PipelineJob,
    task: str,
    *,
    start: float,
    seconds: float,
    outcome: Outcome = Outcome.SUCCEEDED,
    exit_code: int | None = None,
    reason: str = "",
) -> None:
    """The writes a runner makes for a task that ran once and ended so."""
    store.start_attempt(job.id, task, 1, started_at=start)
    store.set_task_state(job.id, task, TaskState.RUNNING)
    code = exit_code if exit_code is not None else (0 if outcome == Outcome.SUCCEEDED else None)
    store.end_attempt(job.id, task, 1, ended_at=start + seconds, exit_code=code, outcome=outcome, message=reason)
    store.set_task_state(job.id, task, ENDS.get(outcome, TaskState.FAILED), reason=reason)


def skipped(store: Store, job: PipelineJob, *tasks: str, reason: str = "dependency train failed") -> None:
    for task in tasks:
        store.set_task_state(job.id, task, TaskState.SKIPPED, reason=reason)


def report_of(store: Store, job: PipelineJob, masks=(), public_url: str | None = PUBLIC) -> JobReport:
    """What the daemon's report builder makes of the job now."""
    view = store.view(job.id)
    return job_report(view, log_tails=failed_log_tails(store, view, masks=masks), masks=masks, public_url=public_url)


def table_rows(summary: str) -> list[list[str]]:
    """The task table's rows (header and rule left out), cell by cell."""
    lines = [line for line in summary.split("\n") if line.startswith("| ")][2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(info, content) of every fenced code block, read the CommonMark way; fails on one left open."""
    blocks, fence, info, content = [], None, "", []
    for line in markdown.split("\n"):
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if fence is None:
            if match:
                fence, info, content = match[1], match[2].strip(), []
        elif match and match[1][0] == fence[0] and len(match[1]) >= len(fence) and not match[2].strip():
            blocks.append((info, "".join(f"{text}\n" for text in content)))
            fence = None
        else:
            content.append(line)
    assert fence is None, f"a {fence}{info} block is left open"
    return blocks


def mermaid_classes(summary: str) -> dict[str, str]:
    """Node id -> the state class the graph colours it with."""
    (graph,) = [content for info, content in fenced_blocks(summary) if info == "mermaid"]
    return dict(re.findall(r"^  class (t\d+) (\w+)$", graph, re.M))


def size(text: str) -> int:
    return len(text.encode())


def run_for_real(tmp_path: Path, store: Store, text: str) -> PipelineJob:
    """Run the pipeline to its end on the local executor (no secrets given: a log keeps what tasks print)."""
    job = stored(store, text)
    runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path)

    async def drive():
        try:
            await runner.run()
        finally:
            await runner.executor.close()

    asyncio.run(drive())
    return job


# -- a job that ended -----------------------------------------------------------------------------


def test_a_succeeded_job_shows_its_tasks_its_coloured_graph_and_where_it_came_from(store: Store):
    job = stored(store)
    ran(store, job, "prepare", start=1000, seconds=10)
    ran(store, job, "lint", start=1000, seconds=5)
    ran(store, job, "train", start=1010, seconds=90)
    ran(store, job, "eval", start=1100, seconds=30)

    report = report_of(store, job)

    assert report.title == "Succeeded: 4 tasks in 2m10s"
    assert (report.status, report.conclusion, report.started, report.ended) == ("succeeded", "success", True, True)
    assert report.check_name == "fasttrack/train-eval"
    assert table_rows(report.summary) == [
        ["`prepare`", "✅ succeeded", "10s", "1", ""],
        ["`train`", "✅ succeeded", "1m30s", "1", ""],
        ["`lint`", "✅ succeeded", "5s", "1", ""],
        ["`eval`", "✅ succeeded", "30s", "1", ""],
    ]
    assert mermaid_classes(report.summary) == {f"t{i}": "succeeded" for i in range(4)}
    assert "classDef succeeded fill:#dafbe1" in report.summary
    assert f"- **Commit:** `{COMMIT[:12]}` on `refs/heads/main`" in report.summary
    assert "- **Trigger:** push by alice" in report.summary
    assert f"spec `{job.spec_id}`" in report.summary
    assert report.details_url == f"{PUBLIC}/jobs/{job.id}"
    assert f"[{job.id}]({PUBLIC}/jobs/{job.id})" in report.summary
    assert report.tasks == (
        TaskRow("prepare", "succeeded", 10, 1),
        TaskRow("train", "succeeded", 90, 1),
        TaskRow("lint", "succeeded", 5, 1),
        TaskRow("eval", "succeeded", 30, 1),
    )
    assert (report.text, report.failed_logs, report.annotations) == ("", {}, ())
    assert report.notify == {"slack": {"channel": "#ml", "on": ["failure"]}}
    assert (report.repository, report.commit, report.ref, report.pipeline_path) == (
        "acme/models",
        COMMIT,
        "refs/heads/main",
        "pipelines/p.yaml",
    )
    assert report.trigger == {"event": "push", "ref": "refs/heads/main", "sender": "alice"}


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


@pytest.mark.parametrize(
    ("story", "expected", "title"),
    [
        ("all succeed", "success", "Succeeded: 4 tasks in 2m"),
        ("lint fails", "neutral", "Succeeded with tolerated failures: lint (exit 1); 3 of 4 tasks succeeded"),
        ("train times out", "timed_out", "Timed out: train after 30m"),
        ("train times out, lint fails", "timed_out", "Timed out: train after 30m"),
        ("prepare fails", "failure", "Failed: prepare (exit 2); 1 of 4 tasks succeeded"),
        ("train is cancelled", "cancelled", "Cancelled: 2 of 4 tasks succeeded"),
    ],
)
def test_the_conclusion_and_title_of_each_ending(store: Store, story: str, expected: str, title: str):
    job = stored(store)
    lint = Outcome.FAILED if "lint fails" in story else Outcome.SUCCEEDED
    ran(
        store,
        job,
        "lint",
        start=0,
        seconds=5,
        outcome=lint,
        exit_code=1 if lint == Outcome.FAILED else 0,
        reason="exit code 1" if lint == Outcome.FAILED else "",
    )
    if story == "prepare fails":
        ran(store, job, "prepare", start=0, seconds=5, outcome=Outcome.FAILED, exit_code=2, reason="exit code 2")
        skipped(store, job, "train", "eval", reason="dependency prepare failed")
    else:
        ran(store, job, "prepare", start=0, seconds=10)
        if "times out" in story:
            ran(store, job, "train", start=10, seconds=1800, outcome=Outcome.TIMED_OUT, reason="timed out after 30m")
            skipped(store, job, "eval")
        elif "cancelled" in story:
            ran(store, job, "train", start=10, seconds=60, outcome=Outcome.CANCELLED, reason="the job was cancelled")
            store.set_task_state(job.id, "eval", TaskState.CANCELLED, reason="the job was cancelled")
        else:
            ran(store, job, "train", start=10, seconds=90)
            ran(store, job, "eval", start=100, seconds=30)

    view = store.view(job.id)
    report = report_of(store, job)

    assert conclusion(view) == report.conclusion == expected
    assert report.title.startswith(title)


def test_a_timeout_beside_another_failure_is_a_failure(store: Store):
    job = stored(
        store,
        """\
        version: "26.4.4"
        name: pair
        tasks:
          - {name: a, command: sleep 100, timeout: 5}
          - {name: b, command: exit 1}
        """,
    )
    ran(store, job, "a", start=0, seconds=5, outcome=Outcome.TIMED_OUT, reason="timed out after 5s")
    ran(store, job, "b", start=0, seconds=1, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")

    report = report_of(store, job)

    assert report.conclusion == "failure"
    assert report.title == "Failed: a (timed out), b (exit 1); 0 of 2 tasks succeeded"


# -- a job that has not ended ---------------------------------------------------------------------


def test_the_title_follows_a_job_from_the_queue_to_an_interrupted_run(store: Store):
    job = freeze(
        check_pipeline(PIPELINE.encode(), "pipelines/p.yaml").pipeline,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        source="commit",
        commit=COMMIT,
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
        trigger={"event": "push", "sender": "alice"},
    )
    ledger = Ledger(store)
    ledger.add_job(JobKey("acme/models", COMMIT, "pipelines/p.yaml", "push:refs/heads/main"), job)
    seen = []

    def look() -> None:
        report = report_of(store, job)
        assert report.conclusion is None and conclusion(store.view(job.id)) is None
        seen.append((report.status, report.title, report.started))

    look()
    with store.claim(job.id):  # a runner drives it
        ledger.mark_started(job.id)
        look()
        ran(store, job, "prepare", start=0, seconds=10)
        store.start_attempt(job.id, "train", 1, started_at=10)
        store.set_task_state(job.id, "train", TaskState.RUNNING)
        look()
        running = report_of(store, job)
        ran(store, job, "lint", start=0, seconds=3, outcome=Outcome.FAILED, exit_code=1, reason="exit code 1")
        look()
        store.request_cancel(job.id)
        look()
    look()  # the runner died with the job open

    assert seen == [
        ("queued", "Queued", False),
        ("pending", "Starting: 4 tasks", False),
        ("running", "Running: 1 of 4 tasks done", True),
        ("running", "Running: 2 of 4 tasks done; lint (exit 1) failed", True),
        ("running", "Cancelling: 2 of 4 tasks done; lint (exit 1) failed", True),
        ("interrupted", "Interrupted: 2 of 4 tasks done; lint (exit 1) failed; no runner is driving the job", True),
    ]
    assert table_rows(running.summary)[1] == ["`train`", "🔄 running", "…", "1", ""]
    assert running.tasks[1] == TaskRow("train", "running", None, 1)
    assert mermaid_classes(running.summary) == {"t0": "succeeded", "t1": "running", "t2": "pending", "t3": "pending"}


# -- an invalid pipeline file, a fork's pull request ----------------------------------------------


def test_an_invalid_pipeline_file_is_a_failure_with_an_annotation_per_diagnostic(store: Store):
    broken = textwrap.dedent("""\
        version: "26.4.4"
        name: bad
        environment:
          envs: {API_TOKEN: abcdef123456}
        tasks:
          - name: a
            comand: echo
            resources: {mem: 64}
        """)
    diagnostics = [d.as_dict() for d in check_pipeline(broken.encode(), "pipelines/bad.yaml").diagnostics]
    job = freeze_invalid(
        "bad",
        diagnostics,
        pipeline_path="pipelines/bad.yaml",
        repository="acme/models",
        commit=COMMIT,
        ref="refs/heads/main",
        tree="7" * 40,
        trigger={"event": "push", "sender": "bob"},
    )
    store.create_job(job)

    report = report_of(store, job)

    assert report.title == "Invalid pipeline file: 2 errors, 2 warnings"
    assert (report.status, report.conclusion, report.started, report.tasks) == ("invalid", "failure", False, ())
    assert report.annotations == (
        {
            "path": "pipelines/bad.yaml",
            "line": 4,
            "column": 21,
            "level": "warning",
            "title": "FT202",
            "message": diagnostics[0]["message"],
        },
        {
            "path": "pipelines/bad.yaml",
            "line": 6,
            "column": 5,
            "level": "failure",
            "title": "FT102",
            "message": diagnostics[1]["message"],
        },
        {
            "path": "pipelines/bad.yaml",
            "line": 7,
            "column": 5,
            "level": "failure",
            "title": "FT101",
            "message": "unknown key 'comand' in task 'a' (did you mean 'command'?)",
        },
        {
            "path": "pipelines/bad.yaml",
            "line": 8,
            "column": 22,
            "level": "warning",
            "title": "FT204",
            "message": diagnostics[3]["message"],
        },
    )
    assert (
        "- `pipelines/bad.yaml:7:5` **error** FT101: unknown key 'comand' in task 'a' (did you mean 'command'?)"
        in report.summary
    )
    assert "```mermaid" not in report.summary and "| task |" not in report.summary
    assert "- **Trigger:** push by bob" in report.summary
    assert (report.text, report.notify) == ("", {})


def pull_request(number: int = 12) -> dict:
    return dataclasses.asdict(
        PullRequest(
            repository="acme/models",
            action="opened",
            number=number,
            head_sha="f00d" * 10,
            head_ref="feature",
            head_repository="mallory/models",
            base_ref="main",
            author="mallory",
            author_association="NONE",
            sender="mallory",
        )
    )


def test_a_fork_pull_request_waits_for_ok_to_test_in_its_own_check():
    gate = Gate("acme/models", 12, "f00d" * 10, pull_request(), held_at=1_700_000_000.0, approved_by=None)

    report = gate_report(gate, public_url=PUBLIC)

    assert report.job_id == f"gate:acme/models#12@{'f00d' * 10}"
    assert (report.check_name, report.commit, report.repository) == ("fasttrack/ok-to-test", "f00d" * 10, "acme/models")
    assert (report.status, report.conclusion, report.started) == ("action_required", "action_required", False)
    assert report.title == "Waiting for a member's /fasttrack ok-to-test"
    assert "`mallory/models`" in report.summary and "mallory" in report.summary
    assert "only after a member (OWNER, MEMBER or COLLABORATOR) comments `/fasttrack ok-to-test`" in report.summary
    assert report.trigger["event"] == "pull_request" and report.trigger["number"] == 12
    assert report.ended  # a check waiting on people is a completed check with conclusion action_required


def test_an_approved_fork_pull_request_turns_its_check_green():
    gate = Gate("acme/models", 12, "f00d" * 10, pull_request(), held_at=1_700_000_000.0, approved_by="carol")

    report = gate_report(gate)

    assert (report.status, report.conclusion) == ("succeeded", "success")
    assert report.title == "Approved by carol: pull request #12 runs"
    assert "carol commented `/fasttrack ok-to-test`" in report.summary


# -- GitHub's limits --------------------------------------------------------------------------------


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


def test_fit_closes_a_code_block_it_cuts_and_says_how_much_it_left_out():
    markdown = "### a log\n\n````text\n" + "".join(f"line {i} ✅ ```\n" for i in range(10_000)) + "````\n\nafter\n"

    cut = fit(markdown, "j1")

    assert size(cut) <= MAX_BYTES < size(markdown)
    ((info, content),) = fenced_blocks(cut)
    assert info == "text" and content.endswith("```\n") and markdown.startswith("### a log\n\n````text\n" + content)
    left_out = int(re.search(r"truncated: (\d+) more characters", cut)[1])
    assert len("### a log\n\n````text\n" + content) + left_out == len(markdown)
    assert "`fasttrack-gitops jobs logs j1`" in cut


def test_fit_leaves_out_a_graph_it_would_cut():
    graph = "```mermaid\nflowchart LR\n" + "".join(f'  t{i}["{"x" * 50}"]\n' for i in range(2000)) + "```\n"
    markdown = "| task |\n| --- |\n| a |\n\n" + graph

    cut = fit(markdown, "j1")

    assert cut.startswith("| task |\n| --- |\n| a |\n\n\n_(truncated: ")
    assert fenced_blocks(cut) == []


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


# -- secrets ----------------------------------------------------------------------------------------


def test_a_secret_printed_by_a_task_shows_nowhere_in_the_report(tmp_path: Path, store: Store):
    job = run_for_real(
        tmp_path,
        store,
        f"""\
        version: "26.4.4"
        name: leaky
        tasks:
          - name: leak
            command: echo "connecting with {CANARY}"; echo "rejected"; exit 4
          - name: after
            dependencies: [leak]
            command: "true"
        """,
    )
    store.set_task_state(job.id, "leak", TaskState.FAILED, reason=f"the server said: bad token {CANARY}")
    assert CANARY in store.log_path(job.id, "leak", 1).read_text()  # the report is the last line of defence

    report = report_of(store, job, masks=["", "short", CANARY])

    everything = json.dumps(dataclasses.asdict(report), ensure_ascii=False)
    assert CANARY not in everything
    assert report.failed_logs == {"leak": "connecting with ***\nrejected\n"}
    assert "bad token ***" in report.summary and "bad token ***" in report.text
    assert report.tasks[0].reason == "the server said: bad token ***"


def test_a_secret_in_an_invalid_file_shows_nowhere_in_its_annotations(store: Store):
    diagnostics = [
        {
            "file": "pipelines/p.yaml",
            "line": 3,
            "column": 9,
            "severity": "error",
            "code": "FT101",
            "message": f"unknown key '{CANARY}'",
            "path": "$",
        }
    ]
    job = freeze_invalid(
        "p",
        diagnostics,
        pipeline_path="pipelines/p.yaml",
        repository="acme/models",
        commit=COMMIT,
        ref=None,
        tree="7" * 40,
        trigger={"event": "push"},
    )
    store.create_job(job)

    report = report_of(store, job, masks=[CANARY])

    assert CANARY not in json.dumps(dataclasses.asdict(report), ensure_ascii=False)
    assert report.annotations[0]["message"] == "unknown key '***'"


def test_without_a_public_url_there_is_no_link(store: Store):
    job = stored(store, trigger={"event": "cli"})

    report = report_of(store, job, public_url=None)

    assert report.details_url is None
    assert f"- **Job:** `{job.id}`" in report.summary and "- **Trigger:** cli" in report.summary


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
