"""Sweep file trees: measure what they hold on disk and (unless only measuring) remove them, in one pass.

gc's file-system half (engine/gc.py). One walk per tree both measures and
removes: each folder is opened once and read once, its entries are stat'ed
and unlinked relative to the folder's descriptor (as shutil.rmtree's fast
path does, without its second walk or its per-entry Path objects), and a
folder goes as soon as its last entry has. A dry run walks the same way and
removes nothing, so it measures exactly what the removal would.

Disk use is counted per inode, once (`Usage`): a file hard-linked into
several trees (the task cache links reused outputs) frees its blocks only
when every one of its links goes, and only then counts as freed. An inode
that could not be removed is not counted as freed.

A task may leave a folder without write or search permission: it is made
writable (0700) and the step retried. What still cannot go (an immutable
file, a foreign mount) is a problem named by its path; the folders above it
stay, and are not named again.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# One inode as measured: (device, inode, bytes on disk, links that must all go before it frees anything).
Found = tuple[int, int, int, int]

_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
CHUNK = 64  # trees handed to a worker at a time: one future per tree costs more than removing a small one


def sweep_all(
    trees: Sequence[Sequence[str | Path]], *, remove: bool, workers: int = 1
) -> tuple[list[list[Found]], list[str]]:
    """Each item's inodes (an item: the paths that go together), in order, and the problems; with remove, each
    item removed as it is measured. With workers > 1, items are swept in that many threads, CHUNK at a time."""

    def chunk(start: int) -> list[tuple[list[Found], list[str]]]:
        return [_sweep_item(paths, remove) for paths in trees[start : start + CHUNK]]

    starts = range(0, len(trees), CHUNK)
    if workers <= 1 or len(starts) < 2:
        results = [r for start in starts for r in chunk(start)]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="gc") as pool:
            results = [r for part in pool.map(chunk, starts) for r in part]
    problems = [p for _, failed in results for p in failed]
    return [found for found, _ in results], problems


class Usage:
    """Disk use of the inodes added, each once, and what removing them all would free."""

    def __init__(self) -> None:
        self._inodes: dict[tuple[int, int], list[int]] = {}  # (dev, ino) -> [bytes, links, links seen]

    def add(self, found: Iterable[Found]) -> int:
        """Add inodes; their bytes not counted before."""
        total = 0
        inodes = self._inodes
        for dev, ino, size, links in found:
            seen = inodes.get((dev, ino))
            if seen is None:
                inodes[(dev, ino)] = [size, links, 1]
                total += size
            else:
                seen[2] += 1
        return total

    def freed(self) -> int:
        return sum(size for size, links, seen in self._inodes.values() if seen >= links or links == 0)


def disk_use(path: Path) -> int:
    """Bytes on disk under `path`, each inode once."""
    found, _ = _sweep_item([path], remove=False)
    return Usage().add(found)


# -- one item


def _sweep_item(paths: Iterable[str | Path], remove: bool) -> tuple[list[Found], list[str]]:
    found: list[Found] = []
    problems: list[str] = []
    for path in paths:
        _sweep_path(os.fspath(path), found, problems, remove)
    return found, problems


def _sweep_path(path: str, found: list[Found], problems: list[str], remove: bool) -> None:
    for retry in (True, False):
        try:
            fd = os.open(path, _OPEN_FOLDER)
            break
        except FileNotFoundError:
            return  # never there, or deleted by hand: fine
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP):  # a file, or a symbolic link (never followed)
                _sweep_file(path, found, problems, remove)
                return
            if retry and isinstance(e, PermissionError) and _make_searchable(None, path):
                continue
            problems.append(f"{path}: {e.strerror or e}")
            return
    try:
        st = os.fstat(fd)
        gone = _sweep_folder(fd, path, found, problems, remove)
    finally:
        os.close(fd)
    if not remove or (gone and _step(os.rmdir, None, path, path, problems)):
        found.append(_inode(st))


def _sweep_folder(fd: int, where: str, found: list[Found], problems: list[str], remove: bool) -> bool:
    """Measure (and remove) what the open folder `fd` (at `where`) holds; whether all of it went."""
    with os.scandir(fd) as listing:
        entries = list(listing)  # read whole before removing: unlinking while reading may skip entries
    gone = True
    for entry in entries:
        name = entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            if not remove or _step(os.unlink, fd, name, where, problems):
                found.append(_inode(st))
            else:
                gone = False
            continue
        child = _open_child(fd, name, where, problems)
        if child is None:
            gone = False
            continue
        try:
            child_gone = _sweep_folder(child, os.path.join(where, name), found, problems, remove)
        finally:
            os.close(child)
        if not remove or (child_gone and _step(os.rmdir, fd, name, where, problems)):
            found.append(_inode(st))
        else:
            gone = False
    return gone


def _sweep_file(path: str, found: list[Found], problems: list[str], remove: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not remove or _step(os.unlink, None, path, path, problems):
        found.append(_inode(st))


def _open_child(fd: int, name: str, where: str, problems: list[str]) -> int | None:
    for retry in (True, False):
        try:
            return os.open(name, _OPEN_FOLDER, dir_fd=fd)
        except FileNotFoundError:
            return None
        except PermissionError as e:  # a folder a task left unreadable: make it readable once
            if retry and _make_searchable(fd, name):
                continue
            problems.append(f"{os.path.join(where, name)}: {e.strerror or e}")
            return None
        except OSError as e:
            problems.append(f"{os.path.join(where, name)}: {e.strerror or e}")
            return None
    return None


def _step(remove, fd: int | None, name: str, where: str, problems: list[str]) -> bool:
    """unlink or rmdir `name` in the folder `fd` (None: `name` is a path); whether it went. A folder without write
    permission is made writable once."""
    for retry in (True, False):
        try:
            remove(name, dir_fd=fd)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if retry and isinstance(e, PermissionError) and _make_writable(fd, name):
                continue
            problems.append(f"{name if fd is None else os.path.join(where, name)}: {e.strerror or e}")
            return False
    return False


def _make_writable(fd: int | None, name: str) -> bool:
    """Make the folder holding `name` writable; whether that changed anything worth a retry."""
    try:
        if fd is None:
            os.chmod(os.path.dirname(name) or ".", 0o700)
        else:
            os.fchmod(fd, 0o700)
        return True
    except OSError:
        return False


def _make_searchable(fd: int | None, name: str) -> bool:
    try:
        os.chmod(name, 0o700, dir_fd=fd)
        return True
    except OSError:
        return False


def _inode(st: os.stat_result) -> Found:
    # a folder's links are its entries' "..": removing it with them frees it whatever they say
    links = 1 if stat.S_ISDIR(st.st_mode) else st.st_nlink
    return (st.st_dev, st.st_ino, st.st_blocks * 512, links)
