"""Retention: which stored jobs gc collects and which it keeps, and why. Pure.

A job goes when it is older than `max_age` or beyond the newest
`keep_per_pipeline` jobs of its (repository, pipeline), whichever says so
first; but never while anything still needs it: a job that has not ended
(queued, running, interrupted: the daemon may resume it), one whose newest
report a reporter still owes, and every job whose outputs a kept job reuses
(`reused_from`: the cache entry it was served from points at them) or, for
a re-run that has not ended, the job it copies outputs from. One level is
enough: `reused_from` always names the job that made the outputs (a cache
entry points at its maker, never at a job that reused them), so a job kept
for its outputs does not keep what it reused itself; kept transitively, a
pipeline whose every job reuses the one before would keep all of them. The
code trees under the state folder that no kept job names go with the last
job that named them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DEFAULT_INTERVAL = 86400.0  # the daemon collects once a day unless told otherwise


@dataclass(frozen=True)
class RetentionPolicy:
    """The `retention:` section of the daemon's configuration (and gc's options). No limit: nothing goes."""

    max_age: float | None = None  # seconds since a job was created
    keep_per_pipeline: int | None = None  # newest jobs kept per (repository, pipeline)
    interval: float = DEFAULT_INTERVAL  # seconds between the daemon's collections

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age < 0:
            raise ValueError(f"max_age must be 0 or more seconds, not {self.max_age}")
        if self.keep_per_pipeline is not None and self.keep_per_pipeline < 0:
            raise ValueError(f"keep_per_pipeline must be 0 or more, not {self.keep_per_pipeline}")
        if self.interval <= 0:
            raise ValueError(f"interval must be more than 0 seconds, not {self.interval}")

    @property
    def limited(self) -> bool:
        """Whether any limit is set (without one, gc keeps everything)."""
        return self.max_age is not None or self.keep_per_pipeline is not None


@dataclass(frozen=True)
class JobFacts:
    """What the decision needs to know of one stored job."""

    id: str
    repository: str
    pipeline: str
    created_at: float
    ended: bool  # every task instance ended and no runner drives it
    owed: bool = False  # a reporter has not sent its newest report yet
    reused_from: frozenset[str] = frozenset()  # jobs whose outputs its task instances reuse
    rerun_of: str | None = None  # the job a re-run copies outputs from (needed until the re-run ends)
    trees: frozenset[str] = frozenset()  # the git tree ids of its tasks' code


@dataclass(frozen=True)
class Decision:
    collect: tuple[str, ...]  # job ids that go, oldest first
    kept: dict[str, str] = field(default_factory=dict)  # past a limit but kept: job id -> why
    trees: frozenset[str] = frozenset()  # code trees a kept job names


def decide(jobs: Sequence[JobFacts], policy: RetentionPolicy, now: float) -> Decision:
    """The jobs past the policy's limits that nothing needs any more, and why each other one past them stays."""
    by_id = {j.id: j for j in jobs}
    expired = {j.id for j in _past_limits(jobs, policy, now)}
    kept: dict[str, str] = {}
    for job_id in expired:
        job = by_id[job_id]
        if not job.ended:
            kept[job_id] = "it has not ended"
        elif job.owed:
            kept[job_id] = "a report of it is still to be sent"
    staying = [j for j in jobs if j.id not in expired or j.id in kept]
    needed = {j.id for j in staying}
    for job in staying:  # one level: a source's own sources are not needed (see the module's docstring)
        for source, why in _needs(job):
            if source in expired and source not in needed:
                kept[source] = why
                needed.add(source)
    collect = sorted((by_id[i] for i in expired - needed), key=lambda j: (j.created_at, j.id))
    trees = frozenset(t for j in jobs if j.id in needed for t in j.trees)
    return Decision(tuple(j.id for j in collect), kept, trees)


def unneeded_trees(present: Iterable[str], decision: Decision) -> list[str]:
    """The materialised code trees no kept job names, sorted."""
    return sorted(set(present) - decision.trees)


def _past_limits(jobs: Sequence[JobFacts], policy: RetentionPolicy, now: float) -> list[JobFacts]:
    groups: dict[tuple[str, str], list[JobFacts]] = {}
    for job in jobs:
        groups.setdefault((job.repository, job.pipeline), []).append(job)
    past: list[JobFacts] = []
    for group in groups.values():
        group.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        for rank, job in enumerate(group):
            too_many = policy.keep_per_pipeline is not None and rank >= policy.keep_per_pipeline
            too_old = policy.max_age is not None and now - job.created_at > policy.max_age
            if too_many or too_old:
                past.append(job)
    return past


def _needs(job: JobFacts) -> list[tuple[str, str]]:
    found = [(source, f"job {job.id} reuses its outputs") for source in sorted(job.reused_from)]
    if job.rerun_of and not job.ended:
        found.append((job.rerun_of, f"job {job.id} re-runs it and has not ended"))
    return found
