"""A vfolder's subtree, listed: the manager lists one folder per request, so a tree is walked level by level.

Each level's folders are listed together (at most `at_once` requests in
flight), which keeps a deep tree to one round trip per level. Used where a
whole outputs folder must be seen: the task cache checking an entry's
outputs (executors/backendai/cache.py) and `jobs outputs` listing them
(executors/backendai/outputs.py).
"""

from __future__ import annotations

import asyncio

from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.backendai.client import Client


async def walk(client: Client, folder: str, top: str, *, at_once: int = 8) -> dict[str, vfolders.FileEntry]:
    """Everything under `top` in the vfolder, folders included: path relative to `top` -> its listing, in the
    order found. NoSuchPathError when `top` is not there; a folder removed meanwhile counts as empty."""
    gate = asyncio.Semaphore(at_once)

    async def listed(prefix: str) -> list[vfolders.FileEntry]:
        async with gate:
            try:
                return await vfolders.list_files(client, folder, f"{top}/{prefix}".rstrip("/"))
            except vfolders.NoSuchPathError:
                if not prefix:
                    raise
                return []

    found: dict[str, vfolders.FileEntry] = {}
    pending = [""]
    while pending:
        listings = await asyncio.gather(*(listed(prefix) for prefix in pending))
        deeper = []
        for prefix, items in zip(pending, listings, strict=True):
            for item in items:
                found[prefix + item.name] = item
                if item.is_dir:
                    deeper.append(f"{prefix}{item.name}/")
        pending = deeper
    return found
