"""The daemon's configured repositories: where each one's commits are read, and fetching a remote one's mirror.

A local repository is read in place; a remote one through its mirror in the
state folder (sources.py fetches it), one fetch at a time per repository.
The daemon (service.py) reads events' commits through here, its pool
(pool.py) finds a job's repository again, the followers (follow.py) watch
and poll the sources.
"""

from __future__ import annotations

import asyncio
import logging

from fasttrack_gitops.daemon.config import DaemonConfig, RepositoryConfig
from fasttrack_gitops.daemon.metrics import Metrics
from fasttrack_gitops.daemon.sources import FetchError, fetch, mirror_path
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.plan import RepoSource

log = logging.getLogger("fasttrack_gitops.daemon")


class Repositories:
    """The repositories of the configuration, each with its source; the daemon owns one."""

    def __init__(self, config: DaemonConfig, metrics: Metrics):
        self.config = config
        self.metrics = metrics
        self.sources = {r.name.lower(): self._source(r) for r in config.repositories}  # by lowercased name
        self._fetch_locks: dict[str, asyncio.Lock] = {}

    def _source(self, repo: RepositoryConfig) -> RepoSource:
        local = repo.local_path
        top = local if local is not None else mirror_path(self.config.state_dir, repo.name)
        return RepoSource(repo.name, top, repo.path, repo.pipelines)

    def find(self, name: str) -> tuple[RepositoryConfig, RepoSource] | None:
        """A configured repository by name (any case): its configuration and source; None when not configured."""
        repo = self.config.repository(name)
        return None if repo is None else (repo, self.sources[repo.name.lower()])

    async def refresh(self, repo: RepositoryConfig) -> dict[str, str] | None:
        """Fetch a remote repository into its mirror (one fetch at a time per repository); None for local ones."""
        if repo.local_path is not None:
            return None
        lock = self._fetch_locks.setdefault(repo.name.lower(), asyncio.Lock())
        async with lock:
            try:
                return await asyncio.to_thread(fetch, repo.url, self.sources[repo.name.lower()].top)
            except FetchError:
                self.metrics.fetch_errors[repo.name] += 1
                raise

    async def has(self, repo: RepositoryConfig, source: RepoSource, commit: str) -> bool:
        """Whether the commit can be read, fetching a remote repository once when it is missing."""
        if await asyncio.to_thread(gitrepo.has_commit, source.top, commit):
            return True
        if repo.local_path is None:
            try:
                await self.refresh(repo)
            except FetchError as e:
                log.warning("%s: %s", repo.name, e)
                return False
            return await asyncio.to_thread(gitrepo.has_commit, source.top, commit)
        return False

    async def pr_head(self, repo: RepositoryConfig, source: RepoSource, number: int) -> str | None:
        """The pull request's head commit, from refs/pull/N/head (fetched for a remote repository)."""
        if repo.local_path is None:
            try:
                await self.refresh(repo)
            except FetchError:
                return None
        heads = await asyncio.to_thread(gitrepo.heads, source.top, (f"refs/pull/{number}/head",))
        return heads.get(f"refs/pull/{number}/head")
