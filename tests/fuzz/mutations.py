"""Strategies the fuzz tests share: any JSON-like value, and a real document changed in a few places.

Random bytes rarely get past a parser's first check; a real pipeline, configuration or webhook payload with a
few values replaced, removed or added reaches every later check, which is where the surprises are.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "*", "**", "../..", "/etc/passwd", "${X}", "$$", "0x1f", "1e999", "-1", "null", "~", "é"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(data: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a document: the root, each key of a mapping, each item of a list."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths(value, (*path, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: Any, values: st.SearchStrategy[Any] = JSON, most: int = 4) -> Any:
    """The document with 1 to `most` places replaced by any value, removed, or given a new key."""
    data = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=1, max_value=most))):
        path = draw(st.sampled_from(paths(data)))
        if not path:
            data = draw(values)
            continue
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        operation = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if operation == "replace":
            parent[path[-1]] = draw(values)
        elif operation == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(values)
        else:
            parent.insert(path[-1], draw(values))
    return data


@st.composite
def mangled(draw: st.DrawFn, raw: bytes) -> bytes:
    """The bytes with a few stretches cut out, repeated or replaced by random bytes."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=len(raw)))
        end = draw(st.integers(min_value=start, max_value=min(len(raw), start + 40)))
        middle = draw(st.one_of(st.binary(max_size=20), st.just(raw[start:end] * 2), st.just(b"")))
        raw = raw[:start] + middle + raw[end:]
    return raw
