"""Virtual folders for the emulator: the manager's `/folders` routes and a storage proxy on its own port.

`vf = install(emu)` adds the 23.09 routes of backendai-api.md §3 to a started
Emulator and starts a storage proxy (client-facing API) on another
127.0.0.1 port, as the real one runs beside the manager (6021 vs 8081). Files
live in a temp dir, one directory per folder id. Shapes and errors follow the
23.09.10 manager (checked against the realstack): 201 create, 400
`vfolder-already-exists`, 404 `object-not-found` "No such virtual folder."
with the name as data, file errors as 400 `invalid-api-params` with the
strerror as msg and `data = {"errno", "paths"}`, delete-files by DELETE only
(POST is 405), mkdir with exist_ok false on an existing path is that
400 with errno 17, move-file `{src, dst}` is the storage proxy's shutil.move
(a file there is replaced; a missing parent is errno 2); request-upload creates the tus staging file
`.upload/<session>` and answers `{token, url}`; the proxy serves OPTIONS, HEAD
and PATCH on /upload (no tus creation: POST is 405) and GET /download with
Range, checking the HS256 JWT in `?token=`. As on 23.09, PATCH appends
whatever it gets (set `strict_offsets` for the 409 of newer proxies); the
finished file is moved into place, its directories made as needed. Modes are
not kept: uploaded files are 0644.

Faults: `drop_patch(after)` (take `after` bytes of the next PATCH, then close),
`drop_download(after)`, `fail_proxy(status, method)`, `lose_session()` (the
next PATCH finds its staging file gone: 404); a folder `quota` (bytes)
makes request-upload answer 412 quota-exceeded (400 on v9 servers) when it
would not fit. Manager-side faults are the core emulator's (`emu.fail`, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from engine.backendai.manager_rules import Reply

SECRET = b"emulator-storage-proxy-secret"
ALLOWED_CREATE_KEYS = {
    "name",
    "host",
    "usage_mode",
    "permission",
    "unmanaged_path",
    "unmanagedPath",
    "group",
    "groupId",
    "group_id",
    "quota",
    "cloneable",
}


@dataclass
class ProxyRequest:
    method: str
    path: str
    headers: dict[str, str]
    size: int  # body bytes received
    status: int | None = None  # None when dropped


def install(emu, root: str | os.PathLike | None = None, *, host: str = "local:volume1") -> VFolders:
    """Add the folder routes; with the session routes installed too, sessions mount these folders.

    A session's `config.mounts` then resolve to the folders' directories (an
    unknown name is 23.09's 404), and its command reaches each one the way the
    realstack agent without a sandbox shows it: `work/.mounts/<basename of the
    mount path>`, `BACKENDAI_VFOLDER_<BASENAME>` and `BACKENDAI_MOUNTS`.
    """
    folders = VFolders(emu, root, host=host)
    emu.vfolders = folders
    sessions = getattr(emu, "sessions", None)
    if sessions is not None:
        sessions.resolve_mount = folders.resolve
    return folders


class VFolders:
    def __init__(self, emu, root, *, host: str) -> None:
        self.emu, self.host = emu, host
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="emu-vfolders-") if root is None else root)
        self.folders: dict[str, dict] = {}  # name -> row
        self.requests: list[ProxyRequest] = []
        self.strict_offsets = False
        self.faults: list[dict] = []
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.vfolders = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        for method, pattern, handler in [
            ("POST", "/folders", self.create),
            ("GET", "/folders", self.list),
            ("GET", "/folders/{name}", self.info),
            ("DELETE", "/folders/{name}", self.delete),
            ("GET", "/folders/{name}/files", self.list_files),
            ("POST", "/folders/{name}/mkdir", self.mkdir),
            ("POST", "/folders/{name}/request-upload", self.request_upload),
            ("POST", "/folders/{name}/request-download", self.request_download),
            ("POST", "/folders/{name}/rename-file", self.rename_file),
            ("POST", "/folders/{name}/move-file", self.move_file),
            ("DELETE", "/folders/{name}/delete-files", self.delete_files),
        ]:
            emu.route(method, pattern, self._locked(handler))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def directory(self, name: str) -> Path:
        return self.root / self.folders[name]["id"]

    def resolve(self, name: str) -> Path | None:
        """The folder's directory, or None when there is no folder of that name (what sessions mount)."""
        with self.lock:
            return self.directory(name) if name in self.folders else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> VFolders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- faults -----------------------------------------------------------------------------------
    def drop_patch(self, after: int, times: int = 1) -> None:
        self.faults.append({"kind": "drop", "method": "PATCH", "after": after, "times": times})

    def drop_download(self, after: int, times: int = 1) -> None:
        self.faults.append({"kind": "drop", "method": "GET", "after": after, "times": times})

    def fail_proxy(self, status: int = 500, method: str = "PATCH", times: int = 1) -> None:
        self.faults.append({"kind": "fail", "method": method, "status": status, "times": times})

    def lose_session(self) -> None:
        self.faults.append({"kind": "lose", "method": "PATCH", "times": 1})

    def take_fault(self, method: str) -> dict | None:
        with self.lock:
            fault = next((f for f in self.faults if f["method"] == method), None)
            if fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.faults.remove(fault)
            return fault

    # -- manager routes ---------------------------------------------------------------------------
    def _locked(self, handler):
        def serve(req):
            with self.lock:
                return handler(req)

        return serve

    def _folder(self, req) -> dict | Reply:
        row = self.folders.get(unquote(req.params["name"]))
        return row or Reply.problem(
            404, "object-not-found", "No such virtual folder.", data=unquote(req.params["name"])
        )

    def create(self, req) -> Reply:
        body = req.json() or {}
        if extra := sorted(set(body) - ALLOWED_CREATE_KEYS):
            return _invalid({key: f"{key} is not allowed key" for key in extra})
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]{1,64}", name):
            return _invalid({"name": "value does not match pattern"})
        if body.get("usage_mode", "general") not in ("general", "model", "data") or body.get(
            "permission", "rw"
        ) not in ("ro", "rw", "wd"):
            return _invalid({"usage_mode/permission": "value is not a valid enum member"})
        host = body.get("host") or self.host
        if host != self.host:
            return Reply.problem(
                400,
                "invalid-api-params",
                "Missing or invalid API parameters.",
                "You are not allowed to use this vfolder host.",
            )
        if name in self.folders:
            return Reply.problem(400, "vfolder-already-exists", "The virtual folder already exists with the same name.")
        group = body.get("group") or body.get("groupId") or body.get("group_id")
        quota = _bytes(body.get("quota"))
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "quota_scope_id": f"user:{uuid.uuid4()}",
            "host": host,
            "usage_mode": body.get("usage_mode", "general"),
            "permission": body.get("permission", "rw"),
            "max_size": quota // 2**20 if quota else None,
            "creator": "admin@emulator.local",
            "ownership_type": "group" if group else "user",
            "user": None if group else str(uuid.uuid4()),
            "group": str(uuid.uuid5(uuid.NAMESPACE_DNS, group)) if group else None,
            "cloneable": bool(body.get("cloneable", False)),
            "status": "ready",
        }
        self.folders[name] = {**row, "quota": quota, "created_at": datetime.now(timezone.utc).isoformat()}
        (self.root / row["id"]).mkdir(parents=True)
        return Reply.json(row, 201)

    def _entry(self, row: dict) -> dict:
        return {
            **{k: v for k, v in row.items() if k != "quota"},
            "is_owner": True,
            "user_email": "admin@emulator.local",
            "group_name": None,
            "type": row["ownership_type"],
            "max_files": 0,
            "cur_size": self._used(row),
        }

    def list(self, req) -> Reply:
        if req.query.get("all", "").lower() in ("1", "true", "yes"):
            return Reply.problem(
                400, "invalid-api-params", "Missing or invalid API parameters.", "Deprecated use of 'all' option"
            )
        return Reply.json([self._entry(row) for row in self.folders.values()])

    def info(self, req) -> Reply:
        row = self._folder(req)
        if isinstance(row, Reply):
            return row
        files = sum(len(names) for _, _, names in os.walk(self.root / row["id"]))
        return Reply.json({**self._entry(row), "numFiles": files, "num_files": files, "used_bytes": self._used(row)})

    def delete(self, req) -> Reply:
        row = self._folder(req)
        if isinstance(row, Reply):
            return row
        del self.folders[row["name"]]
        shutil.rmtree(self.root / row["id"], ignore_errors=True)
        return Reply(204)

    def list_files(self, req) -> Reply:
        return self._file_op(req, self._list, {"path"}, query=True)

    def mkdir(self, req) -> Reply:
        def make(base, body):
            _inside(base, body["path"]).mkdir(
                parents=bool(body.get("parents", True)), exist_ok=bool(body.get("exist_ok"))
            )
            return Reply(201)

        return self._file_op(req, make, {"path", "parents", "exist_ok"})

    def rename_file(self, req) -> Reply:
        def rename(base, body):
            target = _inside(base, body["target_path"])
            target.rename(_inside(base, str(Path(body["target_path"]).parent / body["new_name"])))
            return Reply.json({})

        return self._file_op(req, rename, {"target_path", "new_name", "is_dir"})

    def move_file(self, req) -> Reply:
        def move(base, body):  # the 23.09 storage proxy's move_file: shutil.move, which replaces a file there
            shutil.move(_inside(base, body["src"]), _inside(base, body["dst"]))
            return Reply.json({})

        return self._file_op(req, move, {"src", "dst"}, required={"src", "dst"})

    def delete_files(self, req) -> Reply:
        def remove(base, body):
            for rel in body["files"]:
                target = _inside(base, rel)
                shutil.rmtree(target) if target.is_dir() and body.get("recursive") else target.unlink()
            return Reply.json({})

        return self._file_op(req, remove, {"files", "recursive"})

    def request_upload(self, req) -> Reply:
        def start(base, body):
            _inside(base, body["path"])
            size, row = int(body["size"]), self.folders[unquote(req.params["name"])]
            if row["quota"] is not None and self._used(row) + size > row["quota"]:
                status = 400 if self.emu.version.startswith("v9") else 412
                return Reply.problem(
                    status,
                    "quota-exceeded",
                    "You have reached your resource quota limit.",
                    f"vfolder {row['name']} has {row['quota'] - self._used(row)} bytes left",
                )
            session = uuid.uuid4().hex
            (base / ".upload").mkdir(exist_ok=True)
            (base / ".upload" / session).touch()
            token = _jwt(
                {
                    "op": "upload",
                    "volume": "volume1",
                    "vfid": row["id"],
                    "relpath": body["path"],
                    "session": session,
                    "size": size,
                    "exp": int(time.time()) + 3600,
                }
            )
            return Reply.json({"token": token, "url": self.endpoint + "/upload"})

        return self._file_op(req, start, {"path", "size"}, required={"path", "size"})

    def request_download(self, req) -> Reply:
        def start(base, body):
            path = body.get("path", body.get("file"))
            _inside(base, path)
            token = _jwt(
                {
                    "op": "download",
                    "volume": "volume1",
                    "vfid": self.folders[unquote(req.params["name"])]["id"],
                    "relpath": path,
                    "archive": bool(body.get("archive")),
                    "exp": int(time.time()) + 3600,
                }
            )
            return Reply.json({"token": token, "url": self.endpoint + "/download"})

        return self._file_op(req, start, {"path", "file", "archive"})

    def _file_op(self, req, operation, keys: set[str], *, query: bool = False, required=frozenset()) -> Reply:
        row = self._folder(req)
        if isinstance(row, Reply):
            return row
        body = dict(req.query) if query else (req.json() or {})
        if (extra := set(body) - keys) or (missing := set(required) - set(body)):
            return _invalid(dict.fromkeys(extra, "is not allowed key") or dict.fromkeys(missing, "is required"))
        try:
            return operation(self.root / row["id"], body)
        except OSError as exc:
            paths = [str(Path(p).relative_to(self.root / row["id"])) for p in (exc.filename, exc.filename2) if p]
            return Reply.problem(
                400,
                "invalid-api-params",
                "Missing or invalid API parameters.",
                exc.strerror or str(exc),
                {"errno": exc.errno, "paths": paths},
            )
        except ValueError as exc:
            return _invalid({"path": str(exc)})

    def _list(self, base: Path, body: dict) -> Reply:
        items = []
        for entry in sorted(os.scandir(_inside(base, body.get("path", ""))), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            kind = "SYMLINK" if entry.is_symlink() else "DIRECTORY" if entry.is_dir() else "FILE"

            def stamp(t):
                return datetime.fromtimestamp(t, timezone.utc).isoformat()

            items.append(
                {
                    "name": entry.name,
                    "type": kind,
                    "size": st.st_size,
                    "mode": oct(st.st_mode)[2:][-3:],
                    "created": stamp(st.st_ctime),
                    "modified": stamp(st.st_mtime),
                }
            )
        legacy = [{"filename": i["name"], "size": i["size"], "mode": i["mode"]} for i in items]
        return Reply.json({"items": items, "files": json.dumps(legacy)})

    def _used(self, row: dict) -> int:
        return sum(p.stat().st_size for p in (self.root / row["id"]).rglob("*") if p.is_file())


def _invalid(data: dict) -> Reply:
    return Reply.problem(
        400, "invalid-api-params", "Missing or invalid API parameters.", "Input validation error", data
    )


def _inside(base: Path, rel: str) -> Path:
    """base/rel, refusing a path that leaves base (the storage proxy's sanitize_vfpath)."""
    target = (base / rel).resolve()
    if not target.is_relative_to(base.resolve()):
        raise ValueError(f"{rel!r} is outside the vfolder")
    return target


def _bytes(value) -> int | None:
    if value in (None, "", 0):
        return None
    text = str(value).strip().lower()
    scale = {"k": 2**10, "m": 2**20, "g": 2**30}.get(text[-1:], 1)
    return int(float(text.rstrip("kmgib") or 0) * scale)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _jwt(claims: dict) -> str:
    signed = _b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + _b64(json.dumps(claims).encode())
    return (signed + b"." + _b64(hmac.new(SECRET, signed, hashlib.sha256).digest())).decode()


def _claims(token: str, op: str) -> dict | None:
    """The token's claims when its signature, expiry and operation are right."""
    signed, _, signature = token.encode().rpartition(b".")
    if not hmac.compare_digest(_b64(hmac.new(SECRET, signed, hashlib.sha256).digest()), signature):
        return None
    payload = signed.split(b".")[-1]
    claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    return claims if claims.get("op") == op and claims.get("exp", 0) > time.time() else None


# -- the storage proxy's client-facing API --------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0", "Cache-Control": "no-store"}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Python/3.11 aiohttp/3.8.6"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def _serve(self) -> None:
        vf: VFolders = self.server.vfolders  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        record = ProxyRequest(self.command, split.path, {k.lower(): v for k, v in self.headers.items()}, 0)
        vf.requests.append(record)
        query, length = dict(parse_qsl(split.query)), int(self.headers.get("Content-Length") or 0)
        fault = vf.take_fault(self.command) if split.path in ("/upload", "/download") else None
        if fault and fault["kind"] == "fail":
            record.size = len(self.rfile.read(length))
            return self._reply(record, Reply.problem(fault["status"], "internal-server-error", "Internal Server Error"))
        if split.path == "/upload" and self.command in ("HEAD", "PATCH", "OPTIONS"):
            with vf.lock:
                reply = self._upload(vf, query, length, record, fault)
        elif split.path == "/download" and self.command == "GET":
            reply = self._download(vf, query, record, fault)
        elif split.path in ("/upload", "/download"):
            self.rfile.read(length)
            reply = Reply(405, b"405: Method Not Allowed", {"Content-Type": "text/plain; charset=utf-8"})
        else:
            reply = Reply(404, b"404: Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        if reply is not None:
            self._reply(record, reply)

    do_GET = do_HEAD = do_PATCH = do_POST = do_OPTIONS = do_PUT = do_DELETE = _serve

    def _upload(self, vf: VFolders, query: dict, length: int, record: ProxyRequest, fault) -> Reply | None:
        if self.command == "OPTIONS":
            return Reply(200, b"", {**TUS, "Tus-Version": "1.0.0", "Tus-Max-Size": str(2**40)})
        claims = _claims(query.get("token", ""), "upload")
        if claims is None:
            self.rfile.read(length)
            return Reply.problem(400, "storage/invalid-api-params", "Invalid API parameters", "invalid token")
        base = vf.root / claims["vfid"]
        staging = base / ".upload" / claims["session"]
        if fault and fault["kind"] == "lose":
            staging.unlink()
        if not staging.exists():
            self.rfile.read(length)
            return Reply.problem(404, "storage/no-such-upload-session", "No such upload session")
        headers = {**TUS, "Upload-Offset": str(staging.stat().st_size), "Upload-Length": str(claims["size"])}
        if self.command == "HEAD":
            return Reply(200, b"", headers)
        if vf.strict_offsets and self.headers.get("Upload-Offset") != headers["Upload-Offset"]:
            self.rfile.read(length)
            return Reply.problem(409, "storage/upload-offset-mismatch", "Upload offset mismatch")
        take = min(length, fault["after"]) if fault and fault["kind"] == "drop" else length
        data = self.rfile.read(take)
        record.size = len(data)
        with open(staging, "ab") as handle:  # 23.09: append, whatever Upload-Offset said
            handle.write(data)
        if take < length:  # the connection drops mid-body: what arrived stays written
            self.close_connection = True
            return None
        size = staging.stat().st_size
        if size >= claims["size"]:
            target = base / claims["relpath"]
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
            try:
                staging.parent.rmdir()
            except OSError:
                pass
        return Reply(204, b"", {**headers, "Upload-Offset": str(size)})

    def _download(self, vf: VFolders, query: dict, record: ProxyRequest, fault) -> Reply | None:
        claims = _claims(query.get("token", ""), "download")
        if claims is None:
            return Reply.problem(400, "storage/invalid-api-params", "Invalid API parameters", "invalid token")
        target = vf.root / claims["vfid"] / claims["relpath"]
        if not target.exists():
            return Reply.problem(404, "storage/file-not-found", "File not found")
        if not target.is_file():
            return Reply.problem(
                400, "storage/invalid-api-params", "Invalid API parameters", "The file is not a regular file."
            )
        data, start = target.read_bytes(), 0
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment;filename="{target.name}";',
        }
        if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
            start = int(match[1])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        reply = Reply(206 if start else 200, data[start:], headers)
        if fault:  # announce the whole body, send part of it, close
            self._reply(record, reply, cut=fault["after"])
            return None
        return reply

    def _reply(self, record: ProxyRequest, reply: Reply, cut: int | None = None) -> None:
        record.status = reply.status if cut is None else None
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body if cut is None else reply.body[:cut])
            if cut is not None:
                self.wfile.flush()
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        pass
