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
import os
import re
import time
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
from fasttrack_gitops.engine.sweep import Usage, disk_use, sweep_all

# Threads sweeping files. Removing a file waits on the disk, not the CPU: on a file system mounted with `discard`
# each freed extent is a synchronous TRIM (ext4_free_blocks -> blkdev_issue_discard), ~0.4-1.7 ms here; eight
# in flight overlap them (bench/gc_bench.py; a micro-benchmark: 2,000 unlinks 0.8 s in one thread, 0.23 s in 4-16).
REMOVERS = 8
ENTRY_CHUNK = 256  # cache index files one thread reads at a time
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
    targets: list[tuple[str, str, str, list[str | Path]]] = [
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
    targets += [("cache entry", entry, "", [os.path.join(folder.path, entry)]) for entry in entries]
    found, done.problems = sweep_all([paths for *_, paths in targets], remove=not dry_run, workers=REMOVERS)
    usage = Usage()
    for (kind, name, detail, _), inodes in zip(targets, found):
        done.items.append(Item(kind, name, detail, usage.add(inodes)))
    done.freed = usage.freed()
    done.seconds = time.monotonic() - started
    return done


__all__ = ["Collection", "Item", "collect", "counts", "disk_use", "existing_store"]


def counts(store: Store) -> dict[str, int]:
    """Rows per job table, for a report of before and after."""
    return row_counts(store)


# -- helpers


def _with_runner(folder: StateFolder, job: JobFacts) -> JobFacts:
    """A job whose rows say it ended but whose runner still holds its lock has not ended (it is finishing)."""
    if job.ended and runner_lock.is_held(folder, job.id):
        return replace(job, ended=False)
    return job


def _job_paths(folder: StateFolder, job_id: str) -> list[str | Path]:
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


def _cache_entries(state_dir: Path, jobs: set[str]) -> list[str]:
    """The local task cache's index files (entries/, latest/) that point at the outputs of these jobs, as paths
    relative to the state folder. Every index file is read (its name is a cache key, not a job): by descriptor,
    in REMOVERS threads, ENTRY_CHUNK files at a time, as there are many and each read may wait on the disk."""
    try:
        caches = sorted(e.name for e in os.scandir(state_dir / "cache") if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []
    parts = []
    for cache in caches:
        for index in ("entries", "latest"):
            folder = f"cache/{cache}/{index}"
            try:
                names = sorted(n for n in os.listdir(state_dir / folder) if n.endswith(".json"))
            except OSError:
                continue
            parts += [(folder, names[i : i + ENTRY_CHUNK]) for i in range(0, len(names), ENTRY_CHUNK)]

    def scan(part: tuple[str, list[str]]) -> list[str]:
        folder, names = part
        try:
            fd = os.open(state_dir / folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return []
        try:
            return [f"{folder}/{name}" for name in names if _points_at(fd, name, jobs)]
        finally:
            os.close(fd)

    if len(parts) < 2:
        return [found for part in parts for found in scan(part)]
    with ThreadPoolExecutor(REMOVERS, thread_name_prefix="gc") as pool:
        return [found for part in pool.map(scan, parts) for found in part]


def _points_at(folder: int, name: str, jobs: set[str]) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        return json.loads(data).get("job") in jobs
    except (OSError, ValueError, AttributeError, TypeError):  # damaged, or a folder: the cache replaces it itself
        return False


def _age(seconds: float) -> str:
    days = seconds / 86400
    if days >= 1:
        return f"{days:.0f}d"
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours >= 1 else f"{seconds / 60:.0f}m"
