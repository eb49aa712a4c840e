"""Virtual folders: create, list, files, mkdir, upload, download, rename and move (backendai-api.md §3).

The name-based `/folders` API (23.09 to HEAD). File bytes go through the
storage proxy (`tus.py`); the rest are signed manager requests. Paths in a
folder are relative POSIX paths: absolute paths and `..` are refused before any
request. Errors are the client's BackendAIError types, naming folder and path.
The API keeps no file modes: uploads land 0644 (23.09), executable bits are lost.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.tus import (
    DEFAULT_CHUNK_SIZE,
    Source,
    StorageProxy,
    UploadSessionGone,
)
from fasttrack_gitops.engine.confined import LeftTheFolder, open_inside

log = logging.getLogger("fasttrack_gitops.engine.backendai")
FOLDER = "/folders/{name}"


class InvalidPathError(errors.BackendAIError, ValueError):
    """A folder name or path we refuse to send (absolute, `..`, empty)."""


class NoSuchVFolderError(errors.NotFoundError):
    """The folder does not exist, or this access key may not use it that way."""


class NoSuchPathError(errors.NotFoundError):
    """The folder exists; the path in it does not (or a part of it is a file)."""


class PathExistsError(errors.BackendAIError):
    """The path is there already (a mkdir with exist_ok=False: what a lock taken by someone else looks like)."""


@dataclass(frozen=True)
class VFolder:
    id: str
    name: str
    host: str | None = None
    usage_mode: str | None = None
    permission: str | None = None
    ownership_type: str | None = None
    group: str | None = None
    status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, doc: Mapping[str, Any]) -> VFolder:
        kind = doc.get("ownership_type") or doc.get("type")
        group = doc.get("group") if doc.get("group") != "None" else None  # 23.09's info says "None"
        return cls(
            str(doc.get("id", "")),
            str(doc["name"]),
            doc.get("host"),
            doc.get("usage_mode"),
            doc.get("permission"),
            kind,
            group,
            doc.get("status"),
            dict(doc),
        )


@dataclass(frozen=True)
class FileEntry:
    name: str
    type: str  # FILE, DIRECTORY or SYMLINK
    size: int
    mode: str  # permission bits in octal as the manager sends them, e.g. "644"
    modified: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.type.upper() == "DIRECTORY"


@dataclass(frozen=True)
class TreeUpload:
    files: tuple[str, ...]  # relative to the local folder, uploaded under dest_path
    directories: tuple[str, ...]  # the empty ones, made with mkdir (the proxy makes the rest)
    total_bytes: int
    skipped: tuple[str, ...]  # symlinks and special files: never followed or sent


def vfolder_path(path: str | PurePosixPath, *, root_ok: bool = True) -> str:
    """The normalised relative path ('.' for the root); InvalidPathError for `..`, absolute or NUL."""
    text = str(path)
    if "\x00" in text:
        raise InvalidPathError(f"{text!r} is not a usable path inside a vfolder (it holds a NUL byte)")
    if text.startswith("/"):
        raise InvalidPathError(f"{text!r} is absolute: a path inside a vfolder is relative, like 'code/main.py'")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidPathError(f"{text!r} leaves the vfolder: '..' is not allowed in a vfolder path")
    if not parts and not root_ok:
        raise InvalidPathError(f"{text!r} names the vfolder's root, not a file in it")
    return "/".join(parts) or "."


async def create_vfolder(
    client: Client,
    name: str,
    *,
    host: str | None = None,
    group: str | None = None,
    usage_mode: str = "general",
    permission: str = "rw",
) -> VFolder:
    """Create the folder, or return the existing one of that name (creation is idempotent for us)."""
    body = {"name": _name(name), "usage_mode": usage_mode, "permission": permission}
    body.update({key: value for key, value in (("host", host), ("group", group)) if value is not None})
    try:  # a repeat after a lost answer ends in "already exists", which we accept: safe to retry
        with _about(client, name, "create"):
            return VFolder.from_api(await client.request("POST", "/folders", json=body, idempotent=True))
    except errors.BackendAIError as exc:
        if exc.slug != "vfolder-already-exists":
            raise
    log.debug("vfolder %s exists already; using it", name)
    return await get_vfolder(client, name)


async def get_vfolder(client: Client, name: str) -> VFolder:
    with _about(client, name, "read"):
        return VFolder.from_api(await client.request("GET", FOLDER, path_params={"name": _name(name)}))


async def list_vfolders(client: Client, *, group_id: str | None = None) -> list[VFolder]:
    params = {"group_id": group_id} if group_id else None
    return [VFolder.from_api(doc) for doc in await client.request("GET", "/folders", params=params)]


async def list_files(client: Client, name: str, path: str = ".") -> list[FileEntry]:
    rel = vfolder_path(path)
    with _about(client, name, "list", rel):
        answer = await client.request("GET", FOLDER + "/files", path_params={"name": _name(name)}, params={"path": rel})
    return [
        FileEntry(
            str(item["name"]),
            str(item.get("type", "")),
            int(item.get("size") or 0),
            str(item.get("mode", "")),
            item.get("modified"),
        )
        for item in answer.get("items", [])
    ]


async def exists(client: Client, name: str, path: str) -> bool:
    """Whether `path` is in the folder (one request: a listing of its parent)."""
    rel = PurePosixPath(vfolder_path(path))
    try:
        entries = await list_files(client, name, str(rel.parent))
    except NoSuchPathError:
        return False
    return rel.name == "" or any(entry.name == rel.name for entry in entries)


async def mkdir(client: Client, name: str, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
    rel = vfolder_path(path, root_ok=False)
    with _about(client, name, "create a directory in", rel):
        await client.request(
            "POST",
            FOLDER + "/mkdir",
            path_params={"name": _name(name)},
            json={"path": rel, "parents": parents, "exist_ok": exist_ok},
            idempotent=exist_ok,
        )


async def upload(
    client: Client,
    name: str,
    path: str,
    data: bytes | bytearray | memoryview | IO[bytes],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    make_parents: bool = False,
) -> int:
    """Write `data` to `path` (replacing a file there); the byte count. The storage proxy makes
    missing directories (checked on 23.09.10); `make_parents` sends a mkdir first for one that does not."""
    rel = vfolder_path(path, root_ok=False)
    source = Source(data)
    parent = str(PurePosixPath(rel).parent)
    if make_parents and parent != ".":
        await mkdir(client, name, parent)
    proxy, what = _proxy(client), f"vfolder {name!r} path {rel!r}"
    for attempt in (1, 2):  # a second session only when the proxy lost the first
        with _about(client, name, "upload to", rel):
            session = await client.request(
                "POST",
                FOLDER + "/request-upload",
                path_params={"name": _name(name)},
                json={"path": rel, "size": source.size},
                idempotent=True,
            )
        try:
            await proxy.upload(session["url"], session["token"], source, chunk_size=chunk_size, what=what)
            return source.size
        except UploadSessionGone:
            if attempt == 2:
                raise
            log.info("the storage proxy lost the upload session for %s; starting again", what)
    raise AssertionError("unreachable")


async def upload_tree(
    client: Client,
    name: str,
    dest_path: str,
    local_folder: str | os.PathLike[str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    concurrency: int = 4,
) -> TreeUpload:
    """Upload every regular file under `local_folder` to `dest_path`, and its empty directories.

    Requests: per file one request-upload and one PATCH per chunk (2 for a small
    file); one mkdir per empty directory (the proxy makes the others). Symlinks
    are skipped, never followed.
    """
    dest, root = vfolder_path(dest_path), Path(local_folder)
    if not root.is_dir():
        raise InvalidPathError(f"{str(root)!r} is not a local directory to upload")
    files, directories, skipped = _scan(root)
    occupied = {str(PurePosixPath(p).parent) for p in (*directories, *files)}
    empty = [d for d in directories if d not in occupied]
    targets = [_join(dest, d) for d in empty] or ([dest] if dest != "." and not files else [])
    gate = asyncio.Semaphore(max(1, concurrency))
    await _all((mkdir(client, name, target) for target in targets), gate)

    real_root = root.resolve()

    async def send(rel: str) -> int:
        try:  # checked again as it is opened: a link swapped in since the scan is not followed out of the folder
            opened = await asyncio.to_thread(open_inside, real_root, rel)
        except LeftTheFolder as e:
            raise InvalidPathError(f"not uploaded to vfolder {name!r}: {e}") from None
        with opened as handle:
            return await upload(client, name, _join(dest, rel), handle, chunk_size=chunk_size)

    sizes = await _all((send(rel) for rel in files), gate)
    if skipped:
        log.warning(
            "upload to vfolder %s skipped %d symlink(s) or special file(s): %s", name, len(skipped), ", ".join(skipped)
        )
    return TreeUpload(tuple(files), tuple(empty), sum(sizes), tuple(skipped))


async def download(client: Client, name: str, path: str) -> bytes:
    buffer = io.BytesIO()
    await download_to(client, name, path, buffer)
    return buffer.getvalue()


async def download_to(client: Client, name: str, path: str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
    """Write a file of the folder to a local path or a binary file; the byte count."""
    rel = vfolder_path(path, root_ok=False)
    with _about(client, name, "download from", rel):
        session = await client.request(
            "POST",
            FOLDER + "/request-download",
            path_params={"name": _name(name)},
            json={"path": rel, "archive": False},
            idempotent=True,
        )
    proxy, what = _proxy(client), f"vfolder {name!r} path {rel!r}"
    if isinstance(dest, (str, os.PathLike)):
        with await asyncio.to_thread(open, dest, "wb") as handle:
            return await proxy.download(session["url"], session["token"], handle, what=what)
    return await proxy.download(session["url"], session["token"], dest, what=what)


async def rename(client: Client, name: str, path: str, new_name: str) -> None:
    """Rename a file or directory in place (`new_name` is a name, not a path)."""
    rel = vfolder_path(path, root_ok=False)
    if "/" in new_name or new_name in ("", ".", ".."):
        raise InvalidPathError(f"{new_name!r} is not a file name to rename to")
    with _about(client, name, "rename in", rel):
        await client.request(
            "POST",
            FOLDER + "/rename-file",
            path_params={"name": _name(name)},
            json={"target_path": rel, "new_name": new_name},
        )


async def move(client: Client, name: str, src: str, dst: str) -> None:
    """Move a file to another path in the folder, replacing a file there (the storage proxy's shutil.move:
    one rename on one volume, so a reader sees the old file or the new one)."""
    source, target = vfolder_path(src, root_ok=False), vfolder_path(dst, root_ok=False)
    with _about(client, name, "move to", f"{source} -> {target}"):
        await client.request(
            "POST", FOLDER + "/move-file", path_params={"name": _name(name)}, json={"src": source, "dst": target}
        )


async def delete_files(client: Client, name: str, paths: list[str], *, recursive: bool = False) -> None:
    rels = [vfolder_path(p, root_ok=False) for p in paths]
    with _about(client, name, "delete from", ", ".join(rels)):
        await client.request(
            "DELETE",
            FOLDER + "/delete-files",
            path_params={"name": _name(name)},
            json={"files": rels, "recursive": recursive},
        )  # POST is 405 on 23.09.10


# -- helpers ----------------------------------------------------------------------------------------


def _proxy(client: Client) -> StorageProxy:
    """The storage-proxy side, sharing the client's connection pool, retry policy, clock and call counter."""
    return StorageProxy(
        client.unsigned, retry=client.retry, sleep=client.sleep, random=client.random, calls=client.calls
    )


