"""A task's outputs folder on this machine: its manifest (core/cache.py), and whether it still holds what one says.

`scan` hashes every regular file under the folder and refuses what cannot be
cached: a symlink (its target is outside what the manifest can vouch for, and
`/etc/passwd` must never become a dependant's input), a FIFO, socket or device
(reading one blocks or has side effects), and a name the manifest's line format
cannot hold. The walk uses lstat only, so it never follows a link.

`verify` checks an earlier manifest against the folder cheaply: a file whose
stat signature (size, mtime, inode) is the one recorded is trusted, and only
the others are hashed again, so reusing gigabytes of outputs does not read
them on every lookup. Blocking: call both from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fasttrack_gitops.core.cache import ManifestError, OutputFile

CHUNK = 1 << 20  # bytes hashed per read: large enough to stream, small enough to bound memory


def scan(folder: Path, *, task: str) -> tuple[OutputFile, ...]:
    """The manifest of a task's outputs folder (sorted by path); () when the folder does not exist.

    ManifestError naming the task and the file for anything that cannot be cached.
    """
    whose = f"outputs of task '{task}'"
    try:
        top = os.lstat(folder)
    except FileNotFoundError:
        return ()
    except OSError as e:
        raise ManifestError(f"the {whose} cannot be read ({e.strerror}): {folder}") from None
    if stat.S_ISLNK(top.st_mode):
        raise ManifestError(
            f"the {whose} are a symlink to {_target(folder)}; outputs with symlinks are not cached: "
            "write the files themselves"
        )
    if not stat.S_ISDIR(top.st_mode):
        raise ManifestError(f"the {whose} are not a folder: {folder}")
    files: list[OutputFile] = []
    for relpath, path, mode in _walk(folder, whose):
        problem = _unfit_name(relpath)
        if problem:
            raise ManifestError(f"{whose} hold {problem}, {relpath!r}; rename it")
        if stat.S_ISLNK(mode):
            raise ManifestError(
                f"{whose} hold a symlink, {relpath} -> {_target(path)}; outputs with symlinks are not cached: "
                "write the file itself"
            )
        if not stat.S_ISREG(mode):
            raise ManifestError(f"{whose} hold {_kind(mode)}, {relpath}; only regular files can be cached: remove it")
        size, digest = _hash(path, relpath, whose)
        files.append(OutputFile(relpath, size, digest))
    return tuple(sorted(files, key=lambda f: f.path.encode()))


def signature(path: Path) -> list[int]:
    """[size, mtime_ns, inode] of a file, not following a symlink: what says it was not rewritten since."""
    st = os.lstat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def verify(folder: Path, files: Sequence[OutputFile], signatures: Mapping[str, Any]) -> str | None:
    """None when `folder` holds exactly these files with this content; else the first difference, in plain words.

    `signatures`: path -> signature() recorded when the manifest was made; a file whose signature is unchanged
    is trusted without reading it, the others are hashed again.
    """
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return "the folder is missing"
    if not stat.S_ISDIR(mode):
        return f"the folder is {_kind(mode)} now"
    try:
        present = {relpath: (path, mode) for relpath, path, mode in _walk(folder, "the folder")}
    except ManifestError as e:
        return str(e)
    for f in files:
        if f.path not in present:
            return f"{f.path} is missing"
        path, mode = present.pop(f.path)
        if not stat.S_ISREG(mode):
            return f"{f.path} is {_kind(mode)} now"
        try:
            if signature(path) == signatures.get(f.path):
                continue
            size, digest = _hash(path, f.path, "the folder")
        except (OSError, ManifestError):
            return f"{f.path} cannot be read"
        if (size, digest) != (f.size, f.sha256):
            return f"{f.path} changed"
    if present:
        return f"{min(present)} is not in the manifest"
    return None


def _walk(folder: Path, whose: str) -> Iterator[tuple[str, Path, int]]:
    """(relative '/'-separated path, path, lstat mode) of everything under `folder` but folders, in name order."""
    pending = [(folder, "")]
    while pending:
        current, prefix = pending.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
            for entry in entries:
                relpath = prefix + entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append((Path(entry.path), relpath + "/"))
                else:
                    yield relpath, Path(entry.path), mode
        except OSError as e:
            raise ManifestError(f"{whose}: {prefix or '.'} cannot be listed ({e.strerror})") from None


def _hash(path: Path, relpath: str, whose: str) -> tuple[int, str]:
    """(bytes read, sha256) of a regular file; opened without following a link or blocking on a FIFO, in case
    it was swapped since it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise ManifestError(f"{whose}: {relpath} cannot be read ({e.strerror})") from None
    digest, size = hashlib.sha256(), 0
    with open(fd, "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ManifestError(f"{whose}: {relpath} stopped being a regular file while it was read")
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _unfit_name(relpath: str) -> str | None:
    """Why the manifest's `<sha256> <size> <path>` lines cannot hold this path, if they cannot."""
    if relpath.splitlines() != [relpath]:  # what splits the manifest's lines apart
        return "a name containing a newline" if "\n" in relpath else "a name containing a line break"
    try:
        relpath.encode()
    except UnicodeEncodeError:
        return "a name that is not UTF-8"
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def _target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "(unreadable)"
