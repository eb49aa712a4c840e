"""The daemon's outputs API: a task's outputs listed, and one file served, to the API token or a signed link.

    GET /api/jobs/{id}/tasks/{task}/outputs          the task's files and folders, as JSON
    GET /api/jobs/{id}/tasks/{task}/outputs/{path}   one file

Who may read: a request with a read credential (web/access.py: the read or
the API token as `Authorization: Bearer`, or the console's login cookie), or
one whose query signs its path and has not expired (core/signing.py): a signed link, which is how a check run or a
Slack message can show an image, since GitHub's image proxy fetches it
with no token of ours and the token must never be put in a URL. Without
a token (nor public_read) only signed links work: outputs hold what a
repository's code computed, and a daemon without a token must not hand them
to anyone who can reach it. The signing secret is signing_secret_env's, else random
per process (`signing_key`): then the links die when the daemon restarts.

Files are read where the daemon's executor wrote them (engine/outputs.py),
a reused task's in the job that made them. A file over outputs_max_size is
413, with a message naming `jobs outputs --download`. An answer lets a
browser do little: png, jpeg and svg show inline, anything else is an
attachment, and every file goes with `X-Content-Type-Options: nosniff` and
`Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'`,
so an SVG a task wrote cannot run script on the daemon's origin. Error
answers are JSON, never name the daemon's folders, and never hold a
traceback; the manager's errors are logged and answered 502 in general words.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.signing import EXPIRED, verify
from fasttrack_gitops.daemon.config import DaemonConfig
from fasttrack_gitops.engine.outputs import (
    OutputNotFoundError,
    OutputPathError,
    OutputTooLargeError,
    TaskOutputs,
    UnknownTaskError,
)

log = logging.getLogger("fasttrack_gitops.daemon.http")

TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
IMAGES = (".png", ".svg", ".jpg", ".jpeg")
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'"
Header = tuple[bytes, bytes]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    headers: tuple[Header, ...] = ()


def signing_key(config: DaemonConfig) -> bytes:
    """The secret that signs output links: signing_secret_env's, else a random one for this process only."""
    return config.signing_secret.encode() if config.signing_secret else secrets.token_bytes(32)


class OutputsAPI:
    def __init__(self, store, executor, config: DaemonConfig, secret: bytes, public: Callable[[str], str]):
        """`public` rewords a message for the outside (http.App._public: no state folder in it)."""
        self.reader = TaskOutputs(store, executor)
        self.config, self.secret, self.public = config, secret, public

    async def answer(self, request, caller) -> Answer:
        """The answer to GET .../outputs[/{path}]; `caller` is web/access.py's view of who asks."""
        refused = self._refusal(request.url.path, caller, dict(request.query_params))
        if refused is not None:
            return refused
        route = request.path_params
        job, task, file = route["job"], route["task"], route.get("path", "")
        try:
            if not file:
                return await self._listing(job, task)
            data = await self.reader.read(job, task, file, limit=self.config.outputs_max_size)
        except (UnknownTaskError, OutputNotFoundError) as e:
            return _json(404, self.public(str(e)))
        except OutputPathError as e:
            return _json(400, self.public(str(e)))
        except OutputTooLargeError as e:
            return _json(
                413,
                f"outputs/{file} of task '{task}' is {e.size} bytes, more than this daemon serves "
                f"({e.limit} bytes, its outputs_max_size); download it with `fasttrack-gitops jobs outputs "
                f"{job} {task} --download DIR`",
            )
        except FastTrackError as e:  # the manager's (BackendAIError), or another we did not foresee
            log.warning("outputs of task %s of job %s: %s", task, job, e)
            return _json(502, "the outputs cannot be read now; the daemon's log says why")
        except OSError as e:
            log.warning("outputs of task %s of job %s: %s", task, job, e)
            return _json(500, f"the outputs cannot be read: {e.strerror or type(e).__name__}")
        return _file(file, data)

    async def _listing(self, job: str, task: str) -> Answer:
        entries = await self.reader.list(job, task)
        job_id, tasks = self.reader.tasks(job)
        body = {
            "job": job_id,
            "task": task,
            "reused_from": tasks[task],
            "outputs": [{"path": e.path, "size": e.size, "is_dir": e.is_dir} for e in entries],
        }
        return Answer(200, json.dumps(body).encode(), "application/json")

    def _refusal(self, path: str, caller, query: dict[str, str]) -> Answer | None:
        """None when the request may read; else the 401 or 403 that says why."""
        if caller.level is not None or self.config.public_read:
            return None
        if "signature" in query or "expires" in query:
            reason = verify(self.secret, path, query, now=time.time())
            if reason is None:
                return None
            again = "; ask for a new link" if reason == EXPIRED else ""
            return _json(403, f"this signed link is refused: {reason}{again}")
        if caller.wrong_credential:
            return _json(
                401,
                "the Authorization header does not hold this daemon's read or API token; send Authorization: Bearer "
                "<token> (its read_token_env or api_token_env), or use a signed link",
            )
        if self.config.api_token is None and self.config.read_token is None:
            return _json(401, "this daemon has no API token (api_token_env), so it serves outputs by signed link only")
        return _json(401, "this daemon wants Authorization: Bearer <token> (its api_token_env), or a signed link")


def _json(status: int, message: str) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode(), "application/json")


def _file(path: str, data: bytes) -> Answer:
    """The file's bytes, with what a browser may do with them."""
    suffix = PurePosixPath(path).suffix.lower()
    name = PurePosixPath(path).name
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", name)
    disposition = "inline" if suffix in IMAGES else "attachment"
    headers: tuple[Header, ...] = (
        (b"content-disposition", f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(name)}".encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", SANDBOX.encode()),
    )
    return Answer(200, data, TYPES.get(suffix, "application/octet-stream"), headers)
