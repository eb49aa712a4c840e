"""Model storage folders: the vfolder (usage_mode `model`) a model service mounts, made ready before it starts.

`ensure_model_folder` finds the folder or creates it (`usage_mode: model`;
both manager lines refuse a service over any other kind of folder with 400
"Selected vFolder is not a model folder"). A folder of another kind, or one
that cannot be made (no permission, quota, a name taken), is a
`ModelFolderError` naming the fix. `stage` uploads a local tree (a
deployment task's code folder) to the folder's root, where the manager looks
for the model definition; `put_definition` writes the definition under the
name 23.09 reads (`model-definition.yaml`) when the task names another file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from fasttrack_gitops.engine.backendai import errors, vfolder_tree, vfolders
from fasttrack_gitops.engine.backendai.client import Client

log = logging.getLogger("fasttrack_gitops.engine.backendai")


class ModelFolderError(errors.BackendAIError):
    """The model folder is not usable for a service and cannot be made so."""


async def ensure_model_folder(
    client: Client, name: str, *, host: str | None = None, group: str | None = None, create: bool = True
) -> vfolders.VFolder:
    """The model folder `name`, created with usage_mode model when it is missing and `create` allows it."""
    try:
        folder = await vfolders.get_vfolder(client, name)
    except vfolders.NoSuchVFolderError as missing:
        if not create:
            raise ModelFolderError(
                f"the model folder {name!r} does not exist and creating it is not allowed here: create it in the "
                "web UI's Model Store (usage mode: model), or name an existing one in service.model"
            ) from missing
        try:
            folder = await vfolders.create_vfolder(client, name, host=host, group=group, usage_mode="model")
        except errors.BackendAIError as exc:
            raise ModelFolderError(
                f"the model folder {name!r} does not exist and could not be created: {exc}; create it in the web "
                "UI's Model Store (usage mode: model) or ask an admin for the right to create folders, or name an "
                "existing model folder in service.model",
                status=exc.status,
                problem=exc.problem,
                method=exc.method,
                path=exc.path,
            ) from exc
        log.info("model folder %s created (usage mode model)", name)
        return folder
    if folder.usage_mode and folder.usage_mode != "model":
        raise ModelFolderError(
            f"the folder {name!r} exists but is a {folder.usage_mode} folder, and a model service mounts only a "
            "model folder (usage mode: model): name another folder in service.model"
        )
    return folder


async def stage(client: Client, name: str, local: Path) -> int:
    """Upload every file under `local` to the model folder's root (replacing what is there); the files sent."""
    sent = await vfolders.upload_tree(client, name, ".", local)
    log.info("staged %d files (%d bytes) into model folder %s", len(sent.files), sent.total_bytes, name)
    return len(sent.files)


async def read_file(client: Client, name: str, path: str) -> bytes | None:
    """A file of the model folder, or None when it (or the folder) is not there."""
    try:
        if not await vfolders.exists(client, name, path):
            return None
    except vfolders.NoSuchVFolderError:
        return None
    return await vfolders.download(client, name, path)


async def put_definition(client: Client, name: str, content: bytes, target: str = "model-definition.yaml") -> None:
    await vfolders.upload(client, name, target, content)


async def copy_in(client: Client, source: str, top: str, name: str) -> int:
    """Copy everything under `top` of the vfolder `source` (a dependency's outputs in the pipeline data folder)
    to the model folder's root, through this machine (one file at a time); the files copied. A `top` that is not
    there (a skipped dependency wrote nothing) copies nothing."""
    try:
        entries = await vfolder_tree.walk(client, source, top)
    except vfolders.NoSuchPathError:
        return 0
    files = [rel for rel, entry in entries.items() if not entry.is_dir]
    handle, scratch = tempfile.mkstemp(prefix="ftg-stage-")
    os.close(handle)
    try:
        for rel in files:
            await vfolders.download_to(client, source, f"{top}/{rel}", scratch)
            with await asyncio.to_thread(open, scratch, "rb") as data:
                await vfolders.upload(client, name, rel, data)
    finally:
        os.unlink(scratch)
    return len(files)
