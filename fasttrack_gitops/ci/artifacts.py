"""What the Action uploads as a workflow artifact: each job's declared plots and artifacts, copied out of outputs.

The step's outputs folder is emptied with the runner, and a pull request's
reader wants the model and its plots: `ci` copies what the pipeline declares
(`plots:`, `artifacts:` of the tasks that succeeded or were reused) to
`<dir>/<pipeline>/<task>/<path>` and names the folder in its `results-dir`
output; action.yml's next step uploads it with actions/upload-artifact
(pinned by commit). Files are read where the executor wrote them
(engine/outputs.py), so a Backend.AI run's come from the pipeline vfolder.
A declared file that is missing or larger than MAX_FILE is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import JobView
from fasttrack_gitops.engine.outputs import OutputEntry, OutputTooLargeError, TaskOutputs
from fasttrack_gitops.engine.results import made_outputs

RESULTS_FOLDER = "results"  # in the step's state folder ($RUNNER_TEMP/fasttrack-gitops)
MAX_FILE = 100 << 20  # bytes: a bigger file stays in the outputs (`fasttrack-gitops jobs outputs` fetches it)


async def collect(outputs: TaskOutputs, views: Sequence[JobView], dest: Path, warn) -> int:
    """Copy the declared plots and artifacts of the jobs' finished tasks under dest; how many files."""
    copied = 0
    for view in views:
        for task, _ in made_outputs(view):  # TaskOutputs reads a reused task's outputs where they are
            wanted = [p.path for p in task.plots] + list(task.artifacts)
            if not wanted:
                continue
            try:
                entries = await outputs.list(view.job.id, task.name)
            except FastTrackError as e:
                warn(f"{view.job.pipeline}/{task.name}: its outputs cannot be listed ({e})")
                continue
            where = f"{view.job.pipeline}/{task.name}"
            for missing in _missing(entries, wanted):
                warn(f"{where}: {missing} is declared but not in its outputs")
            for path in _declared(entries, wanted):
                target = dest / view.job.pipeline / task.name / path
                try:
                    data = await outputs.read(view.job.id, task.name, path, limit=MAX_FILE)
                except OutputTooLargeError as e:
                    warn(f"{where}: {path} is {e.size} bytes, not uploaded (limit {MAX_FILE})")
                    continue
                except FastTrackError as e:
                    warn(f"{where}: {path} cannot be read ({e})")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                copied += 1
    return copied


def _declared(entries: Sequence[OutputEntry], wanted: Sequence[str]) -> list[str]:
    """The files the declarations name: a file itself, or every file under a folder (`model/`)."""
    found: list[str] = []
    for declared in wanted:
        found += [f for f in _matching(entries, declared) if f not in found]
    return found


def _missing(entries: Sequence[OutputEntry], wanted: Sequence[str]) -> list[str]:
    return [declared for declared in wanted if not _matching(entries, declared)]


def _matching(entries: Sequence[OutputEntry], declared: str) -> list[str]:
    name = declared.rstrip("/")
    return [e.path for e in entries if not e.is_dir and (e.path == name or e.path.startswith(name + "/"))]
