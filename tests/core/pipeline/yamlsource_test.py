"""Loading a pipeline file: YAML syntax, encodings, limits and the YAML features pipelines do not use.

Each test is one thing a user can write (or an attacker can send) and what
`check_pipeline` tells them: the exact code, line and column (1-based), and
the part of the message that says what to do.
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import MINIMAL

from fasttrack_gitops.core.pipeline import Limits, check_pipeline
from fasttrack_gitops.core.pipeline.yamlsource import load

FILE = "pipelines/p.yaml"


def check(text: str | bytes, **kwargs):
    raw = text if isinstance(text, bytes) else textwrap.dedent(text).encode("utf-8")
    return check_pipeline(raw, FILE, **kwargs)


def only(result, code: str):
    """The one diagnostic of the result, which must have the given code."""
    assert [d.code for d in result.diagnostics] == [code], result.diagnostics
    return result.diagnostics[0]


def at(d) -> tuple[int, int]:
    return (d.line, d.column)


# --- YAML syntax -------------------------------------------------------------


def test_yaml_syntax_error_reports_line_and_column():
    result = check('version: "1"\nname: demo\n  bad: indent\ntasks: []\n')
    d = only(result, "FT004")
    assert at(d) == (3, 6)
    assert d.severity == "error"
    assert "mapping values are not allowed" in d.message
    assert d.message.startswith("YAML syntax error")
    assert result.pipeline is None and result.document is None


def test_unclosed_flow_list_is_a_syntax_error_where_the_parser_gave_up():
    d = only(check('version: "1"\nname: [demo\ntasks: []\n'), "FT004")
    assert at(d) == (3, 6)
    assert "flow sequence" in d.message


def test_tab_used_for_indentation_points_at_the_tab():
    d = only(check('version: "1"\nname: demo\ntasks:\n\t- name: a\n'), "FT005")
    assert at(d) == (4, 1)
    assert "tab character used for indentation" in d.message
    assert "spaces only" in d.message


def test_tab_after_spaces_in_the_indentation_points_at_the_tab_column():
    d = only(check('version: "1"\nname: demo\ntasks:\n  - name: a\n  \tcommand: x\n'), "FT005")
    assert at(d) == (5, 3)


def test_tab_inside_a_block_scalar_command_is_not_indentation():
    result = check(
        'version: "1"\nname: demo\ntasks:\n  - name: a\n    command: |\n      printf "a\\tb"\n      \techo indented\n'
    )
    assert result.diagnostics == []
    assert result.pipeline.task("a").command == 'printf "a\\tb"\n\techo indented\n'


# --- duplicate keys ----------------------------------------------------------


def test_duplicate_key_is_an_error_not_silently_last_wins():
    result = check(MINIMAL + "name: other\n")
    d = only(result, "FT006")
    assert at(d) == (9, 1)  # the second occurrence
    assert "duplicate key 'name'" in d.message
    assert "first defined on line 2" in d.message
    assert d.path == "$.name"
    assert result.pipeline is None
    assert result.document.data["name"] == "demo"  # the first one is kept, never silently replaced


def test_duplicate_key_inside_a_task_names_the_first_line():
    d = only(
        check("""\
        version: "1"
        name: demo
        tasks:
          - name: a
            command: echo one
            skip: false
            command: echo two
        """),
        "FT006",
    )
    assert at(d) == (7, 5)
    assert "duplicate key 'command'" in d.message
    assert "first defined on line 5" in d.message
    assert d.path == "$.tasks[0].command"


def test_quoted_and_plain_spellings_of_a_key_are_the_same_key():
    d = only(check(MINIMAL + '"name": other\n'), "FT006")
    assert at(d) == (9, 1)
    assert "first defined on line 2" in d.message


# --- empty files and top levels that are not a mapping ----------------------


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n", "# just a comment\n# and another\n", "null\n", "~\n", "---\n"],
    ids=["empty", "blank-lines", "comments-only", "null", "tilde", "document-marker-only"],
)
def test_a_file_without_content_is_an_empty_pipeline(text):
    d = only(check(text), "FT007")
    assert at(d) == (1, 1)
    assert "file is empty" in d.message
    assert "'name' and 'tasks'" in d.message


def test_top_level_list_is_not_a_pipeline():
    d = only(check("- name: a\n  command: x\n"), "FT007")
    assert at(d) == (1, 1)
    assert "the top level is a list, not a mapping" in d.message


def test_top_level_scalar_is_not_a_pipeline():
    d = only(check("\n\njust some words\n"), "FT007")
    assert at(d) == (3, 1)
    assert "the top level is a scalar, not a mapping" in d.message


# --- encoding and size -------------------------------------------------------


def test_invalid_utf8_in_the_middle_of_line_3_points_at_the_byte():
    raw = b'version: "1"\nname: demo\ndescription: ab\xffcd\ntasks: []\n'
    d = only(check(raw), "FT003")
    assert at(d) == (3, 16)
    assert "invalid UTF-8 byte 0xff" in d.message
    assert "save the file as UTF-8" in d.message


def test_invalid_utf8_column_counts_characters_like_every_other_column():
    raw = 'version: "1"\nname: demo\ndescription: äö'.encode() + b"\xff\ntasks: []\n"
    d = only(check(raw), "FT003")
    assert at(d) == (3, 16)  # 'description: äö' is 15 characters (17 bytes)


def test_a_utf8_byte_order_mark_is_accepted():
    result = check(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert result.diagnostics == []
    assert result.pipeline.name == "demo"


def test_file_over_the_size_limit_is_refused_before_parsing():
    raw = MINIMAL.encode()
    d = only(check(raw, limits=Limits(max_bytes=100)), "FT002")
    assert at(d) == (1, 1)
    assert f"file is {len(raw)} bytes, over the 100 bytes limit" in d.message
    assert "--max-file-size" in d.message


def test_file_exactly_at_the_size_limit_is_read():
    raw = MINIMAL.encode()
    assert check(raw, limits=Limits(max_bytes=len(raw))).diagnostics == []


def test_default_size_limit_is_one_mib():
    assert Limits().max_bytes == 1024 * 1024
    big = MINIMAL.encode() + b"#" * (1024 * 1024 - len(MINIMAL))
    assert len(big) == 1024 * 1024
    assert check(big).diagnostics == []
    d = only(check(big + b"#"), "FT002")
    assert "over the 1 MiB limit" in d.message


def test_control_characters_are_a_syntax_error_not_a_crash():
    d = only(check(b'version: "1"\nname: a\x07b\ntasks: []\n'), "FT004")
    assert "character U+0007 is not allowed in YAML" in d.message


def test_control_character_is_reported_where_it_is():
    d = only(check(b'version: "1"\nname: a\x00b\ntasks: []\n'), "FT004")
    assert at(d) == (2, 8)
    assert "position" not in d.message and "\n" not in d.message


# --- alias bombs and nesting -------------------------------------------------


def _billion_laughs() -> str:
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, prev in zip("bcdefghi", "abcdefgh"):
        lines.append(f"x-{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return 'version: "1"\nname: bomb\n' + "\n".join(lines) + "\ntasks:\n  - name: a\n    command: x\n"


def test_billion_laughs_alias_bomb_is_refused_before_expanding():
    """9**9 'lol's after expansion: the loader must count and refuse, never expand (that would not end).

    How long the refusal takes is bench/validate_bench.py's figure.
    """
    d = only(check(_billion_laughs()), "FT008")
    assert d.line >= 3
    assert "YAML aliases expand to more than 200,000 nodes" in d.message
    assert "alias bomb" in d.message


def test_small_node_limit_refuses_a_modest_expansion():
    text = MINIMAL + "x-a: &a [1, 2, 3, 4]\nx-b: [*a, *a, *a, *a, *a]\n"
    assert check(text).diagnostics == []
    d = only(check(text, limits=Limits(max_nodes=20)), "FT008")
    assert "more than 20 nodes" in d.message


def test_recursive_alias_is_refused():
    d = only(check("a: &a [*a]\n"), "FT008")
    assert at(d) == (1, 4)
    assert "a YAML alias refers to the node that contains it" in d.message


def test_recursive_alias_inside_a_pipeline_is_refused():
    d = only(check('version: "1"\nname: demo\ntasks: &t\n  - *t\n'), "FT008")
    assert at(d) == (3, 8)


def test_nesting_deeper_than_the_limit_is_refused():
    text = 'version: "1"\nname: demo\ntasks: ' + "[" * 100 + "]" * 100 + "\n"
    d = only(check(text), "FT009")
    # the 65th '[' (root mapping = depth 0, `tasks:` value = depth 1) on line 3, after 'tasks: '
    assert at(d) == (3, 7 + 65)
    assert "nests more than 64 levels deep" in d.message


def test_nesting_at_the_limit_is_read():
    text = 'version: "1"\nname: demo\nx-deep: ' + "[" * 63 + "]" * 63 + "\ntasks:\n  - name: a\n    command: x\n"
    assert check(text).diagnostics == []
    assert only(check(text, limits=Limits(max_depth=10)), "FT009").line == 3


def test_five_thousand_nested_lists_do_not_raise_recursion_error():
    text = 'version: "1"\nname: demo\ntasks: ' + "[" * 5000 + "]" * 5000 + "\n"
    result = check(text)  # must not raise RecursionError
    assert len(result.diagnostics) == 1
    d = result.diagnostics[0]
    assert d.code in ("FT009", "FT004") and d.severity == "error"
    assert d.line == 3


def test_five_thousand_nested_mappings_do_not_raise_recursion_error():
    text = "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n"
    result = check(text)
    assert [d.code for d in result.diagnostics] in (["FT009"], ["FT004"])


def test_aliases_that_nest_deeper_than_the_limit_once_expanded_are_refused():
    """Each anchor is shallow where it is written; only the expansion is deep."""
    chain = "x-deep: [&a0 [1]" + "".join(f", &a{k} [*a{k - 1}]" for k in range(1, 600)) + "]\n"
    result = check(MINIMAL + chain)  # must not raise RecursionError
    d = only(result, "FT009")
    assert d.line == 9
    assert "nests more than 64 levels deep" in d.message


# --- YAML features pipelines do not use --------------------------------------


def test_python_object_tag_is_refused():
    d = only(check(MINIMAL + "x-run: !!python/object:os.system ls\n"), "FT010")
    assert at(d) == (9, 8)
    assert "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'" in d.message


def test_custom_local_tag_is_refused():
    d = only(check(MINIMAL + "description: !foo bar\n"), "FT010")
    assert at(d) == (9, 14)
    assert "unsupported YAML tag '!foo'" in d.message
    assert d.path == "$.description"


def test_set_and_binary_tags_are_refused():
    assert only(check(MINIMAL + "x-set: !!set {a, b}\n"), "FT010").line == 9
    assert only(check(MINIMAL + "x-bin: !!binary aGVsbG8=\n"), "FT010").line == 9


def test_complex_mapping_key_is_refused():
    d = only(check(MINIMAL + "? [a, b]\n: 1\n"), "FT010")
    assert at(d) == (9, 3)
    assert "a mapping key must be a plain word" in d.message


# --- keys as written: `on`, yes/no, merge keys, x- extensions -----------------


def test_bare_on_key_stays_the_string_on():
    result = check(MINIMAL + "on: push\nnotify:\n  slack:\n    on: [failure]\n")
    assert result.diagnostics == []
    assert "on" in result.document.data and True not in result.document.data
    assert result.document.data["notify"]["slack"] == {"on": ["failure"]}
    assert result.pipeline.triggers == {"push": {}}
    assert result.pipeline.notify == {"slack": {"on": ["failure"]}}


def test_keys_that_look_like_numbers_or_booleans_stay_strings():
    doc, found = load(b"yes: 1\nno: 2\n1: 3\nnull: 4\n", FILE)
    assert found == []
    assert list(doc.data) == ["yes", "no", "1", "null"]


def test_quoted_yes_as_a_value_is_the_word_without_a_warning():
    result = check(MINIMAL + 'environment:\n  envs:\n    VERBOSE: "yes"\n')
    assert result.diagnostics == []
    assert dict(result.pipeline.envs) == {"VERBOSE": "yes"}


@pytest.mark.parametrize("word, value", [("yes", True), ("no", False), ("on", True), ("off", False)])
def test_unquoted_yes_no_on_off_value_warns_that_yaml_reads_a_boolean(word, value):
    result = check(f'version: "1"\nname: demo\ntasks:\n  - name: a\n    command: x\n    skip: {word}\n')
    d = only(result, "FT203")
    assert at(d) == (6, 11)
    assert d.severity == "warning"
    assert f"'{word}' is read as the boolean {value}" in d.message
    assert f'quote it ("{word}")' in d.message
    assert result.pipeline.task("a").skip is value  # a warning: the pipeline is still valid


def test_merge_key_fills_in_a_task_and_written_keys_win():
    result = check("""\
        version: "1"
        name: demo
        x-defaults: &defaults
          command: echo default
          skip: true
          resources: {cpu: 2, mem: 4g}
        tasks:
          - <<: *defaults
            name: a
            command: echo mine
        """)
    assert result.diagnostics == []
    task = result.pipeline.task("a")
    assert task.command == "echo mine"  # written beats merged
    assert task.skip is True  # merged
    assert task.resources.cpu == 2 and task.resources.mem == 4 << 30


def test_merge_of_several_mappings_prefers_the_earlier_one():
    result = check("""\
        version: "1"
        name: demo
        x-one: &one {command: echo one}
        x-two: &two {command: echo two, skip: true}
        tasks:
          - <<: [*one, *two]
            name: a
        """)
    assert result.diagnostics == []
    assert result.pipeline.task("a").command == "echo one"
    assert result.pipeline.task("a").skip is True


def test_merging_a_scalar_is_refused():
    d = only(check(MINIMAL + "x-s: &s hello\nx-t:\n  <<: *s\n"), "FT010")
    assert "'<<' merges mappings only" in d.message
    assert d.line == 9


def test_chained_merge_keys_resolve_like_yaml_merge():
    result = check("""\
        version: "1"
        name: demo
        x-small: &small {cpu: 1}
        x-big: &big
          <<: *small
          mem: 1g
        tasks:
          - name: a
            command: x
            resources:
              <<: *big
        """)
    assert result.diagnostics == []
    assert result.pipeline.task("a").resources.cpu == 1


def test_x_keys_are_allowed_at_top_level_in_a_task_and_in_resources():
    result = check("""\
        version: "1"
        name: demo
        x-note: anything at all
        tasks:
          - name: a
            x-owner: ml-team
            command: x
            resources:
              cpu: 1
              x-why: [because, reasons]
        """)
    assert result.diagnostics == []
    assert result.pipeline.task("a").resources.accelerators == ()


def test_every_value_and_key_remembers_where_it_was_written():
    doc, found = load(MINIMAL.encode(), FILE)
    assert found == []
    dep = doc.source.value(("tasks", 1, "dependencies", 0))
    assert (dep.line, dep.column) == (7, 20)
    key = doc.source.key(("tasks", 1, "command"))
    assert (key.line, key.column) == (8, 5)
    value = doc.source.value(("tasks", 1, "command"))
    assert (value.line, value.column) == (8, 14)
    # a path that was never written falls back to its nearest written ancestor
    fallback = doc.source.value(("tasks", 1, "resources", "mem"))
    assert (fallback.line, fallback.column) == (6, 5)


def test_dates_are_kept_as_the_text_written():
    result = check(MINIMAL.replace('version: "26.4.4"', "version: 2024-01-31"))
    assert result.diagnostics == []
    assert result.pipeline.version == "2024-01-31"
