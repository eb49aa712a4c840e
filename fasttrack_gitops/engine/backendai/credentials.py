"""Where the manager's endpoint and keypair come from, and a secret that never shows itself.

The variable names are the official client's: `BACKEND_ENDPOINT`,
`BACKEND_ACCESS_KEY`, `BACKEND_SECRET_KEY` (and `BACKEND_ENDPOINT_TYPE`,
which must be `api` when set: we talk to the manager, not to the web
server's `/func/` proxy).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fasttrack_gitops.core.errors import UsageError

ENDPOINT = "BACKEND_ENDPOINT"
ACCESS_KEY = "BACKEND_ACCESS_KEY"
SECRET_KEY = "BACKEND_SECRET_KEY"
ENDPOINT_TYPE = "BACKEND_ENDPOINT_TYPE"

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Secret:
    """A string that prints as *** everywhere (repr, str, f-strings, logging); `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # a secret is not a dict key

    def __reduce__(self):  # pickling would write the value into a stored record
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    endpoint: str  # normalised: scheme://host[:port][/prefix], no default port, no trailing slash
    access_key: str
    secret_key: Secret

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", normalize_endpoint(self.endpoint))
        if not isinstance(self.secret_key, Secret):
            object.__setattr__(self, "secret_key", Secret(self.secret_key))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """The credentials in the environment; a missing (or empty) variable is a UsageError naming it."""
        environ = os.environ if environ is None else environ
        values = {name: environ.get(name, "").strip() for name in (ENDPOINT, ACCESS_KEY, SECRET_KEY)}
        missing = [name for name, value in values.items() if not value]
        if missing:
            names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
            verb = "are" if len(missing) > 1 else "is"
            raise UsageError(
                f"{names} {verb} not set: Backend.AI needs {ENDPOINT} (the manager's API URL), "
                f"{ACCESS_KEY} and {SECRET_KEY} (a keypair)"
            )
        endpoint_type = environ.get(ENDPOINT_TYPE, "").strip().lower()
        if endpoint_type not in ("", "api"):
            raise UsageError(
                f"{ENDPOINT_TYPE}={endpoint_type!r} is not supported: point {ENDPOINT} at the manager "
                f"(the API endpoint, e.g. http://manager:8081) and set {ENDPOINT_TYPE}=api or leave it unset"
            )
        return cls(values[ENDPOINT], values[ACCESS_KEY], Secret(values[SECRET_KEY]))


def normalize_endpoint(text: str) -> str:
    """`https://host[:port][/prefix]`: http(s) only, no default port, no trailing slash, no query."""
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{ENDPOINT}={text!r} is not a valid URL: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UsageError(
            f"{ENDPOINT}={text!r} must be an http:// or https:// URL with a host, e.g. https://api.example.com"
        )
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{ENDPOINT} must not contain a user name or password; use {ACCESS_KEY} and {SECRET_KEY}")
    if parts.query or parts.fragment:
        raise UsageError(f"{ENDPOINT}={text!r} must not have a query or fragment")
    host = parts.hostname
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    # httpx leaves a default port out of the Host header, and the manager signs that header: write none.
    netloc = host if port is None or port == _DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
