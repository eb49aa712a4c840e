"""Path globs as GitHub Actions' filters and .gitignore-style tools write them.

`*` matches within one path segment, `**` across segments (`a/**/b` also
matches `a/b`), `?` one character, `[...]` a set; in a list of patterns a
leading `!` excludes what earlier patterns included, and the last match wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether the repository-relative path is selected by the patterns (last match wins)."""
    selected = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if compile_glob(pattern[1:] if negated else pattern).match(path):
            selected = not negated
    return selected


def static_prefix(pattern: str) -> str:
    """The leading folders of a pattern that contain no wildcard ('pipelines/**/*.yaml' -> 'pipelines')."""
    parts = pattern.lstrip("!").split("/")
    fixed = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed)
