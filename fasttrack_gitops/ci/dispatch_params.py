"""Parameter values for the Action's jobs: its `params` input and a workflow_dispatch event's inputs.

The `params` input (NAME=VALUE lines) applies to every selected pipeline:
a name one of them lacks, or a value that does not fit, stops the step
(exit 2) before anything runs. A workflow_dispatch event's `inputs` are
the workflow's own form, which may hold inputs meant for other steps, so
an input applies to a pipeline only when the pipeline has a parameter of
that name; the `params` input wins over it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from fasttrack_gitops.ci.session import Prepared
from fasttrack_gitops.core.pipeline.params import parse_lines
from fasttrack_gitops.engine.plan import check_params


def dispatch_inputs(event_name: str, payload: bytes) -> dict[str, Any]:
    """A workflow_dispatch event's `inputs` (names to text or booleans); {} for any other event."""
    if event_name != "workflow_dispatch":
        return {}
    try:
        inputs = json.loads(payload).get("inputs")
    except (ValueError, AttributeError):
        return {}
    return (
        {str(k): v for k, v in inputs.items() if isinstance(v, str | bool | int | float)}
        if isinstance(inputs, dict)
        else {}
    )


def with_params(prepared: Prepared, params_input: str | None, dispatched: Mapping[str, Any]) -> Prepared:
    """The selections with their parameter values in their triggers (checked: ParamError when one does not fit)."""
    given = parse_lines(params_input or "", where="the params input:")
    selections = []
    for selection in prepared.choice.selections:
        names = {p.name for p in prepared.found.valid[selection.path].params}
        overrides = {**{k: v for k, v in dispatched.items() if k in names}, **given}
        trigger = {**selection.trigger, "params": overrides} if overrides else selection.trigger
        selections.append(replace(selection, trigger=trigger))
    found = replace(prepared, choice=replace(prepared.choice, selections=tuple(selections)))
    check_params(found.found, found.choice.selections)
    return found
