"""Markdown that stays Markdown: cut within GitHub's limit with its code blocks closed and no half graph."""

from __future__ import annotations

import re

from core.reports.markdown_reading import fenced_blocks, size

from fasttrack_gitops.core.reports.markdown import MAX_BYTES, fit


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
