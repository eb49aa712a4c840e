"""Who may read and who may write: credentials, the login cookie, CSRF tokens, and the loopback rule.

Two credentials, both from the configuration (never from a URL):

- the read token (read_token_env / read_token_file): the console's pages,
  /api/events, GET /api/jobs..., the outputs API and /metrics;
- the API token (api_token_env / api_token_file): the write credential, for
  POST /api/trigger and the console's buttons; it reads too.

Either goes as `Authorization: Bearer <token>`; a person logs in once with
the console's token form, which sets a session cookie (HttpOnly,
SameSite=Strict) holding the level and an expiry signed with a key derived
from the credential itself: the token never leaves the login POST, and a
changed token ends every session made with the old one.

With no credential configured and `public_read` false, reads are answered to
loopback clients only (`serve --check` warns when the daemon listens wider);
a request a proxy forwarded (Forwarded, X-Forwarded-For, X-Real-IP) is not
one, though the proxy connects from 127.0.0.1.
A button's POST needs the write level and a CSRF token: an HMAC of a random
per-browser cookie, so a page of another origin can neither read nor forge
it; a POST whose Origin is another site's is refused before anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fasttrack_gitops.daemon.config import DaemonConfig

READ, WRITE = "read", "write"
SESSION_COOKIE = "ftg_session"
CSRF_COOKIE = "ftg_csrf"
SESSION_SECONDS = 12 * 3600
# A request that came through a proxy is no local caller, even when the proxy connects from 127.0.0.1.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


@dataclass(frozen=True)
class Caller:
    """What one request may do, and why not when it may not."""

    level: str | None  # READ, WRITE or None
    loopback: bool
    wrong_credential: bool  # it sent a bearer token or a cookie that is not (or no longer) valid


class Access:
    def __init__(self, config: DaemonConfig, secret: bytes):
        """`secret`: the process's signing key (outputs_http.signing_key); sessions and CSRF tokens hang off it."""
        self.config = config
        self._secret = secret
        self._tokens = {lvl: tok for lvl, tok in ((WRITE, config.api_token), (READ, config.read_token)) if tok}

    # -- who is calling

    def caller(self, headers, cookies, client_host: str | None) -> Caller:
        loopback = _is_loopback(client_host) and not any(headers.get(h) is not None for h in PROXY_HEADERS)
        given = headers.get("authorization")
        if given is not None:
            level = self.level_of_token(given.removeprefix("Bearer ").strip() if given.startswith("Bearer ") else "")
            return Caller(level, loopback, level is None)
        cookie = cookies.get(SESSION_COOKIE)
        if cookie:
            level = self._session_level(cookie)
            return Caller(level, loopback, level is None)
        return Caller(None, loopback, False)

    def level_of_token(self, token: str) -> str | None:
        """WRITE for the API token, READ for the read token, else None (compared in constant time)."""
        found = None
        for level, expected in self._tokens.items():
            if token and hmac.compare_digest(token.encode(), expected.encode()):
                found = found or level
        return found

    def may_read(self, caller: Caller) -> bool:
        if caller.level is not None or self.config.public_read:
            return True
        return self.config.loopback_only and caller.loopback

    def may_write(self, caller: Caller) -> bool:
        """The write level; with no API token configured, the loopback clients a credential-less daemon serves."""
        if caller.level == WRITE:
            return True
        return self.config.api_token is None and self.config.loopback_only and caller.loopback

    def read_refusal(self, caller: Caller) -> tuple[int, str]:
        """The status and words for a caller that may not read."""
        if caller.wrong_credential:
            return (
                401,
                "the credential sent is not this daemon's read or API token (or the session expired); log in again",
            )
        if not self._tokens:
            return 403, (
                "this daemon has no read_token_env and public_read is false, so it answers only on its own machine "
                "(127.0.0.1); configure a read token, or set public_read: true to open it deliberately"
            )
        return 401, "this daemon wants Authorization: Bearer <token> (its read_token_env or api_token_env), or a login"

    # -- the login cookie

    def session(self, level: str, now: float | None = None) -> str:
        """A cookie value for `level`, valid SESSION_SECONDS."""
        body = f"{level}.{int((now or time.time()) + SESSION_SECONDS)}"
        return f"{body}.{self._mac(level, body)}"

    def _session_level(self, cookie: str) -> str | None:
        level, _, rest = cookie.partition(".")
        expires, _, mac = rest.partition(".")
        if level not in self._tokens or not (expires.isascii() and expires.isdigit() and len(expires) < 12):
            return None
        if int(expires) < time.time():
            return None
        return level if hmac.compare_digest(mac, self._mac(level, f"{level}.{expires}")) else None

    def _mac(self, level: str, body: str) -> str:
        key = hmac.new(self._secret, b"session:" + self._tokens[level].encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")

    # -- CSRF

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, csrf_cookie: str) -> str:
        mac = hmac.new(self._secret, b"csrf:" + csrf_cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def csrf_ok(self, csrf_cookie: str | None, token: str | None) -> bool:
        return bool(csrf_cookie and token) and hmac.compare_digest(self.csrf_token(csrf_cookie or ""), token or "")

    def same_origin(self, headers, scheme: str) -> bool:
        """False when the request says it comes from another origin (Origin, else Referer); absent is allowed.

        Browsers send Origin with every cross-origin POST; the CSRF token is
        the check that does not depend on them.
        """
        origin = headers.get("origin") or headers.get("referer")
        if not origin:
            return True
        if origin == "null":
            return False
        parts = urlsplit(origin)
        own = {f"{scheme}://{headers.get('host', '')}"}
        if self.config.public_url:
            public = urlsplit(self.config.public_url)
            own.add(f"{public.scheme}://{public.netloc}")
        return f"{parts.scheme}://{parts.netloc}" in own


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listens_beyond_loopback(host: str) -> bool:
    """True when the listen address is reachable from other machines (0.0.0.0, ::, a LAN address, a name)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
