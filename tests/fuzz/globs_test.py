"""Fuzz: path and branch globs (core/globs.py), as pipeline files write them in on.push.paths, branches, tags.

Invariants: any pattern, matched against any path, answers True or False (never a traceback: a pattern is the
repository author's text, a path git's) and in well under the 2 s deadline, a pattern of many `**` and a long
path included; a pattern without wildcards matches exactly itself.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.globs import compile_glob, matches, static_prefix

GLOB_PIECES = st.sampled_from(["*", "**", "**/", "?", "[", "]", "[!", "!", "-", "\\", "/", "a", "b", ".", "^", "z-a"])
PATTERNS = st.one_of(st.lists(GLOB_PIECES, max_size=25).map("".join), st.text(max_size=30))
PATHS = st.one_of(
    st.lists(st.sampled_from(["a", "b", "/", ".", "ab", "aaaaaaaa", "-", "["]), max_size=60).map("".join),
    st.text(max_size=60),
)


@given(patterns=st.lists(PATTERNS, min_size=1, max_size=4), path=PATHS)
def test_any_patterns_against_any_path_answer_true_or_false(patterns, path):
    assert matches(path, patterns) in (True, False)
    assert isinstance(static_prefix(patterns[0]), str)


@given(stars=st.integers(min_value=1, max_value=30), depth=st.integers(min_value=1, max_value=200))
def test_many_double_stars_against_a_deep_path_answer_quickly(stars, depth):
    pattern = "**/" * stars + "x"
    path = "a/" * depth + "y"
    assert matches(path, [pattern]) is False
    assert matches(path[:-1] + "x", [pattern]) is True


@given(path=st.text(alphabet=st.characters(blacklist_characters="*?[]!"), min_size=1, max_size=40))
def test_a_pattern_without_wildcards_matches_exactly_itself(path):
    assert compile_glob(path).match(path)
    assert not matches(path + "x", [path])
