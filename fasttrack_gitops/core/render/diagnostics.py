"""Diagnostics as people and machines read them: compiler-style text, JSON, GitHub workflow commands."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic


def text_line(d: Diagnostic, color: bool = False) -> str:
    """'file:line:col: error FT103: message' (the shape editors and CI problem matchers parse)."""
    severity = d.severity
    if color:  # ANSI bold red or yellow, as click.style writes them; the core imports no terminal library
        severity = f"\x1b[{31 if d.is_error else 33}m\x1b[1m{severity}\x1b[0m"
    # One diagnostic, one line: a newline inside a quoted value must not start a fake one.
    message = d.message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{d.file}:{d.line}:{d.column}: {severity} {d.code}: {message}"


def summary_line(files: int, errors: int, warnings: int) -> str:
    what = f"{files} pipeline file{'s' if files != 1 else ''}"
    if not errors and not warnings:
        return f"{what} valid"
    counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((errors, "error"), (warnings, "warning")) if n]
    return f"{what} checked: {', '.join(counts)}"


def as_json(diagnostics: Sequence[Diagnostic], files: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(
        {
            "diagnostics": [d.as_dict() for d in diagnostics],
            "files": files,
            "errors": sum(d.is_error for d in diagnostics),
            "warnings": sum(not d.is_error for d in diagnostics),
        },
        indent=2,
    )


def github_command(d: Diagnostic) -> str:
    """A workflow command that GitHub shows as an annotation on the file and line."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in (("file", d.file), ("line", d.line), ("col", d.column), ("title", d.code))
    )
    return f"::{d.severity}{' ' if props else ''}{props}::{escape_data(d.message)}"


def escape_data(text: str) -> str:
    """A workflow command's message as GitHub reads it back (the runner's own escaping rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (file=, title=): also ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
