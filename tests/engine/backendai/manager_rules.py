"""What the 23.09 manager checks on every request, written from its code, not from our client's.

`authenticate` is the manager's check_date + auth_middleware + sign_request
(backendai-api.md §1.2-1.3): the Date within ±15 minutes of the server clock
(400 invalid-auth-params "Date/time sync error"), the Authorization header
(401 "Unauthorized access"), the access key (401 "Access key not found"),
the HMAC over the request-target as received (401 "Signature mismatch").
`Request` and `Reply` are what the emulator's route handlers take and give.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

VALID_23_09 = (
    "v4.20181215",
    "v4.20190115",
    "v4.20190315",
    "v4.20190615",
    "v5.20191215",
    "v6.20200815",
    "v6.20210815",
    "v6.20220315",
    "v6.20220615",
    "v6.20230315",
    "v7.20230615",
)
VALID_24_03 = VALID_23_09 + ("v8.20240315",)
VALID_25_15 = VALID_24_03 + ("v8.20240915", "v9.20250722")
# name -> (GET / "version", GET / "manager", the versions X-BackendAI-Version may carry)
SERVERS = {
    "23.09": ("v7.20230615", "23.09.10", VALID_23_09),
    "24.03": ("v8.20240315", "24.03.5", VALID_24_03),
    "25.15": ("v9.20250722", "25.15.2", VALID_25_15),
    "26.4": ("v9.20250722", "26.4.4", VALID_25_15),  # a current release (for /services: its dialect)
}
ACCESS_KEY = "AKIAEMULATORTEST0001"
SECRET_KEY = "emulator/Secret+Key0123456789abcdefghijkl"
CLOCK_WINDOW = timedelta(minutes=15)
PROBS = "https://api.backend.ai/probs/"


@dataclass
class Request:
    method: str
    target: str  # the request-target as received: path?query
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    access_key: str | None = None  # set once authenticated

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json; charset=utf-8"})

    @classmethod
    def problem(cls, status: int, slug: str, title: str, msg: str | None = None, data: Any = None) -> Reply:
        doc = {"type": PROBS + slug, "title": title}
        doc.update({k: v for k, v in (("msg", msg), ("data", data)) if v is not None})
        return cls(status, json.dumps(doc).encode(), {"Content-Type": "application/problem+json"})


def authenticate(req: Request, keypairs: dict[str, str], now: datetime) -> Reply | None:
    """The manager's check_date + auth_middleware + sign_request, independently of our client."""
    raw_date = req.headers.get("date") or req.headers.get("x-backendai-date") or ""
    try:
        date = datetime.fromisoformat(raw_date)
    except ValueError:
        date = None
    if date is not None and date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    if date is None or not (now - CLOCK_WINDOW < date < now + CLOCK_WINDOW):
        return auth_params("Date/time sync error")
    scheme, _, rest = req.headers.get("authorization", "").partition(" ")
    params = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    if scheme not in ("BackendAI", "Sorna") or "credential" not in params or "signMethod" not in params:
        return auth_failed("Unauthorized access")
    access_key, _, their_signature = params["credential"].partition(":")
    secret = keypairs.get(access_key)
    if secret is None:
        return auth_failed("Access key not found")
    mac, _, hash_name = params["signMethod"].lower().partition("-")
    if mac != "hmac" or hash_name not in hashlib.algorithms_guaranteed:
        return auth_params("Unsupported request signing method")
    version = req.headers.get("x-backendai-version")
    if version is None:
        return auth_params("API version missing in request headers")
    host = req.headers.get("host", "")
    mime = (req.headers.get("content-type") or "application/octet-stream").split(";")[0].strip().lower()
    sign_bytes = (
        f"{req.method}\n{req.target}\n{raw_date}\nhost:{host}\ncontent-type:{mime}\n"
        f"x-backendai-version:{version}\n{hashlib.new(hash_name, b'').hexdigest()}"
    ).encode()
    key = hmac.new(secret.encode(), date.strftime("%Y%m%d").encode(), hash_name).digest()
    key = hmac.new(key, host.encode(), hash_name).digest()
    if not hmac.compare_digest(hmac.new(key, sign_bytes, hash_name).hexdigest(), their_signature):
        return auth_failed("Signature mismatch")
    req.access_key = access_key
    return None


def limits(limit: int, remaining: int, window: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Window": str(window)}


def auth_params(msg: str) -> Reply:
    return Reply.problem(400, "invalid-auth-params", "Missing or invalid authorization parameters.", msg)


def auth_failed(msg: str) -> Reply:
    return Reply.problem(401, "auth-failed", "Credential/signature mismatch.", msg)
