"""Path globs as GitHub Actions' filters and .gitignore-style tools write them.

`*` matches within one path segment, `**` across segments (`a/**/b` also
matches `a/b`), `?` one character, `[...]` a set; in a list of patterns a
leading `!` excludes what earlier patterns included, and the last match wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# A pattern is a list of tokens, matched by stepping through the path one character at a time with the set of
# tokens reached so far (an NFA): time is at most pattern length x path length. A backtracking regex took
# exponential time on patterns of many `**` (`**/a/**/a/**/a/**/x` against a deep path hung the daemon).
_LITERAL, _ONE, _SET, _STAR, _ANY, _DIRS = range(6)  # a character, ?, [...], *, **, **/ (none or folders)
_Token = tuple[int, "str | re.Pattern[str]"]


class Glob:
    """One compiled pattern; `match(path)` says whether it matches the whole path."""

    def __init__(self, tokens: tuple[_Token, ...]):
        self._tokens = tokens

    def match(self, path: str) -> bool:
        tokens, end = self._tokens, 2 * len(self._tokens)
        # A state is 2 * token index, or 2 * index + 1 inside a `**/` that has taken characters (it must end at /).
        states = self._closure({0})
        for char in path:
            reached: set[int] = set()
            for state in states:
                index, inside = divmod(state, 2)
                if index == len(tokens):
                    continue
                kind, arg = tokens[index]
                following = state - inside + 2
                if kind == _DIRS:
                    reached.add(2 * index + 1)
                    if char == "/":
                        reached.add(following)
                elif kind == _LITERAL:
                    if char == arg:
                        reached.add(following)
                elif kind == _ONE:
                    if char != "/":
                        reached.add(following)
                elif kind == _SET:
                    assert isinstance(arg, re.Pattern)
                    if arg.fullmatch(char):
                        reached.add(following)
                elif kind == _ANY or char != "/":  # ** takes any character, * any but /
                    reached.add(state)
            if not reached:
                return False
            states = self._closure(reached)
        return end in states

    def _closure(self, states: set[int]) -> set[int]:
        """The states plus those reached by matching nothing (*, ** and **/ may match an empty string)."""
        todo = list(states)
        while todo:
            index, inside = divmod(todo.pop(), 2)
            optional = not inside and index < len(self._tokens) and self._tokens[index][0] in (_STAR, _ANY, _DIRS)
            if optional and 2 * index + 2 not in states:
                states.add(2 * index + 2)
                todo.append(2 * index + 2)
        return states


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    tokens: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            tokens.append((_DIRS, ""))
            i += 3
        elif pattern.startswith("**", i):
            tokens.append((_ANY, ""))
            i += 2
        elif c == "*":
            tokens.append((_STAR, ""))
            i += 1
        elif c == "?":
            tokens.append((_ONE, ""))
            i += 1
        elif c == "[" and (charset := _charset(pattern, i)) is not None:
            tokens.append((_SET, charset[0]))
            i = charset[1]
        else:  # an unclosed or invalid [ (`[]`, `[z-a]`) is the character itself
            tokens.append((_LITERAL, c))
            i += 1
    return Glob(tuple(tokens))


def _charset(pattern: str, i: int) -> tuple[re.Pattern[str], int] | None:
    """The character set `[...]` that opens at pattern[i], and where it ends; None when it is not one."""
    end = pattern.find("]", i + 1)
    body = pattern[i + 1 : end].replace("\\", "\\\\")
    if end == -1 or body in ("", "!"):
        return None
    if body.startswith("!"):
        body = "^" + body[1:]
    try:
        return re.compile(f"[{body}]"), end + 1
    except re.error:
        return None


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
