"""A job's model results: read from its tasks' declared metric files as they succeed, compared with a baseline.

The runner calls `collect` after a task with `metrics:` succeeded, before it
is marked succeeded (engine/runner.py): its files are read where the
executor wrote them (`Executor.task_outputs`: the state folder, or the
Backend.AI pipeline data folder), parsed by core/metrics.py and kept in the
state database (engine/state/results.py) with what was wrong with them. A
file that is missing or is not metrics never fails the task: it is a
problem line in every report, and a gate on a metric it should have held
fails. A reused task is not read again: its results are those recorded for
the job whose outputs it reuses.

`comparison(store, view)` puts the numbers next to the baseline's: the newest
succeeded job of the same pipeline at the job's `base_commit` (a push's
previous commit, a pull request's merge base, a work tree's HEAD, else the
first parent; engine/plan.py). Every shell calls it to build a report: the
daemon's report builder, the Action's summary, `run` and `jobs metrics`.
"""

from __future__ import annotations

from fasttrack_gitops.core import metrics
from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import JobView, PipelineJob
from fasttrack_gitops.core.reports.results import results_markdown
from fasttrack_gitops.engine.outputs import OutputsFolder
from fasttrack_gitops.engine.state.results import Results
from fasttrack_gitops.engine.state.store import Store


async def collect(job: PipelineJob, task: str, store: Store, outputs: OutputsFolder) -> None:
    """Read and record the metrics of a task instance that succeeded (nothing when it declares none)."""
    spec = job.pipeline_model().task(task).metrics
    if spec is None:
        return
    values: dict[str, float] = {}
    problems: list[str] = []
    for path in spec.files:
        try:
            data = await outputs.read(job.id, task, path, limit=metrics.MAX_METRICS_FILE)
            values.update(metrics.read_metrics(path, data))
        except (FastTrackError, metrics.MetricsFileError) as e:  # not there, too big, not metrics: said, not fatal
            problems.append(str(e))
        except OSError as e:
            problems.append(f"{path}: cannot be read ({e.strerror or e})")
    Results(store).record(job.id, task, values, problems)


def declares_metrics(job: PipelineJob) -> bool:
    return not job.invalid and any(t.metrics is not None for t in job.pipeline_model().tasks)


def comparison(
    store: Store, view: JobView, *, public_url: str | None = None, against: JobView | None = None
) -> metrics.Comparison | None:
    """The job's metrics against its baseline's (or `against`'s, a job named by `jobs metrics --base`); None when
    no task of it declares metrics."""
    job = view.job
    if not declares_metrics(job):
        return None
    results = Results(store)
    found = results.of_job(view)
    head = {task: dict(r.metrics) for task, r in found.items()}
    problems = [f"task '{task}': {p}" for task, r in found.items() for p in r.problems]
    base_view = against or results.baseline(view, job.trigger.get("base_commit"))
    if base_view is None:
        return metrics.compare(job.pipeline_model(), head, None, problems=problems)
    base = {task: dict(r.metrics) for task, r in results.of_job(base_view).items()}
    url = f"{public_url.rstrip('/')}/jobs/{base_view.job.id}" if public_url else None
    age = max(0.0, job.created_at - base_view.job.created_at)
    base_ref = metrics.BaseRef(base_view.job.id, base_view.job.commit, base_view.job.ref, age, url)
    return metrics.compare(job.pipeline_model(), head, base, base_ref=base_ref, problems=problems)


def base_label(view: JobView, found: metrics.Comparison) -> str:
    """What the baseline is ('main@def5678'), or why there is none, said plainly."""
    trigger = view.job.trigger
    commit = trigger.get("base_commit")
    branch = _branch(trigger.get("base_ref") or (found.base.ref if found.base else None) or view.job.ref)
    if found.base is not None:
        where = found.base.commit or commit or ""
        return f"{branch}@{where[:7]}" if branch else where[:7]
    if not commit:
        return "this job has no base commit (a new branch, a first commit, or a run outside git)"
    at = f"{branch}@{commit[:7]}" if branch else commit[:7]
    return f"no job of this pipeline succeeded at {at}"


def results_section(
    store: Store, view: JobView, *, public_url: str | None = None
) -> tuple[str, metrics.Comparison] | None:
    """The "Model results" Markdown and its comparison, for a job whose tasks declare metrics."""
    found = comparison(store, view, public_url=public_url)
    if found is None:
        return None
    return results_markdown(found, base_label=base_label(view, found)), found


def _branch(ref: str | None) -> str:
    if not ref:
        return ""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return "" if ref.startswith("refs/") or ref == "HEAD" else ref
