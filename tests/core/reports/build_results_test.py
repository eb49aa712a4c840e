"""Model results in a job's report: judged once the job ended, never while a metric may still come."""

from __future__ import annotations

from core.reports.stored_jobs import ran, stored

from fasttrack_gitops.core.metrics import compare
from fasttrack_gitops.core.reports.build import job_report
from fasttrack_gitops.core.reports.results import ResultsSection, results_markdown
from fasttrack_gitops.engine.state.store import Store

PIPELINE = """\
version: "26.4.4"
name: scored
tasks:
  - name: train
    command: echo train
  - name: evaluate
    dependencies: [train]
    command: echo evaluate
    metrics:
      files: [metrics.json]
      rules:
        accuracy: {direction: higher, gate: {min: 0.9}}
"""


def section(job, head: dict) -> ResultsSection:
    found = compare(job.pipeline_model(), head, None)
    return ResultsSection(results_markdown(found, base_label="no base"), found)


def test_a_running_job_shows_no_verdict_yet_and_an_ended_one_is_failed_by_its_gate(store: Store):
    job = stored(store, PIPELINE)
    ran(store, job, "train", start=100.0, seconds=5)
    running = job_report(store.view(job.id), log_tails={}, masks=(), results=section(job, {}))
    assert running.conclusion is None and "Model results" not in running.summary and running.results == ()
    assert not running.title.startswith("Gate failed")

    ran(store, job, "evaluate", start=106.0, seconds=2)
    ended = job_report(
        store.view(job.id), log_tails={}, masks=(), results=section(job, {"evaluate": {"accuracy": 0.8}})
    )
    assert ended.conclusion == "failure" and ended.title.startswith("Gate failed: accuracy 0.8 (gate ≥ 0.9)")
    assert ended.summary.startswith("### Model results") and ended.results

    passing = job_report(
        store.view(job.id), log_tails={}, masks=(), results=section(job, {"evaluate": {"accuracy": 0.95}})
    )
    assert passing.conclusion == "success" and passing.title.startswith("Succeeded")