def _name(name: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise InvalidPathError(f"{name!r} is not a vfolder name")
    return name


def _join(dest: str, rel: str) -> str:
    return rel if dest == "." else f"{dest}/{rel}"


async def _all(calls: Iterable[Awaitable[Any]], gate: asyncio.Semaphore) -> list[Any]:
    """Await every call, at most gate's number at once; the first failure cancels the rest."""

    async def gated(call):
        async with gate:
            return await call

    tasks = [asyncio.ensure_future(gated(call)) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _scan(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(files, directories, skipped) under root, as sorted relative POSIX paths."""
    files: list[str] = []
    directories: list[str] = []
    skipped: list[str] = []
    for here, dirnames, filenames in os.walk(root):
        base = Path(here).relative_to(root)
        for dirname in list(dirnames):
            rel = (base / dirname).as_posix()
            if os.path.islink(os.path.join(here, dirname)):
                dirnames.remove(dirname)
                skipped.append(rel)
            else:
                directories.append(rel)
        for filename in filenames:
            full, rel = os.path.join(here, filename), (base / filename).as_posix()
            (files if os.path.isfile(full) and not os.path.islink(full) else skipped).append(rel)
    return sorted(files), sorted(directories), sorted(skipped)


@contextmanager
def _about(client: Client, name: str, doing: str, path: str | None = None) -> Iterator[None]:
    """Turn the manager's vfolder errors into messages that name the folder and path."""
    try:
        yield
    except errors.BackendAIError as exc:
        better = _explain(exc, client.credentials.access_key, name, doing, path)
        if better is exc:
            raise
        raise better from exc


def _explain(exc: errors.BackendAIError, key: str, name: str, doing: str, path: str | None):
    fields: errors.ErrorFields
    problem, fields = (
        exc.problem,
        {"status": exc.status, "problem": exc.problem, "method": exc.method, "path": exc.path},
    )
    said = f"{problem.describe()} [{exc.status} {problem.slug}]" if problem else str(exc)
    where = f"{path!r} in vfolder {name!r}" if path else f"vfolder {name!r}"
    code = (problem.data or {}).get("errno") if problem and isinstance(problem.data, dict) else None
    if exc.slug == "object-not-found":
        return NoSuchVFolderError(
            f"Backend.AI has no vfolder {name!r} that access key {key} may {doing}: {said}; check the name, and that "
            "the folder is this key's own or shared with it (read-write to write into it)",
            **fields,
        )
    if code in (2, 20):  # ENOENT, ENOTDIR on the storage proxy's host
        return NoSuchPathError(f"Backend.AI: no such path {where} (while trying to {doing} it): {said}", **fields)
    if code == 17:  # EEXIST
        return PathExistsError(f"Backend.AI: {where} exists already (while trying to {doing} it): {said}", **fields)
    if exc.status == 403:
        return errors.BackendAIError(
            f"Backend.AI does not let access key {key} {doing} {where}: {said}; ask for the permission", **fields
        )
    if isinstance(exc, errors.QuotaError):
        return errors.QuotaError(
            f"Backend.AI quota exceeded trying to {doing} {where}: {said}; free space in the folder, "
            "or ask an admin to raise the quota",
            **fields,
        )
    return exc
