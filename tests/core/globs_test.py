"""Path globs as GitHub Actions' `paths` filters and `.fasttrack.yaml`'s `pipelines` list write them."""

from __future__ import annotations

import time

import pytest

from fasttrack_gitops.core.globs import compile_glob, matches, static_prefix

PIPELINES = ["pipelines/**/*.yaml"]


@pytest.mark.parametrize("path", ["pipelines/a.yaml", "pipelines/x/a.yaml", "pipelines/x/y/a.yaml"])
def test_double_star_matches_at_any_depth_including_none(path):
    assert matches(path, PIPELINES)


@pytest.mark.parametrize(
    "path", ["other/a.yaml", "pipelines/a.yml", "pipelines/a.yaml.bak", "a.yaml", "xpipelines/a.yaml", "pipelines"]
)
def test_double_star_does_not_match_outside_its_folder_or_suffix(path):
    assert not matches(path, PIPELINES)


def test_single_star_does_not_cross_a_slash():
    assert matches("a.yaml", ["*.yaml"])
    assert not matches("dir/a.yaml", ["*.yaml"])
    assert matches("tasks/train/main.py", ["tasks/*/main.py"])
    assert not matches("tasks/a/b/main.py", ["tasks/*/main.py"])


def test_question_mark_is_one_character_within_a_segment():
    assert matches("v1.yaml", ["v?.yaml"])
    assert not matches("v10.yaml", ["v?.yaml"])
    assert not matches("a/c", ["a?c"])


def test_character_sets_and_negated_sets():
    assert matches("v1.yaml", ["v[12].yaml"])
    assert not matches("v3.yaml", ["v[12].yaml"])
    assert matches("bx", ["[!a]x"])
    assert not matches("ax", ["[!a]x"])


def test_regex_characters_are_literal():
    assert matches("a.b", ["a.b"])
    assert not matches("axb", ["a.b"])
    assert matches("a+b(1).yaml", ["a+b(1).yaml"])
    assert matches("a[", ["a["])  # an unclosed '[' is a literal


def test_double_star_forms():
    assert matches("a/b", ["a/**/b"])
    assert matches("a/x/y/b", ["a/**/b"])
    assert matches("tasks/a/b.py", ["tasks/**"])
    assert not matches("tasks", ["tasks/**"])
    assert matches("a.yaml", ["**/*.yaml"]) and matches("x/y/a.yaml", ["**/*.yaml"])


def test_negation_excludes_what_earlier_patterns_included():
    patterns = ["pipelines/**/*.yaml", "!pipelines/drafts/**"]
    assert matches("pipelines/train.yaml", patterns)
    assert not matches("pipelines/drafts/wip.yaml", patterns)


def test_last_matching_pattern_wins():
    patterns = ["pipelines/**/*.yaml", "!pipelines/drafts/**", "pipelines/drafts/keep.yaml"]
    assert matches("pipelines/drafts/keep.yaml", patterns)
    assert not matches("pipelines/drafts/other.yaml", patterns)
    assert matches("pipelines/a.yaml", ["!pipelines/a.yaml", "pipelines/**"])  # included again, last


def test_only_negations_select_nothing():
    assert not matches("a.yaml", ["!b.yaml"])
    assert not matches("a.yaml", [])


def test_compiled_glob_is_anchored_at_both_ends():
    glob = compile_glob("*.yaml")
    assert glob.match("a.yaml") and not glob.match("a.yaml.bak") and not glob.match("x/a.yaml")


# Found by tests/fuzz/globs_test.py: each raised re.error from the pattern's regex.
@pytest.mark.parametrize(("pattern", "path"), [("[]", "[]"), ("[z-a]", "[z-a]"), ("a[!]b", "a[!]b")])
def test_a_set_that_is_empty_or_invalid_is_the_characters_themselves(pattern, path):
    assert matches(path, [pattern])
    assert not matches("a", [pattern])


def test_many_double_stars_against_a_deep_path_answer_at_once():
    """Found by tests/fuzz/globs_test.py: as a backtracking regex this took minutes (exponential in the **s)."""
    path = "a/" * 200 + "y"
    started = time.monotonic()
    assert not matches(path, ["**/" * 30 + "x"])
    assert not matches(path, ["**/a/" * 20 + "x"])
    assert matches(path, ["**/a/" * 20 + "y"])
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "pattern, prefix",
    [
        ("pipelines/**/*.yaml", "pipelines"),
        ("!pipelines/x/*.yaml", "pipelines/x"),
        ("pipelines/a.yaml", "pipelines"),
        ("ml/pipelines/*.yml", "ml/pipelines"),
        ("a/b*/c/*.y", "a"),
        ("*.yaml", ""),
        ("**/*.yaml", ""),
        ("p/[ab]/*.yaml", "p"),
        ("p/?/x.yaml", "p"),
    ],
)
def test_static_prefix_is_the_folders_before_the_first_wildcard(pattern, prefix):
    assert static_prefix(pattern) == prefix


def test_backslash_in_a_character_set_does_not_crash():
    assert matches("a\\b", ["a[\\]b"])
