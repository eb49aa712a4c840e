"""`fasttrack-gitops jobs metrics`: a job's model results against a baseline, like `dvc metrics diff` with gates.

The baseline is the one every report uses (engine/results.py: the newest
succeeded job of the pipeline at the job's base commit), or the one `--base`
names: a job (an id or a unique prefix) or a revision of the job's
repository (its newest succeeded job of the pipeline there). Exit 0 when
every gate holds, 1 when one fails, 2 for a job or base that is not there.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fasttrack_gitops.commands.options import markdown_format_option, state_dir_option
from fasttrack_gitops.core.errors import UsageError


@click.command("metrics")
@click.argument("job")
@click.option(
    "--base",
    default=None,
    metavar="JOB|REV",
    help="Compare with this job, or with the pipeline's newest succeeded job at this revision "
    "(default: the job's base commit: a push's previous commit, a pull request's merge base).",
)
@state_dir_option
@markdown_format_option("json: base, metrics (task, name, head, base, delta, verdict, gate, reason), gates_failed.")
def metrics(job: str, base: str | None, state_dir, fmt: str) -> int:
    """A job's metrics against its baseline: direction-aware changes, noise, and the gates that decide."""
    from fasttrack_gitops.core.metrics import as_json
    from fasttrack_gitops.core.reports.results import results_markdown, results_text
    from fasttrack_gitops.engine.results import base_label, comparison
    from fasttrack_gitops.engine.state.results import Results
    from fasttrack_gitops.engine.state.store import Store

    with Store(state_dir) as store:
        view = store.view(job)
        against = None
        if base is not None:
            against = _base_job(store, Results(store), view, base)
        found = comparison(store, view, against=against)
        if found is None:
            click.echo(f"job {view.job.id}: no task of pipeline {view.job.pipeline} declares metrics", err=True)
            return 0
        label = f"job {against.job.id}" if against is not None else base_label(view, found)
    if fmt == "json":
        click.echo(json.dumps(as_json(found), indent=2))
    elif fmt == "markdown":
        click.echo(results_markdown(found, base_label=label), nl=False)
    else:
        click.echo(f"job {view.job.id} against {label}\n{results_text(found)}", nl=False)
    return 1 if found.gates_failed else 0


def _base_job(store, results, view, base: str):
    """The job `--base` names: a stored job, else the pipeline's newest succeeded job at that revision."""
    from fasttrack_gitops.core.errors import FastTrackError
    from fasttrack_gitops.engine import gitrepo

    try:
        return store.view(base)
    except FastTrackError:
        pass
    found_repo = gitrepo.repository_of(Path(view.job.repository)) if Path(view.job.repository).is_dir() else None
    if found_repo is None:
        raise UsageError(f"--base {base}: no such job, and {view.job.repository} is not a repository on this machine")
    try:
        commit, _ = gitrepo.resolve_revision(found_repo[0], base)
    except gitrepo.GitError:
        raise UsageError(f"--base {base}: neither a job nor a revision of {found_repo[0]}") from None
    found = results.baseline(view, commit)
    if found is None:
        raise UsageError(f"--base {base}: no job of pipeline {view.job.pipeline} succeeded at {commit[:12]}")
    return found
