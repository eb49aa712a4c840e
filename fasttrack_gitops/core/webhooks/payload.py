"""What the GitHub and GitLab parsers share: headers, the JSON body, typed field reads. Pure.

A parser reads one `Payload` and answers `Parsed`: an event record, or
`Ignore` for a well-formed event that selects nothing. A payload of the
wrong shape is a 400 whose message names the field ("push payload: 'after'
is missing"), so whoever configured the webhook can see what was sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, TypeVar, overload

from fasttrack_gitops.core.events import ZERO_COMMIT, Event
from fasttrack_gitops.core.webhooks import WebhookError


class Ignore(NamedTuple):
    """A parser's answer for a well-formed event that selects nothing."""

    reason: str


Parsed = Event | Ignore  # what a parser makes of one event


# ---------------------------------------------------------------- headers and body


def lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP header names are case-insensitive; servers hand them over in any case (and ASGI as bytes)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        name = name.decode("latin-1") if isinstance(name, bytes) else name
        out[name.lower()] = value.decode("latin-1") if isinstance(value, bytes) else value
    return out


def require_header(headers: dict[str, str], name: str) -> str:
    """The header's value from lowercase_headers' mapping; a missing or blank one is a 400."""
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise WebhookError(400, f"the {name} header is missing")
    return value


def load_json(raw: bytes | str, label: str) -> dict[str, Any]:
    """Parse the payload once; malformed JSON or a top level that is not an object is a 400."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookError(400, f"{label} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookError(400, f"{label} must be a JSON object, not {_kind(data)}")
    return data


# ---------------------------------------------------------------- typed field reads


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
_COMMIT = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")  # SHA-1, or SHA-256 object ids
_MISSING: Any = object()
_T = TypeVar("_T")


class Payload:
    """Typed reads from one payload whose errors name the field ("push payload: 'after' is missing")."""

    def __init__(self, data: dict[str, Any], label: str):
        self.data = data
        self.label = label

    def fail(self, message: str) -> WebhookError:
        return WebhookError(400, f"{self.label}: {message}")

    def value(self, path: str) -> Any:
        """The value at a dotted path; _MISSING when a key is absent, None below a null object."""
        node: Any = self.data
        walked = ""
        for key in path.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                raise self.fail(f"{walked!r} must be an object, not {_kind(node)}")
            node = node.get(key, _MISSING)
            if node is _MISSING:
                return _MISSING
            walked = f"{walked}.{key}" if walked else key
        return node

    @overload
    def typed(self, path: str, kind: type[_T], *, required: Literal[True]) -> _T: ...
    @overload
    def typed(self, path: str, kind: type[_T], *, required: Literal[False]) -> _T | None: ...
    def typed(self, path: str, kind: type[_T], *, required: bool) -> _T | None:
        found = self.value(path)
        if found is _MISSING or found is None:
            if not required:
                return None
            if found is _MISSING:
                raise self.fail(f"{path!r} is missing")
            raise self.fail(f"{path!r} must be {_JSON_TYPES[kind]}, not null")
        if not isinstance(found, kind) or (kind is int and isinstance(found, bool)):
            raise self.fail(f"{path!r} must be {_JSON_TYPES[kind]}, not {_kind(found)}")
        return found

    def string(self, path: str) -> str:
        return self.typed(path, str, required=True)

    def opt_string(self, path: str) -> str | None:
        return self.typed(path, str, required=False)

    def integer(self, path: str) -> int:
        return self.typed(path, int, required=True)

    def opt_integer(self, path: str) -> int | None:
        return self.typed(path, int, required=False)

    def opt_bool(self, path: str, default: bool = False) -> bool:
        found = self.typed(path, bool, required=False)
        return default if found is None else found

    def opt_object(self, path: str) -> dict[str, Any] | None:
        return self.typed(path, dict, required=False)

    def commit(self, path: str) -> str:
        """A commit id, lowercased; an all-zero one (new or deleted ref) becomes ZERO_COMMIT."""
        sha = self.string(path)
        if not _COMMIT.fullmatch(sha):
            raise self.fail(f"{path!r} must be a commit id (40 hex digits), not {sha[:80]!r}")
        return ZERO_COMMIT if not sha.strip("0") else sha.lower()

    def peek(self, path: str) -> Any:
        """Best effort for ignored deliveries, which must never fail on a shape we do not read."""
        try:
            found = self.value(path)
        except WebhookError:
            return None
        return None if found is _MISSING else found

    def peek_string(self, path: str) -> str | None:
        """peek, keeping only a string."""
        found = self.peek(path)
        return found if isinstance(found, str) else None


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
