"""The end of a failed task's log, for its report: read from the end of the file, whole lines, masked.

A task's log can be gigabytes (a training loop printing every step) while a
report shows its last hundred lines, so the tail is read by seeking back at
most `max_bytes` from the end, never by reading the file. The only I/O of
reporting lives here; core/reports/ gets the tails as plain strings.

Cutting a file at a byte offset can cut a secret in two: the half after the
cut is no longer the secret and masking would not find it. So the order is:
cut, mask, then drop the partial first line, and at least as many characters
as the longest secret has, so no fragment of one survives at the edge.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from fasttrack_gitops.core.job import TaskState
from fasttrack_gitops.core.masking import masked

MAX_BYTES = 64 * 1024
MAX_LINES = 100
ELLIPSIS = "…"
# Characters before a cut secret's fragment that a cut may leave: replacement characters of a split UTF-8
# sequence, the rest of a terminal escape that stripping no longer recognises.
EDGE = 32
# Terminal escapes (colours, cursor moves) and control characters other than tab and line ends: a code
# block shows them as garbage, and one inside a secret would hide it from masking.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles, hyperlinks
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)  # control characters but tab, newline, carriage return


def log_tail(path: Path, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES, masks: Sequence[str] = ()) -> str:
    """The last `max_lines` whole lines within the last `max_bytes` bytes of a log, masked; "" when missing.

    Reads at most `max_bytes` bytes however large the file is. Output written
    with carriage returns (progress bars) shows as a terminal would: only what
    follows the last one on each line.
    """
    try:
        data, cut = _read_end(Path(path), max_bytes)
    except FileNotFoundError:
        return ""  # an attempt that could not start wrote nothing
    except OSError as e:
        return f"(the log {path} cannot be read: {e.strerror or e})\n"
    masks = tuple(m for m in masks if m)
    text = masked(_ESCAPES.sub("", data.decode("utf-8", "replace")), masks)
    if cut:
        text = _drop_partial_start(text, masks)
    return _last_lines(text, max_lines)


def failed_log_tails(store, view, *, masks: Sequence[str] = (), **limits) -> dict[str, str]:
    """Task name -> the tail of its last attempt's log, for each FAILED task that ran (limits: max_bytes, max_lines)."""
    tails = {}
    for name, instance in view.tasks.items():
        if instance.state == TaskState.FAILED and instance.attempts:
            path = store.log_path(view.job.id, name, instance.attempts[-1].number)
            tails[name] = log_tail(path, masks=masks, **limits)
    return tails


def _read_end(path: Path, max_bytes: int) -> tuple[bytes, bool]:
    """The file's last `max_bytes` bytes, and whether anything before them was left out."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - max(0, max_bytes))
        f.seek(start)
        return f.read(size - start), start > 0  # a log still growing: stop at the size seen


def _drop_partial_start(text: str, masks: tuple[str, ...]) -> str:
    """Text read from a cut: from the first line that begins past any fragment of a cut secret.

    A fragment is a proper suffix of a secret, so it ends at the first line
    end unless the secret itself holds one: then the first line end at least
    that secret's length (and EDGE) in. A window without a line end there is
    one long line: its end is kept, marked as cut.
    """
    spanning = [len(m) for m in masks if "\n" in m or "\r" in m]
    reach = max(spanning) + EDGE if spanning else 0
    for match in re.finditer(r"[\r\n]", text):
        if match.end() > reach:
            return text[match.end() :]
    reach = max((len(m) for m in masks), default=0) + EDGE
    return ELLIPSIS + text[reach:] if len(text) > reach else ""


def _last_lines(text: str, max_lines: int) -> str:
    """The last `max_lines` lines as a terminal shows them, each ending in a newline."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    shown = [_as_displayed(line) for line in lines[-max_lines:]] if max_lines > 0 else []
    return "".join(line + "\n" for line in shown)


def _as_displayed(line: str) -> str:
    """What a terminal leaves of a line that carriage returns rewrote (tqdm-style progress bars)."""
    return line.rstrip("\r").rsplit("\r", 1)[-1]
