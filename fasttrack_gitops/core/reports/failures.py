"""The report's `text`: each failed task, why it failed and the tail of its log, within GitHub's limit. Pure.

GitHub refuses a text over 65,535 UTF-8 bytes. When the tails together are
too long, each keeps the whole lines at its end within a fair share of the
room (a short tail leaves what it does not use to the others), and says how
much it left out and where to read it all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fasttrack_gitops.core.job import JobView, TaskInstance, TaskState
from fasttrack_gitops.core.pipeline.model import Pipeline
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.reports.conclusion import plural, why
from fasttrack_gitops.core.reports.markdown import MAX_BYTES, byte_size, code, fence_for, inline, shorten
from fasttrack_gitops.core.reports.summary import ICONS, NOTE_MAX


def failures_text(view: JobView, pipeline: Pipeline | None, tails: Mapping[str, str]) -> str:
    """A section per failed task: why, then the tail of its last attempt's log in a code block.

    When the tails together are too long, each keeps its last lines within a
    fair share of the room (a short tail leaves its unused share to the others).
    """
    failed = [i for i in view.tasks.values() if i.state == TaskState.FAILED]
    if pipeline is None or not failed:
        return ""
    heads = {i.name: _failure_heading(i, pipeline) for i in failed}
    # What each section takes besides its log lines: heading, fences, notes (at their longest).
    framing = sum(
        byte_size(heads[i.name])
        + byte_size(_tail_block(view.job.id, i, tails.get(i.name, ""), "\n"))
        + 2 * byte_size(fence_for(tails.get(i.name, "")))
        + 8
        for i in failed
    )
    shares = _shares([byte_size(tails.get(i.name, "")) for i in failed], max(0, MAX_BYTES - framing))
    sections = []
    for instance, share in zip(failed, shares):
        tail = tails.get(instance.name, "")
        sections.append(heads[instance.name] + _tail_block(view.job.id, instance, tail, _keep_end(tail, share)))
    return "\n".join(sections)


def _failure_heading(instance: TaskInstance, pipeline: Pipeline) -> str:
    tolerated = pipeline.task(instance.name).continue_on_failure
    reason = shorten(instance.reason, NOTE_MAX) or why(instance)
    attempt = (
        f"Attempt {instance.attempts[-1].number} of {len(instance.attempts)}"
        f"{f', {format_duration(instance.duration)}' if instance.duration is not None else ''}. "
        if instance.attempts
        else "It never started. "
    )
    return (
        f"### {ICONS['failed']} {code(instance.name)}: {inline(reason)}\n\n{attempt}"
        f"{'It may fail (continue_on_failure): the job went on. ' if tolerated else ''}"
    )


def _tail_block(job_id: str, instance: TaskInstance, tail: str, kept: str) -> str:
    """The end of the log in a code block no line of it can close; `kept` is what fits of `tail`."""
    if not instance.attempts:
        return "\n"
    if not tail:
        return "Its log is empty.\n"
    see = f"`fasttrack-gitops jobs logs {job_id} {instance.name}`"
    if not kept:
        return f"Its log is too long to show beside the others here; see {see}.\n"
    cut = len(tail) - len(kept)
    note = f"\n_(the first {cut} characters of this tail are left out to fit; see {see})_\n" if cut else ""
    lines = kept.count("\n") + (not kept.endswith("\n"))
    fence = fence_for(kept)
    return (
        f"The last {plural(lines, 'line')} of its log:\n\n{fence}text\n{kept}"
        f"{'' if kept.endswith(chr(10)) else chr(10)}{fence}\n{note}"
    )


def _shares(sizes: Sequence[int], room: int) -> list[int]:
    """Split `room` fairly: each gets up to an equal share, and what a small one leaves goes to the others."""
    shares = [0] * len(sizes)
    left = room
    order = sorted(range(len(sizes)), key=sizes.__getitem__)
    for k, i in enumerate(order):
        shares[i] = min(sizes[i], left // (len(sizes) - k))
        left -= shares[i]
    return shares


def _keep_end(text: str, max_bytes: int) -> str:
    """The whole lines at the end of `text` that fit in `max_bytes` (the end of a log is what tells).

    One line longer than that keeps its end, marked with an ellipsis.
    """
    if byte_size(text) <= max_bytes:
        return text
    if max_bytes < 8:
        return ""
    end = text.encode()[-(max_bytes - 3) :].decode("utf-8", "ignore")
    newline = end.find("\n")
    return end[newline + 1 :] if 0 <= newline < len(end) - 1 else "…" + end
