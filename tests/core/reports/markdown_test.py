"""Markdown that stays Markdown: cut within GitHub's limit with its code blocks closed and no half graph."""

from __future__ import annotations

import re

from core.reports.markdown_reading import fenced_blocks, size

from fasttrack_gitops.core.reports.markdown import MAX_BYTES, cell, code, fit, inline, shorten


def test_fit_closes_a_code_block_it_cuts_and_says_how_much_it_left_out():
    markdown = "### a log\n\n````text\n" + "".join(f"line {i} ✅ ```\n" for i in range(10_000)) + "````\n\nafter\n"

    cut = fit(markdown, "j1")

    assert size(cut) <= MAX_BYTES < size(markdown)
    ((info, content),) = fenced_blocks(cut)
    assert info == "text" and content.endswith("```\n") and markdown.startswith("### a log\n\n````text\n" + content)
    left_out = int(re.search(r"truncated: (\d+) more characters", cut)[1])
    assert len("### a log\n\n````text\n" + content) + left_out == len(markdown)
    assert "`fasttrack-gitops jobs logs j1`" in cut


def test_fit_leaves_out_a_graph_it_would_cut():
    graph = "```mermaid\nflowchart LR\n" + "".join(f'  t{i}["{"x" * 50}"]\n' for i in range(2000)) + "```\n"
    markdown = "| task |\n| --- |\n| a |\n\n" + graph

    cut = fit(markdown, "j1")

    assert cut.startswith("| task |\n| --- |\n| a |\n\n\n_(truncated: ")
    assert fenced_blocks(cut) == []


def test_shorten_makes_one_line_within_the_limit_and_marks_the_cut():
    assert shorten("exit code 3", 80) == "exit code 3"
    assert shorten("  CUDA out of\n\tmemory  ", 80) == "CUDA out of memory"
    assert shorten("CUDA out of memory", 13) == "CUDA out of…"  # no space left before the mark
    assert len(shorten("x" * 500, 255)) == 255


def test_inline_text_and_code_cannot_break_their_line_or_cell():
    assert inline("a <b>\nc") == "a &lt;b&gt; c"
    assert cell("a | b") == "a \\| b"
    assert code("run `make`") == "`` run `make` ``"  # padded: a span cannot end on its own backtick
    assert code("a | b", cell=True) == "`a \\| b`"
