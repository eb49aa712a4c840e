"""`fasttrack-gitops jobs outputs`: what a job's tasks produced, listed or downloaded, wherever they ran.

The reading is engine/outputs.py's (the same as the daemon's outputs API);
this module parses, picks the executor and prints. A stored job does not
say where it ran, so `--executor` does, as for `run`: local reads the state
folder, backendai the pipeline data folder on the cluster (BACKEND_*).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import click

from fasttrack_gitops.commands.options import executor_option, format_option, state_dir_option
from fasttrack_gitops.core.errors import UsageError


@click.command("outputs")
@click.argument("job")
@click.argument("task", required=False)
@click.option(
    "--download",
    "dest",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Copy the outputs into DIR/<task>/ instead of listing them.",
)
@executor_option
@state_dir_option
@format_option
def outputs(job: str, task: str | None, dest: str | None, executor: str, state_dir, fmt: str) -> int:
    """What the job's tasks wrote to /pipeline/outputs (every task's without TASK).

    A task reused from the task cache shows the outputs of the job that made them.
    """
    from fasttrack_gitops.engine.executors import get_executor
    from fasttrack_gitops.engine.outputs import TaskOutputs
    from fasttrack_gitops.engine.state.store import Store

    target = _writable(Path(dest)) if dest is not None else None

    async def read(store: Store) -> int:
        reader = TaskOutputs(store, get_executor(executor))
        try:
            job_id, tasks = reader.tasks(job)
            names = [task] if task is not None else list(tasks)
            for name in names:
                reader.locate(job_id, name)  # an unknown task is said before anything is read
            if target is None:
                _print_list(job_id, names, tasks, [await reader.list(job_id, name) for name in names], fmt)
            else:
                counts = [await reader.download(job_id, name, target / name) for name in names]
                _print_download(job_id, names, counts, target, fmt)
        finally:
            await reader.executor.close()
        return 0

    with Store(state_dir) as store:
        return asyncio.run(read(store))


def _print_list(job_id: str, names: list[str], tasks: dict, listings: list, fmt: str) -> None:
    if fmt == "json":
        records = [
            {
                "name": name,
                "reused_from": tasks[name],
                "outputs": [{"path": e.path, "size": e.size, "is_dir": e.is_dir} for e in entries],
            }
            for name, entries in zip(names, listings, strict=True)
        ]
        click.echo(json.dumps({"job": job_id, "tasks": records}, indent=2))
        return
    rows = [("TASK", "PATH", "SIZE")]
    for name, entries in zip(names, listings, strict=True):
        shown = name if not tasks[name] else f"{name} (from {tasks[name]})"
        rows += [(shown, e.path + "/" if e.is_dir else e.path, "-" if e.is_dir else str(e.size)) for e in entries]
        if not entries:
            rows.append((shown, "(no outputs)", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for shown, path, size in rows:
        click.echo(f"{shown:<{widths[0]}}  {path:<{widths[1]}}  {size:>{widths[2]}}".rstrip())


def _print_download(job_id: str, names: list[str], counts: list[int], target: Path, fmt: str) -> None:
    if fmt == "json":
        done = [{"name": n, "files": c, "to": str(target / n)} for n, c in zip(names, counts, strict=True)]
        click.echo(json.dumps({"job": job_id, "downloaded": done}, indent=2))
        return
    for name, count in zip(names, counts, strict=True):
        click.echo(f"{name}: {count} file{'' if count == 1 else 's'} -> {target / name}")


def _writable(dest: Path) -> Path:
    """DIR, made when missing; a UsageError when it cannot be written."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot make --download {dest}: {e.strerror or e}; give a folder you can write") from None
    if not os.access(dest, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to --download {dest}: permission denied; give a folder you can write")
    return dest
