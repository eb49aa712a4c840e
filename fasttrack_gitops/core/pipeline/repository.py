"""Checks across all the pipelines of one repository. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, diagnostic

if TYPE_CHECKING:  # the package's __init__ defines CheckResult, and imports the package's modules
    from fasttrack_gitops.core.pipeline import CheckResult


def check_repository(label: str, globs: Sequence[str], results: Sequence[CheckResult]) -> list[Diagnostic]:
    """Diagnostics for the repository as a whole, given the CheckResult of each pipeline file."""
    if not results:
        where = label if label not in ("", ".") else "."
        return [
            diagnostic(
                "FT301",
                f"no pipeline files in {where}: nothing matches {', '.join(globs)}; put "
                "pipelines there, or list where they are under 'pipelines' in .fasttrack.yaml",
                where,
                1,
                1,
            )
        ]
    found: list[Diagnostic] = []
    first: dict[str, str] = {}
    for result in results:
        if result.document is None:
            continue  # a file that did not load has no name to compare
        data = result.document.data
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            m = result.document.source.value(("name",))
            found.append(
                diagnostic(
                    "FT302",
                    f"pipeline name '{name}' is already used by {first[name]}; each "
                    "pipeline needs its own name (it names its checks and its data folder)",
                    result.file,
                    m.line,
                    m.column,
                    "$.name",
                )
            )
        else:
            first[name] = result.file
    return found
