"""Talking to the GitHub Actions runner: workflow commands on stdout, the outputs and step summary files.

Workflow commands are lines `::name key=value,...::data`. The runner
unescapes `%25` `%0D` `%0A` in the data, and also `%3A` `%2C` in property
values (a raw `:` or `,` there would end the property), so those are what
we escape (actions/toolkit, packages/core/src/command.ts).

Text that is not ours (a task's log) could hold a line that looks like a
command (`::add-mask::`, `::error::`, `::stop-commands::`); it is printed
between `::stop-commands::<token>` and `::<token>::` with a random token
the text does not contain, so the runner prints it and obeys none of it.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from fasttrack_gitops.core.render.diagnostics import escape_data, escape_property


def command(name: str, data: str = "", **properties: object) -> str:
    """One workflow command line; properties whose value is None are left out."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(data)}"


def fresh_token(*avoid: str, prefix: str = "ftg") -> str:
    """A random word that none of `avoid` contains (a delimiter or a stop-commands token)."""
    while True:
        token = f"{prefix}_{secrets.token_hex(16)}"
        if not any(token in text for text in avoid):
            return token


class Log:
    """The step's log: plain lines and workflow commands, on one stream (stdout, which the runner reads)."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout  # looked up late: tests capture sys.stdout

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def command(self, name: str, data: str = "", **properties: object) -> None:
        self.line(command(name, data, **properties))

    def add_mask(self, value: str) -> None:
        """Ask the runner to hide the value (and each of its lines: a log shows them one by one)."""
        parts = {value, *(part.strip() for part in value.splitlines())} if "\n" in value or "\r" in value else {value}
        for part in sorted(p for p in parts if p.strip()):
            self.command("add-mask", part)

    def error(self, message: str, **properties: object) -> None:
        self.command("error", message, **properties)

    def warning(self, message: str, **properties: object) -> None:
        self.command("warning", message, **properties)

    def notice(self, message: str, **properties: object) -> None:
        self.command("notice", message, **properties)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.command("group", title)
        try:
            yield
        finally:
            self.command("endgroup")

    def verbatim(self, text: str) -> None:
        """Text printed as it is, with no line of it taken as a workflow command."""
        if not text:
            return
        token = fresh_token(text, prefix="ftg_stop")
        self.command("stop-commands", token)
        self.stream.write(text if text.endswith("\n") else text + "\n")
        self.line(f"::{token}::")


def output_lines(name: str, value: str) -> str:
    """One output in $GITHUB_OUTPUT's syntax: `name=value`, or the delimiter form for a value with line breaks.

    The runner reads the lines up to the delimiter and joins them with
    newlines, so the value is followed by one line end of its own: a value
    ending in a newline keeps it.
    """
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = fresh_token(value, name, prefix="ghadelimiter")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_outputs(path: Path, outputs: Iterable[tuple[str, str]]) -> None:
    """Append the outputs to the runner's outputs file ($GITHUB_OUTPUT)."""
    with open(path, "a", encoding="utf-8") as f:
        for name, value in outputs:
            f.write(output_lines(name, value))


def append_summary(path: Path, markdown: str) -> None:
    """Append Markdown to the step summary file ($GITHUB_STEP_SUMMARY)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(markdown if markdown.endswith("\n") else markdown + "\n")
