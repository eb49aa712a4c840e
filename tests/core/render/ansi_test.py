"""Terminal output as the console shows it: colours as classes, every other escape gone, the text escaped."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.render.ansi import to_html


def test_colours_and_bold_become_classes_and_reset_closes_them():
    assert to_html("\x1b[31mred\x1b[0m plain") == '<span class="ansi-31">red</span> plain'
    assert to_html("\x1b[1;92mok\x1b[22m still green\x1b[39m") == (
        '<span class="ansi-92 ansi-bold">ok</span><span class="ansi-92"> still green</span>'
    )
    assert to_html("\x1b[38;5;208morange\x1b[0m") == "orange"  # 256 colours: text kept, colour not shown


def test_cursor_moves_clears_titles_and_control_characters_are_dropped():
    text = "a\x1b[2J\x1b[10;5Hb\x1b]0;title\x07c\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\\x00\x08d\x1bce\r\nf"
    assert to_html(text) == "abclinkde\nf"


def test_markup_is_escaped():
    assert to_html('<script>alert("x")</script>&') == '&lt;script&gt;alert("x")&lt;/script&gt;&amp;'


def test_a_one_megabyte_line_costs_its_length():
    line = ("x" * 1000 + "\x1b[32m") * 1000
    started = time.perf_counter()
    out = to_html(line)
    assert time.perf_counter() - started < 1.0 and out.count("x") == 1_000_000


@given(st.text(alphabet=st.sampled_from(["\x1b", "[", "]", "3", "1", "m", ";", "<", "a", "\x07", "\\"]), max_size=60))
def test_no_input_leaves_an_escape_or_raw_markup(text):
    out = to_html(text)
    assert "\x1b" not in out and "<" not in out.replace("<span", "").replace("</span>", "")
