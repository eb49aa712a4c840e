"""gc: remove the jobs retention lets go (core/retention.py decides), their rows and files, and what only they used.

For each collected job: its rows (engine/state/retention.py, one
transaction), then, after the commit, its logs (`logs/<job>`), its pipeline
data folder (`data/<job>`), its runner lock file and the local task cache's
entries that point at its outputs. Code trees under `trees/` that no kept
job names go too (but one made in the last TREE_GRACE seconds: a job being
planned right now may not be stored yet). The Backend.AI pipeline data
folders' `jobs/<id>` are gc_vfolders.py's.

Disk use is counted per inode, once: a file hard-linked into several jobs'
folders (the task cache links reused outputs) frees its blocks only when
every one of its links goes, and only then counts as freed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from fasttrack_gitops.core.retention import Decision, JobFacts, RetentionPolicy, decide, unneeded_trees
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.state import runner_lock
from fasttrack_gitops.engine.state.errors import StateFolderError
from fasttrack_gitops.engine.state.retention import delete_jobs, job_facts, row_counts
from fasttrack_gitops.engine.state.state_folder import DB_NAME, StateFolder
from fasttrack_gitops.engine.state.store import Store

log = logging.getLogger(__name__)

REMOVERS = 8  # threads removing files
BATCH = 500  # jobs whose rows go in one transaction (each job's rows always in one)
TREE_GRACE = 600.0  # seconds: a tree this young may belong to a job being planned, not stored yet
_TREE_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # materialise's temporary names never match


@dataclass(frozen=True)
class Item:
    """One thing gc removes (or would): a job with its files, a code tree, a cache entry, a Backend.AI folder."""

    kind: str  # "job", "tree", "cache entry", "backend.ai"
    name: str  # a job id, a tree id, a path
    detail: str = ""  # a job's pipeline and age
    bytes: int | None = None  # on disk, each inode once; None: not known (Backend.AI)


@dataclass
class Collection:
    """What one gc did, or would do (dry_run)."""

    dry_run: bool
    items: list[Item] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # past a limit but kept: job id -> why
    collected: list[JobFacts] = field(default_factory=list)  # the jobs, for gc_vfolders.py
    rows: dict[str, int] = field(default_factory=dict)  # rows deleted per table
    freed: int = 0  # bytes whose every link went (dry run: would go)
    problems: list[str] = field(default_factory=list)  # files that could not be removed
    seconds: float = 0.0

    @property
    def jobs(self) -> list[str]:
        return [i.name for i in self.items if i.kind == "job"]


def existing_store(state_dir: Path) -> Store:
    """The store of a state folder that already holds one; gc never makes a state folder to collect from."""
    if not (state_dir / DB_NAME).is_file():
        raise StateFolderError(
            f"{state_dir} holds no fasttrack-gitops state ({DB_NAME} is missing): there is nothing to collect; "
            "pass the --state-dir that `run` or `serve` use"
        )
    return Store(state_dir)


def collect(store: Store, policy: RetentionPolicy, *, dry_run: bool = False, now: float | None = None) -> Collection:
    """Remove (or, dry_run, list) what the policy lets go from the store's state folder."""
    started = time.monotonic()
    now = time.time() if now is None else now
    done = Collection(dry_run)
    if not policy.limited:
        return done
    folder = StateFolder(store.state_dir)
    facts = [_with_runner(folder, f) for f in job_facts(store)]
    decision = decide(facts, policy, now)
    by_id = {f.id: f for f in facts}
    done.kept = decision.kept
    done.collected = [by_id[j] for j in decision.collect]
    # (kind, name, detail, paths): what goes, measured as it is removed (or, dry_run, only measured)
    targets = [
        ("job", job.id, f"{job.pipeline}, {_age(now - job.created_at)} old", _job_paths(folder, job.id))
        for job in done.collected
    ]
    trees = _old_trees(folder.path, decision, now)
    entries = _cache_entries(folder.path, set(decision.collect))
    if not dry_run:
        for i in range(0, len(decision.collect), BATCH):  # short transactions: the daemon's loop writes meanwhile
            for table, n in delete_jobs(store, decision.collect[i : i + BATCH]).items():
                done.rows[table] = done.rows.get(table, 0) + n
        still_named = {t for f in job_facts(store) for t in f.trees}  # jobs stored since the decision
        trees = [t for t in trees if t.name not in still_named]
    targets += [("tree", t.name, "", [t]) for t in trees]
    targets += [("cache entry", str(e.relative_to(folder.path)), "", [e]) for e in entries]
    found = _measure_all([paths for *_, paths in targets], remove=not dry_run, problems=done.problems)
    usage = _Usage()
    for (kind, name, detail, _), stats in zip(targets, found):
        done.items.append(Item(kind, name, detail, usage.add(stats)))
    done.freed = usage.freed()
    done.seconds = time.monotonic() - started
    return done


