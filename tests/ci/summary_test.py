"""The step summary and the step's conclusion, from plain facts (no runner, no repository)."""

from __future__ import annotations

from fasttrack_gitops.ci import selection, summary
from fasttrack_gitops.ci.summary import Facts, JobResult, Submitted
from fasttrack_gitops.core.pipeline.diagnostics import diagnostic
from fasttrack_gitops.core.reports.model import JobReport
from fasttrack_gitops.core.triggers import Candidate, Considered

TRAIN = Candidate("pipelines/train.yaml", "train", {"push": {}})


def facts(**kwargs) -> Facts:
    base = dict(
        mode="run",
        what="push to main",
        commit="a" * 40,
        run_url="https://github.com/o/r/actions/runs/1",
        files=[{"file": "pipelines/train.yaml"}],
        diagnostics=[],
        decisions=[Considered(TRAIN, False, "push to main: no changed file matches on.push.paths (x/**)")],
    )
    return Facts(**{**base, **kwargs})


def job(conclusion: str | None) -> JobResult:
    report = JobReport(
        job_id="j1",
        repository="o/r",
        pipeline="train",
        pipeline_path="pipelines/train.yaml",
        commit="a" * 40,
        ref="refs/heads/main",
        trigger={"event": "push"},
        status="x",
        conclusion=conclusion,
        started=True,
        title="t",
        summary="| task |\n",
        text="",
    )
    return JobResult(report, "https://github.com/o/r/runs/9")


def test_nothing_selected_is_said_and_concludes_skipped():
    shown = summary.markdown(facts())
    assert shown.startswith("## FastTrack pipelines: ⏭️ nothing selected\n")
    assert "No pipeline was selected by this push to main, so nothing ran." in shown
    assert summary.conclusion(facts()) == "skipped"


def test_conclusions():
    error = diagnostic("FT101", "unknown key 'x'", "pipelines/a.yaml", 3, 4)
    assert summary.conclusion(facts(jobs=[job("success"), job("neutral")])) == "success"
    assert summary.conclusion(facts(jobs=[job("success"), job("timed_out")])) == "failure"
    assert summary.conclusion(facts(jobs=[job("cancelled")])) == "cancelled"
    assert summary.conclusion(facts(jobs=[job("success")], diagnostics=[error])) == "invalid"
    assert summary.conclusion(facts(jobs=[job("failure")], diagnostics=[error])) == "failure"
    assert summary.conclusion(facts(mode="validate")) == "success"
    assert summary.conclusion(facts(mode="validate", diagnostics=[error])) == "invalid"
    assert summary.conclusion(facts(submitted=[Submitted("train", "pipelines/train.yaml", ("j1",))])) == "submitted"
    assert summary.conclusion(facts(submitted=[Submitted("train", "p", (), error="no job")])) == "failure"


def test_a_summary_too_long_is_cut_at_a_line_end_without_half_a_graph():
    graph = "```mermaid\nflowchart LR\n" + "".join(f"  t{i} --> t{i + 1}\n" for i in range(2000)) + "```\n"
    text = "# head\n\n" + "intro line\n" * 100 + graph + "after\n"
    cut = summary.clip(text, 20_000)
    assert len(cut.encode()) <= 20_000
    assert "```mermaid" not in cut
    assert cut.startswith("# head\n") and cut.endswith("the step's log has it all)_\n")


def test_a_cut_code_block_is_closed():
    text = "```text\n" + "log line\n" * 5000 + "```\n"
    cut = summary.clip(text, 4000)
    assert cut.count("```") == 2


def test_every_diagnostic_is_listed_even_past_githubs_ten():
    many = [diagnostic("FT101", f"unknown key 'k{i}'", "pipelines/a.yaml", i + 1, 3) for i in range(25)]
    shown = summary.markdown(facts(diagnostics=many))
    assert shown.count("**error** FT101") == 25
    assert "- `pipelines/a.yaml:25:3` **error** FT101: unknown key 'k24'" in shown


def test_other_events_select_pipelines_without_on_or_listing_the_event():
    plain = Candidate("pipelines/plain.yaml", "plain", None)
    nightly = Candidate("pipelines/nightly.yaml", "nightly", {"schedule": [{"cron": "0 3 * * *"}]})
    choice = selection.for_event([plain, nightly, TRAIN], "schedule", run_id="42")
    assert [(d.candidate.name, d.selected) for d in choice.decisions] == [
        ("plain", True),
        ("nightly", True),
        ("train", False),
    ]
    assert [s.trigger for s in choice.selections] == [{"event": "schedule", "id": "42", "sender": ""}] * 2
    assert choice.selections[0].key == "schedule:42"
