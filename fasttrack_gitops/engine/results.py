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
from fasttrack_gitops.core.job import JobView, PipelineJob, TaskState
from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.core.pipeline.results import Plot
from fasttrack_gitops.core.reports.results import ResultsSection, results_markdown
from fasttrack_gitops.core.signing import signed_output_url
from fasttrack_gitops.engine.outputs import OutputNotFoundError, OutputsFolder, OutputTooLargeError
from fasttrack_gitops.engine.state.results import Results
from fasttrack_gitops.engine.state.store import Store

# How long a plot's link in a check run or a Slack message works: a pull request is read for weeks, and GitHub's
# image proxy fetches it again when its cache expires. The link names one file of one finished job.
PLOT_LINK_TTL = 90 * 86400


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
        except OutputNotFoundError:
            problems.append(f"{path}: not in the task's outputs; the task should write its metrics there")
        except OutputTooLargeError as e:
            problems.append(f"{path}: {e.size} bytes, more than the 1 MiB a metrics file may have; keep it small")
        except (FastTrackError, metrics.MetricsFileError) as e:  # unreadable, not metrics: said, never fatal
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
    store: Store, view: JobView, *, public_url: str | None = None, signing: bytes | None = None
) -> ResultsSection | None:
    """The "Model results" Markdown and its comparison, for a job whose tasks declare metrics. Its plots are
    images at signed links to the daemon (`public_url` and `signing`), never a third-party host; without them,
    where to download them."""
    found = comparison(store, view, public_url=public_url)
    if found is None:
        return None
    images = plot_links(view, public_url, signing) if public_url and signing else []
    text = results_markdown(found, base_label=base_label(view, found), images=images)
    if not images and (plots := _plots(view)):
        names = ", ".join(f"`{task}/{plot.path}`" for task, _, plot in plots)
        text += f"Plots: {names} (`fasttrack-gitops jobs outputs {view.job.id} TASK --download DIR`)\n\n"
    return ResultsSection(text, found, tuple(images))


def plot_links(view: JobView, public_url: str, signing: bytes) -> list[tuple[str, str]]:
    """(title, signed URL) of every declared plot of a task that succeeded or was reused."""
    return [
        (plot.label, signed_output_url(public_url, signing, job_id, task, plot.path, PLOT_LINK_TTL))
        for task, job_id, plot in _plots(view)
    ]


def made_outputs(view: JobView) -> list[tuple[Task, str]]:
    """(task, the job whose folder holds its outputs) for each task that succeeded or was reused."""
    found = []
    for task in view.job.pipeline_model().tasks:
        instance = view.tasks.get(task.name)
        if instance is not None and instance.state in (TaskState.SUCCEEDED, TaskState.REUSED):
            found.append((task, instance.reused_from or view.job.id))
    return found


def _plots(view: JobView) -> list[tuple[str, str, Plot]]:
    """(task, the job whose folder holds its outputs, plot) for the declared plots of tasks that made outputs."""
    return [(task.name, job_id, plot) for task, job_id in made_outputs(view) for plot in task.plots]


def _branch(ref: str | None) -> str:
    if not ref:
        return ""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return "" if ref.startswith("refs/") or ref == "HEAD" else ref
