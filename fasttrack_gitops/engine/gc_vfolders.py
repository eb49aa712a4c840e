"""gc on Backend.AI: the collected jobs' `jobs/<id>` folders in their pipelines' data folders (vfolders).

Each (repository, pipeline) has one pipeline data folder (datafolder.folder_name);
a job that ran on Backend.AI left `jobs/<job id>` in it. One listing of
`jobs/` per folder says which collected jobs are there; one request deletes
them. A pipeline that never ran on Backend.AI has no folder: nothing to do.
Called after the jobs' rows are gone (engine/gc.py), so a failure here
leaves folders without jobs, which a later gc cannot see any more: they are
said in the problems, with the folder, for removal by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from fasttrack_gitops.core.retention import JobFacts
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import errors, vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.gc import Collection, Item

JOBS = "jobs"


async def job_folders(client: Client, jobs: Sequence[JobFacts]) -> dict[str, list[str]]:
    """Folder name -> the `jobs/<id>` paths of these jobs that it holds."""
    wanted: dict[str, set[str]] = {}
    for job in jobs:
        wanted.setdefault(datafolder.folder_name(job.repository, job.pipeline), set()).add(job.id)
    found: dict[str, list[str]] = {}
    for name, ids in sorted(wanted.items()):
        try:
            entries = await vfolders.list_files(client, name, JOBS)
        except errors.NotFoundError:  # no such folder, or no jobs/ in it: nothing ran there
            continue
        paths = sorted(datafolder.job_in_folder(e.name) for e in entries if e.is_dir and e.name in ids)
        if paths:
            found[name] = paths
    return found


async def remove_job_folders(client: Client, found: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Delete them: (the "folder:path" removed, the problems)."""
    removed: list[str] = []
    problems: list[str] = []
    for name, paths in found.items():
        try:
            await vfolders.delete_files(client, name, paths, recursive=True)
        except errors.BackendAIError as e:
            problems.append(f"{', '.join(paths)} in the Backend.AI folder {name}: {e}")
            continue
        removed += [f"{name}:{p}" for p in paths]
    return removed, problems


async def collect_folders(client: Client, done: Collection) -> None:
    """Add the collected jobs' Backend.AI folders to what gc removed (or, in a dry run, would), and remove them."""
    found = await job_folders(client, done.collected)
    done.items += [Item("backend.ai", f"{name}:{path}") for name, paths in found.items() for path in paths]
    if not done.dry_run:
        _, problems = await remove_job_folders(client, found)
        done.problems += problems
