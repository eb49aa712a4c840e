"""Request signing, exactly as the manager verifies it (backendai-api.md §1.1-1.3).

    Authorization: BackendAI signMethod=HMAC-SHA256, credential=<access key>:<hex signature>

    key       = HMAC(HMAC(secret, "YYYYMMDD" of the Date header), Host header)
    signature = hex HMAC(key, string_to_sign)

    string_to_sign = METHOD \\n path?query \\n Date \\n host:<Host> \\n content-type:<mime>
                     \\n x-backendai-version:<version> \\n sha256(b"")

The pure functions below compute it from plain values; `KeypairAuth` applies
it to an httpx request (httpx's pluggable auth flow: the client never knows how
a request is signed), over the very bytes httpx sends: `request.url.raw_path`
and the `Host` header httpx set (with a non-default port).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator
from datetime import datetime, timezone

import httpx

from fasttrack_gitops.engine.backendai.credentials import Secret

SIGN_METHOD = "HMAC-SHA256"
# Every API version since v4.20181215 signs the empty body, whatever the body is.
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
# What the manager signs when no Content-Type arrives (aiohttp's default); we always send one.
DEFAULT_CONTENT_TYPE = "application/octet-stream"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_date(when: datetime) -> str:
    """The Date header: UTC ISO 8601 with microseconds, e.g. 2024-09-20T12:34:56.789000+00:00."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def bare_mime(content_type: str | None) -> str:
    """The MIME type the manager signs: no parameters, lower case; octet-stream when absent."""
    if not content_type:
        return DEFAULT_CONTENT_TYPE
    return content_type.split(";", 1)[0].strip().lower() or DEFAULT_CONTENT_TYPE


def signing_key(secret_key: str | Secret, date: str, host: str) -> bytes:
    """The two-step key: HMAC over the date (YYYYMMDD of the Date header, in its own zone), then the host."""
    day = datetime.fromisoformat(date).strftime("%Y%m%d")
    k1 = hmac.new(Secret(secret_key).reveal().encode(), day.encode(), hashlib.sha256).digest()
    return hmac.new(k1, host.encode(), hashlib.sha256).digest()


def string_to_sign(*, method: str, path: str, date: str, host: str, content_type: str | None, version: str) -> str:
    """The seven lines, no trailing newline; `path` is the request target (path plus ?query)."""
    return "\n".join(
        [
            method.upper(),
            path,
            date,
            f"host:{host}",
            f"content-type:{bare_mime(content_type)}",
            f"x-backendai-version:{version}",
            EMPTY_BODY_SHA256,
        ]
    )


def signature(
    *, secret_key: str | Secret, method: str, path: str, date: str, host: str, content_type: str | None, version: str
) -> str:
    """The hex HMAC-SHA256 signature of one request."""
    text = string_to_sign(method=method, path=path, date=date, host=host, content_type=content_type, version=version)
    return hmac.new(signing_key(secret_key, date, host), text.encode(), hashlib.sha256).hexdigest()


def authorization(access_key: str, hex_signature: str) -> str:
    return f"BackendAI signMethod={SIGN_METHOD}, credential={access_key}:{hex_signature}"


class KeypairAuth(httpx.Auth):
    """Signs each request with a keypair for one API version; `clock` makes the Date deterministic in tests."""

    requires_request_body = False  # the body is never hashed (API >= v4.20181215)

    def __init__(self, access_key: str, secret_key: str | Secret, version: str, *, clock: Clock = utcnow) -> None:
        self.access_key = access_key
        self._secret = Secret(secret_key)
        self.version = version
        self._clock = clock

    def __repr__(self) -> str:
        return f"KeypairAuth(access_key={self.access_key!r}, version={self.version!r})"

    def sign(self, request: httpx.Request) -> httpx.Request:
        """Set Date, X-BackendAI-Version, Content-Type (when missing) and Authorization on `request`."""
        headers = request.headers
        date = format_date(self._clock())
        headers["Date"] = date
        headers["X-BackendAI-Version"] = self.version
        if "Content-Type" not in headers:
            # The SDK's choice: text/plain for an empty body. A body without a type is what the
            # manager would sign as octet-stream anyway; say so explicitly.
            has_body = headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in headers
            headers["Content-Type"] = DEFAULT_CONTENT_TYPE if has_body else "text/plain"
        host = headers.get("Host") or request.url.netloc.decode("ascii")
        hex_signature = signature(
            secret_key=self._secret,
            method=request.method,
            path=request.url.raw_path.decode("ascii"),
            date=date,
            host=host,
            content_type=headers["Content-Type"],
            version=self.version,
        )
        headers["Authorization"] = authorization(self.access_key, hex_signature)
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)
