"""Markdown that stays Markdown when it is cut or holds what a task printed: limits, fences, cells. Pure.

GitHub counts a check run's summary and text in UTF-8 bytes (65,535); a
log can hold backticks, pipes and anything else. Everything here keeps the
page well-formed: cuts at a line end and closes an open fence, fences
longer than any run inside them, table cells without line breaks or pipes.
"""

from __future__ import annotations

import re

MAX_BYTES = 65_535  # a check run's summary and text, in UTF-8 bytes

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def fit(markdown: str, job_id: str, *, limit: int = MAX_BYTES) -> str:
    """`markdown` within `limit` UTF-8 bytes: cut at a line end, code blocks closed, a note of what is left out."""
    if byte_size(markdown) <= limit:
        return markdown
    budget = limit - byte_size(_truncation_note(len(markdown), job_id))
    kept: list[str] = []
    size, fence, opened_at = 0, None, 0
    for line in _lines(markdown):
        after = _fence_after(fence, line)
        closing = byte_size(after[0]) + 1 if after else 0
        if size + byte_size(line) + closing > budget:
            break
        if fence is None and after is not None:
            opened_at = len(kept)
        kept.append(line)
        size += byte_size(line)
        fence = after
    if fence is not None and fence[1] == "mermaid":
        del kept[opened_at:]  # half a graph is a syntax error: leave it out whole
        fence = None
    shown = "".join(kept)
    closed = shown + (fence[0] + "\n" if fence else "")
    return closed + _truncation_note(len(markdown) - len(shown), job_id)


def _truncation_note(left_out: int, job_id: str) -> str:
    return (
        f"\n_(truncated: {left_out} more characters; see the job's log with `fasttrack-gitops jobs logs {job_id}`)_\n"
    )


def _fence_after(fence: tuple[str, str] | None, line: str) -> tuple[str, str] | None:
    """The open code fence (marker, info) after `line`, given the one open before it."""
    match = _FENCE.match(line.rstrip("\n"))
    if fence is None:
        return (match[1], match[2].strip()) if match else None
    closes = match and match[1][0] == fence[0][0] and len(match[1]) >= len(fence[0]) and not match[2].strip()
    return None if closes else fence


def _lines(text: str) -> list[str]:
    """Lines with their newline (only \\n: other line separators are not Markdown's)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def fence_for(content: str) -> str:
    """A backtick fence longer than any run of backticks in `content`, so the content cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    return "`" * max(3, longest + 1)


def code(text: str, *, cell: bool = False) -> str:
    """Inline code that survives backticks inside it (and pipes, in a table cell).

    Code spans show their text as is (no HTML, no entities), so only line breaks need care.
    """
    text = re.sub(r"\s+", " ", text).strip()
    if cell:
        text = text.replace("|", "\\|")
    ticks = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def cell(text: str) -> str:
    return inline(text).replace("|", "\\|")


def inline(text: str) -> str:
    """One line of text that cannot open HTML or break the line it sits in."""
    return re.sub(r"\s+", " ", text).strip().replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """`text` on one line within `limit` characters, with "…" where it was cut (services refuse longer texts,
    they do not cut them)."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def byte_size(text: str) -> int:
    return len(text.encode("utf-8"))
