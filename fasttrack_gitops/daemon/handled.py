"""What handling one event did (`Handled`), and the small pieces the daemon's handlers share to say it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.pipeline.params import ParamError
from fasttrack_gitops.engine.plan import Pipelines, check_params


@dataclass
class Handled:
    """What one event did: the jobs it made (or found made already), and a line for the log and the webhook reply."""

    jobs: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    note: str = ""
    failed: bool = False  # the daemon could not handle it (its state, a bug): a redelivery should try again
    unavailable: bool = False  # failed because its state database refused a write (locked, full): 503, not 500
    refused: bool = False  # the request itself is wrong (a parameter the pipeline lacks): no retry helps
    coalesced: bool = False  # the same event as another delivery: its handling, shared, not done again

    def shared(self) -> Handled:
        """This handling as the answer to another delivery of the same event: its jobs, none created by it."""
        return replace(self, jobs=list(self.jobs), created=[], coalesced=True)

    def as_dict(self) -> dict:
        """The reply's fields (dataclasses.asdict's deep copy, field by field, costs a burst's thousands dearly)."""
        return {
            "jobs": self.jobs,
            "created": self.created,
            "note": self.note,
            "failed": self.failed,
            "refused": self.refused,
            "coalesced": self.coalesced,
        }


def refused_params(pipes: Pipelines, selections: list, what: str = "") -> Handled | None:
    """A refusal when a selection's parameter values do not fit its pipeline (no job is made for any)."""
    try:
        check_params(pipes, selections)
    except ParamError as e:
        return Handled(note=f"{what}{e}", refused=True)
    return None


def with_trigger(selection: triggers.Selection, **extra) -> triggers.Selection:
    """The selection with more facts in its trigger record (its key stays: the same trigger, better described)."""
    return replace(selection, trigger={**selection.trigger, **extra})


def selection_note(what: str, selections: list, pipes: Pipelines) -> str:
    parts = [what]
    parts.append(f"runs {', '.join(s.name for s in selections)}" if selections else "selects no pipeline")
    if pipes.invalid:
        parts.append(f"{len(pipes.invalid)} invalid pipeline file(s): {', '.join(sorted(pipes.invalid))}")
    return "; ".join(parts)
