"""What a person sees about a job on GitHub and Slack: reports of real jobs in a real store in tmp_path.

Each test reads the report as a person would: the title, the table rows, the
coloured graph, the notes, where the job came from, the annotations, and
what must never show (a secret). The parts have tests of their own beside
this one: verdict_test (conclusion and title), summary_test, failures_test
(log tails), markdown_test (fitting GitHub's limits).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

from core.reports.markdown_reading import mermaid_classes, table_rows
from core.reports.stored_jobs import COMMIT, PUBLIC, ran, report_of, run_for_real, stored

from fasttrack_gitops.core.comment_commands import Gate
from fasttrack_gitops.core.events import PullRequest
from fasttrack_gitops.core.job import TaskState, freeze_invalid
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.reports.build import gate_report
from fasttrack_gitops.core.reports.model import TaskRow
from fasttrack_gitops.engine.state.store import Store

CANARY = "canary-5ecr3t-Zq81xW"


# -- a job that ended ------------------------------------------------------------------------------


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


def test_without_a_public_url_there_is_no_link(store: Store):
    job = stored(store, trigger={"event": "cli"})

    report = report_of(store, job, public_url=None)

    assert report.details_url is None
    assert f"- **Job:** `{job.id}`" in report.summary and "- **Trigger:** cli" in report.summary


# -- an invalid pipeline file, a fork's pull request -----------------------------------------------


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


# -- secrets ---------------------------------------------------------------------------------------


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