def counts(store: Store) -> dict[str, int]:
    """Rows per job table, for a report of before and after."""
    return row_counts(store)


def disk_use(path: Path) -> int:
    """Bytes on disk under `path`, each inode once."""
    return _Usage().add(_walk(path))


# -- helpers


def _with_runner(folder: StateFolder, job: JobFacts) -> JobFacts:
    """A job whose rows say it ended but whose runner still holds its lock has not ended (it is finishing)."""
    if job.ended and runner_lock.is_held(folder, job.id):
        return replace(job, ended=False)
    return job


def _job_paths(folder: StateFolder, job_id: str) -> list[Path]:
    return [
        folder.path / "logs" / job_id,
        datafolder.job_folder(folder.path, job_id),
        folder.lock_path(job_id),
    ]


def _old_trees(state_dir: Path, decision: Decision, now: float) -> list[Path]:
    trees = state_dir / "trees"
    try:
        present = {p.name: p for p in trees.iterdir() if _TREE_ID.fullmatch(p.name)}
    except FileNotFoundError:
        return []
    found = []
    for name in unneeded_trees(present, decision):
        try:
            if now - present[name].lstat().st_mtime > TREE_GRACE:
                found.append(present[name])
        except FileNotFoundError:
            pass
    return found


def _cache_entries(state_dir: Path, jobs: set[str]) -> list[Path]:
    """The local task cache's index files (entries/, latest/) that point at the outputs of these jobs."""
    found = []
    for index in (state_dir / "cache").glob("*/*/*.json"):
        if index.parent.name not in ("entries", "latest"):
            continue
        try:
            job = json.loads(index.read_bytes()).get("job")
        except (OSError, ValueError, AttributeError):  # damaged: the cache replaces it itself
            continue
        if job in jobs:
            found.append(index)
    return sorted(found)


def _measure_all(targets: list[list[Path]], *, remove: bool, problems: list[str]) -> list[list[os.stat_result]]:
    """Each target's files' stats, in order; with remove, each target removed once measured. In REMOVERS threads:
    a folder's unlink and rmdir wait for the file system's journal, not the CPU (bench/gc_bench.py: 18 s for
    7,200 jobs in one thread on ext4, 10 s in eight)."""

    def one(paths: list[Path]) -> tuple[list[os.stat_result], list[str]]:
        stats = [st for path in paths for st in _walk(path)]
        failed: list[str] = []
        if remove:
            _remove(paths, failed)
        return stats, failed

    if len(targets) < 2 * REMOVERS:
        results = [one(paths) for paths in targets]
    else:
        with ThreadPoolExecutor(REMOVERS, thread_name_prefix="gc") as pool:
            results = list(pool.map(one, targets, chunksize=16))
    for _, failed in results:
        problems += failed
    return [stats for stats, _ in results]


def _remove(paths: Iterable[Path], problems: list[str]) -> None:
    """Remove files and folders; a path already gone (deleted by hand) is fine, one that stays is a problem."""

    def retry_writable(function, path, excinfo):  # a task may leave a folder without write permission
        if isinstance(excinfo[1], FileNotFoundError):
            return
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            function(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            problems.append(f"{path}: {e.strerror or e}")

    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        try:
            if stat.S_ISDIR(mode):
                shutil.rmtree(path, onerror=retry_writable)  # onexc: Python 3.12
            else:
                path.unlink(missing_ok=True)
        except OSError as e:
            problems.append(f"{path}: {e.strerror or e}")
            log.warning("gc could not remove %s: %s", path, e.strerror or e)


class _Usage:
    """Disk use of the paths added, each inode once, and what removing them all would free."""

    def __init__(self) -> None:
        self._inodes: dict[tuple[int, int], list[int]] = {}  # (dev, ino) -> [bytes, links, links seen]

    def add(self, stats: Iterable[os.stat_result]) -> int:
        """Add files by their stats; their bytes not counted before."""
        total = 0
        for st in stats:
            key = (st.st_dev, st.st_ino)
            seen = self._inodes.get(key)
            if seen is None:
                size = st.st_blocks * 512
                # a folder's links are its entries' "..": removing it with them frees it whatever they say
                links = 1 if stat.S_ISDIR(st.st_mode) else st.st_nlink
                self._inodes[key] = [size, links, 1]
                total += size
            else:
                seen[2] += 1
        return total

    def freed(self) -> int:
        return sum(size for size, links, seen in self._inodes.values() if seen >= links or links == 0)


def _walk(path: Path) -> Iterable[os.stat_result]:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    yield st
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield st
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue


def _age(seconds: float) -> str:
    days = seconds / 86400
    if days >= 1:
        return f"{days:.0f}d"
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours >= 1 else f"{seconds / 60:.0f}m"
