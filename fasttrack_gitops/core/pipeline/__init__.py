"""The pipeline model: load a pipeline file, check it, normalise it. Pure: no I/O.

result = check_pipeline(raw_bytes, "pipelines/train.yaml")
result.diagnostics   # every problem, with file, line, column and code
result.pipeline      # a Pipeline when there is no error, else None
"""

from __future__ import annotations

from dataclasses import dataclass

from fasttrack_gitops.core.pipeline import schema, semantics
from fasttrack_gitops.core.pipeline.diagnostics import Diagnostic, has_errors, sort_key
from fasttrack_gitops.core.pipeline.model import Pipeline, Task, normalise
from fasttrack_gitops.core.pipeline.semantics import CodeLookup
from fasttrack_gitops.core.pipeline.yamlsource import Document, Limits, load, paused_gc

__all__ = ["CheckResult", "CodeLookup", "Diagnostic", "Limits", "Pipeline", "Task", "check_pipeline"]


@dataclass
class CheckResult:
    file: str
    diagnostics: list[Diagnostic]
    pipeline: Pipeline | None
    document: Document | None

    @property
    def ok(self) -> bool:
        return self.pipeline is not None


def check_pipeline(
    raw: bytes, file: str, *, limits: Limits = Limits(), code_lookup: CodeLookup | None = None
) -> CheckResult:
    """Load, schema-check and meaning-check one pipeline file's bytes."""
    with paused_gc():
        doc, found = load(raw, file, limits)
        if doc is None:
            return CheckResult(file, found, None, None)
        found += schema.check(doc)
        found += semantics.check(doc, code_lookup)
        found.sort(key=sort_key)
        pipeline = None if has_errors(found) else normalise(doc.data)
        return CheckResult(file, found, pipeline, doc)
