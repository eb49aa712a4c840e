"""Opening a file that must lie inside a folder, checked when it is opened, not only before.

A check before the open (resolve the path, see that it stays inside) and the
open itself are two steps: a symlink swapped in between, at the file's own
name or at any folder on the way, would be followed out of the folder (a task
still running can do that to its outputs). A check after the open by path
races the same way. So the path is walked one name at a time from the folder,
each name opened relative to the one before and never followed if it is a
link: what is opened is inside, whatever changes meanwhile. Used by the
outputs reader (outputs.py) and the Backend.AI upload (backendai/vfolders.py).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePath
from typing import BinaryIO

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO swapped in does not hang us


class LeftTheFolder(Exception):
    """A name on the way is (now) a symlink, or the file is no regular file; the message says which."""


def open_inside(root: Path, relpath: str | PurePath) -> BinaryIO:
    """The file at `relpath` under `root` opened for reading, no symlink followed below `root`.

    `relpath` is relative to `root` and names no symlink (the caller resolved
    or listed it so); OSError when a name is missing, LeftTheFolder when one is
    a link now or the file is no regular file.
    """
    parts = PurePath(relpath).parts
    if not parts or any(part in ("..", "/") for part in parts):
        raise LeftTheFolder(f"{relpath} is not a path inside {root}")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                opened = os.open(part, _FILE if last else _DIRECTORY, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LeftTheFolder(f"{relpath} under {root} passes through a symlink (swapped in?)") from None
                raise
            os.close(fd)
            fd = opened
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LeftTheFolder(f"{relpath} under {root} is no regular file")
        return open(fd, "rb")  # noqa: SIM115 (the caller closes it)
    except BaseException:
        os.close(fd)
        raise
