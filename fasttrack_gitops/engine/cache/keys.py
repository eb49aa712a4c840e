"""The cache keys of one job's tasks: its frozen spec, its code trees, and what `cache.paths` select at its snapshot.

The runner and `plan` compute keys the same way, here: core/cache.py says what
a key is made of; this module gathers the parts that need the repository (the
blob ids behind `cache.paths`) once per job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fasttrack_gitops.core import cache
from fasttrack_gitops.core.job import PipelineJob
from fasttrack_gitops.core.pipeline.model import Pipeline, Task


@dataclass(frozen=True)
class JobKeys:
    """What a job's tasks' cache keys are made of, but for their inputs' digests (known as dependencies end)."""

    pipeline: Pipeline
    code_trees: Mapping[str, str]  # task -> tree id of its code folder
    paths: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # task -> {repository path: blob id}
    warnings_by_task: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # a glob matching nothing...

    @cached_property
    def _tasks(self) -> dict[str, Task]:
        """The tasks by name (Pipeline.task looks through them all: a 1,000-task job asks 1,000 times)."""
        return {t.name: t for t in self.pipeline.tasks}

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"task '{task}': {w}" for task, found in self.warnings_by_task.items() for w in found)

    def ingredients(self, task: str, digests: Mapping[str, str]) -> dict[str, Any] | None:
        """The task's ingredients given its dependencies' outputs digests; None while one of them is unknown."""
        spec = self._tasks[task]
        if any(d not in digests for d in spec.dependencies):
            return None
        return cache.ingredients(
            self.pipeline,
            spec,
            code_tree=self.code_trees[task],
            paths=self.paths.get(task, {}),
            inputs=[(d, digests[d]) for d in spec.dependencies],
        )


def job_keys(job: PipelineJob, source: Any) -> JobKeys:
    """The job's key parts; `source` is the gitrepo.Snapshot its trees are read from (None: no `cache.paths` read).

    Blocking (it reads git objects): call it in a worker thread from the loop.
    """
    from fasttrack_gitops.engine import gitrepo

    pipeline = job.pipeline_model()
    code_trees = {t.name: job.code_trees.get(t.name, job.tree) for t in pipeline.tasks}
    paths: dict[str, dict[str, str]] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for task in pipeline.tasks:
        if not (task.cache and task.cache_paths) or source is None:
            continue
        found: dict[str, str] = {}
        for pattern in task.cache_paths:
            matched = gitrepo.file_ids(source, [pattern])
            if not matched:
                warnings[task.name] = (
                    *warnings.get(task.name, ()),
                    f"cache path '{pattern}' matches no file at this commit, so it adds nothing "
                    "to the cache key; fix the path or remove it",
                )
            found.update(matched)
        paths[task.name] = found
    return JobKeys(pipeline, code_trees, paths, warnings)
