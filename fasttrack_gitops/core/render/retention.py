"""What `gc` prints: the things it removed (or would), their bytes, and the jobs past a limit it kept. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fasttrack_gitops.core.render.jobs import table


def human_size(n: int | None) -> str:
    """1536 -> '1.5 KiB'; None (not known) -> '?'."""
    if n is None:
        return "?"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def gc_text(
    items: Sequence[tuple[str, str, str, int | None]],
    kept: Mapping[str, str],
    *,
    dry_run: bool,
    freed: int,
    seconds: float,
) -> str:
    """The table of (kind, name, detail, bytes), the jobs kept past a limit, and one line of totals."""
    parts = []
    if items:
        rows = [(kind, name, detail, human_size(size)) for kind, name, detail, size in items]
        parts.append(table(rows, ("WHAT", "NAME", "DETAIL", "SIZE")))
    for job_id, why in sorted(kept.items()):
        parts.append(f"kept job {job_id}: {why}\n")
    jobs = sum(1 for item in items if item[0] == "job")
    verb = "would free" if dry_run else "freed"
    head = "dry run: would remove" if dry_run else "removed"
    parts.append(
        f"{head} {jobs} job(s) and {len(items) - jobs} other item(s); {verb} {human_size(freed)} ({seconds:.2f} s)\n"
    )
    return "".join(parts)
