"""Terminal output as HTML: colours and bold kept as CSS classes, every other escape sequence dropped (pure).

A task's log is what its program printed, ANSI escapes included. The
console shows colours (SGR 30-37, 90-97 and bold) as `ansi-*` classes, never
inline styles (the console's CSP allows none), and removes whatever else a
terminal would act on: cursor moves, screen clears, OSC titles and links,
stray ESC and other control characters. The text itself is HTML-escaped.
Linear in the input, so a 1 MB line costs what its length costs.
"""

from __future__ import annotations

import re
from html import escape

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), other ESC sequences (charsets, RIS), lone ESC, 8-bit CSI.
_ESCAPES = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]?|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def to_html(text: str) -> str:
    """The text, escaped, with its SGR colours as <span class="ansi-..."> and other escapes removed."""
    out: list[str] = []
    fg: int | None = None
    bold = False
    open_span = False
    at = 0

    def emit(chunk: str) -> None:
        if chunk:
            out.append(escape(_CONTROLS.sub("", chunk.replace("\r\n", "\n").replace("\r", "\n")), quote=False))

    for m in _ESCAPES.finditer(text):
        emit(text[at : m.start()])
        at = m.end()
        if m.group(2) != "m":
            continue  # not a colour: dropped
        fg, bold = _sgr(m.group(1) or "0", fg, bold)
        if open_span:
            out.append("</span>")
            open_span = False
        classes = ([f"ansi-{fg}"] if fg is not None else []) + (["ansi-bold"] if bold else [])
        if classes:
            out.append(f'<span class="{" ".join(classes)}">')
            open_span = True
    emit(text[at:])
    if open_span:
        out.append("</span>")
    return "".join(out)


def _sgr(params: str, fg: int | None, bold: bool) -> tuple[int | None, bool]:
    codes = [int(p) if p.isdigit() else 0 for p in params.split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            fg, bold = None, False
        elif code == 1:
            bold = True
        elif code == 22:
            bold = False
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fg = code
        elif code == 39:
            fg = None
        elif code in (38, 48):  # 256 colours or RGB: their arguments are skipped, the colour not shown
            i += 2 if codes[i + 1 : i + 2] == [5] else 4
        i += 1
    return fg, bold
