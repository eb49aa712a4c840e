"""Markdown read the way a person (and CommonMark) reads it: table rows, fenced blocks, the graph's colours."""

from __future__ import annotations

import re


def table_rows(summary: str) -> list[list[str]]:
    """The task table's rows (header and rule left out), cell by cell."""
    lines = [line for line in summary.split("\n") if line.startswith("| ")][2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(info, content) of every fenced code block, read the CommonMark way; fails on one left open."""
    blocks, fence, info, content = [], None, "", []
    for line in markdown.split("\n"):
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if fence is None:
            if match:
                fence, info, content = match[1], match[2].strip(), []
        elif match and match[1][0] == fence[0] and len(match[1]) >= len(fence) and not match[2].strip():
            blocks.append((info, "".join(f"{text}\n" for text in content)))
            fence = None
        else:
            content.append(line)
    assert fence is None, f"a {fence}{info} block is left open"
    return blocks


def mermaid_classes(summary: str) -> dict[str, str]:
    """Node id -> the state class the graph colours it with."""
    (graph,) = [content for info, content in fenced_blocks(summary) if info == "mermaid"]
    return dict(re.findall(r"^  class (t\d+) (\w+)$", graph, re.M))


def size(text: str) -> int:
    return len(text.encode())
