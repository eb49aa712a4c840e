"""The pipeline data folder in Backend.AI and the task's code in it: each made or shipped once per executor.

The folder is a vfolder named `datafolder.folder_name(repository, pipeline)`
(`ftg-<repository>-<pipeline>-<hash>`), created when first needed [POST
/folders; an existing folder is reused]. A task's code, `spec.workdir`, goes
to `code/<tree id>/` in that folder unless its marker (layout.CODE_MARKER) is
there already [one listing; when missing, the upload, then the marker last,
listing the executable files, whose modes the upload loses]. Attempts that
need the same folder or tree at once share one creation or upload; a failed
one is tried again by the next attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.executors.backendai import layout
from fasttrack_gitops.engine.executors.base import AttemptSpec

log = logging.getLogger("fasttrack_gitops.engine.backendai")


class FolderUploads:
    """The pipeline data folders this executor has made and the code trees it has shipped to them."""

    def __init__(self, client: Client, *, host: str | None = None, group: str | None = None):
        self.client = client
        self.host, self.group = host, group  # where new folders are made (None: the manager's defaults)
        self._folders: dict[str, asyncio.Future] = {}  # folder name -> its creation
        self._trees: dict[tuple[str, str], asyncio.Future] = {}  # (folder, tree) -> its upload

    async def ready(self, spec: AttemptSpec) -> tuple[str, str]:
        """Make sure the attempt's pipeline folder exists and holds its code; the folder's name and the tree id."""
        folder = datafolder.folder_name(spec.repository, spec.pipeline)
        await _once(
            self._folders,
            folder,
            lambda: vfolders.create_vfolder(self.client, folder, host=self.host, group=self.group),
        )
        tree = spec.code_tree or await asyncio.to_thread(tree_digest, spec.workdir)
        await _once(self._trees, (folder, tree), lambda: self._ship_code(folder, tree, spec.workdir))
        return folder, tree

    async def _ship_code(self, folder: str, tree: str, workdir: Path) -> None:
        """Upload the tree to code/<tree>/ unless its marker says it is there; the marker goes last."""
        where = datafolder.code_in_folder(tree)
        marker = f"{where}/{layout.CODE_MARKER}"
        if await vfolders.exists(self.client, folder, marker):
            log.debug("code tree %s is in vfolder %s already", tree, folder)
            return
        executables = await asyncio.to_thread(executable_files, workdir)
        sent = await vfolders.upload_tree(self.client, folder, where, workdir)
        await vfolders.upload(self.client, folder, marker, layout.code_marker(executables))
        log.info(
            "code tree %s: %d files (%d bytes) uploaded to vfolder %s", tree, len(sent.files), sent.total_bytes, folder
        )


def tree_digest(root: Path) -> str:
    """A content id for a working directory without a git tree id: paths, modes and bytes."""
    digest = hashlib.sha256()
    for here, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(here, name)
            if os.path.isfile(path) and not os.path.islink(path):
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                digest.update(b"x" if os.access(path, os.X_OK) else b"-")
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
    return "content-" + digest.hexdigest()[:32]


def executable_files(root: Path) -> list[str]:
    """The regular files under root with an executable bit (the upload loses modes), relative POSIX paths."""
    found = []
    for here, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(here, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and mode & 0o111:
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


async def _once(cache: dict, key, make: Callable[[], Awaitable[Any]]):
    """One shared run of make() per key; a failed or cancelled one is tried again by the next caller."""
    task = cache.get(key)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = cache[key] = asyncio.ensure_future(make())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" noise
    return await asyncio.shield(task)
