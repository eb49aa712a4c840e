"""Signed links: a URL path that anyone holding the link may GET until it expires, with no token. Pure.

A check run or a Slack message shows a task's image by URL, and GitHub's
image proxy (camo) fetches it with no credentials of ours; the daemon's API
token must never be put in a URL (URLs end up in logs, proxies and browser
history). So the daemon signs the one path instead: `?expires=<unix
time>&signature=<HMAC-SHA256>`, the MAC taken over the canonical text
`<path>\\n<expires>` with a secret only the daemon holds (its
`signing_secret_env`, or a random one per process) and written in URL-safe
base64 without padding. The path signed is the decoded path the server sees
(ASGI's scope["path"]), so quoting it in the URL changes nothing. The method
is not part of it: a signed link is only ever good for reading.

`verify` compares in constant time and says why a link is refused in one
word a caller can show: MISSING, EXPIRED or BAD_SIGNATURE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

MISSING = "missing"  # no expires or no signature in the query
EXPIRED = "expired"
BAD_SIGNATURE = "bad signature"  # a signature (or an expiry) that is not the one the daemon made


def sign(secret: bytes, path: str, *, expires: int) -> str:
    """The query string that makes `path` readable until `expires` (unix seconds): `expires=...&signature=...`."""
    return urlencode({"expires": str(int(expires)), "signature": _mac(secret, path, str(int(expires)))})


def verify(secret: bytes, path: str, query: Mapping[str, str], *, now: float) -> str | None:
    """None when `query` signs `path` and has not expired at `now`; else the reason (MISSING, EXPIRED, BAD_SIGNATURE)."""
    expires, signature = query.get("expires"), query.get("signature")
    if not expires or not signature:
        return MISSING
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:  # a number we made has 10 digits
        return BAD_SIGNATURE
    if not hmac.compare_digest(_mac(secret, path, expires).encode(), signature.encode("utf-8", "replace")):
        return BAD_SIGNATURE
    if int(expires) <= now:
        return EXPIRED
    return None


def output_path(job: str, task: str, path: str) -> str:
    """The daemon's URL path of one file of a task's outputs (decoded: what the server sees and what is signed)."""
    return f"/api/jobs/{job}/tasks/{task}/outputs/{path}"


def signed_output_url(
    public_url: str, secret: bytes, job: str, task: str, path: str, ttl_s: int, *, now: float | None = None
) -> str:
    """A link to one output file at the daemon's `public_url` that works without a token for `ttl_s` seconds."""
    expires = int((time.time() if now is None else now) + ttl_s)
    plain = output_path(job, task, path)
    return f"{public_url.rstrip('/')}{quote(plain)}?{sign(secret, plain, expires=expires)}"


def _mac(secret: bytes, path: str, expires: str) -> str:
    digest = hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
