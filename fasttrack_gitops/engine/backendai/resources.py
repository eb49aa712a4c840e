"""How much the cluster would still give us: `POST /resource/check-presets` (backendai-api.md, "Capacity").

    found = await check_presets(client, group="default")
    found.remaining[None]      # Resources free for a session in the default scaling group, now
    found.remaining["gpu"]     # ... in the scaling group "gpu"
    found.limits               # the most the keypair and the project may ever hold at once

The manager answers slot strings of decimals per limit ("cpu": "2", "mem":
"8589934592", "cuda.shares": "1.5"); the keypair's, the project's (NaN
everywhere when the project's resource visibility is off) and each scaling
group's. What is free in a group is the least of the keypair's remaining, the
project's remaining and the group's own; for the default group (None) the
whole cluster's `scaling_group_remaining` stands in, since the manager picks
that group itself. A slot that is NaN or Infinity, or that one answer leaves
out, has no limit there (math.inf; scheduler.UNLIMITED_MEM for memory); cpu
or mem that no answer names has none at all. An accelerator no answer names
is one the cluster does not know (the manager lists every slot type it
knows in each answer), so none of it is free: a task asking for it fails at
once instead of being refused at creation.

The manager counts a session as using its slots once it is scheduled, not
while PENDING; what we know of our own sessions' statuses lags a little
behind. `held` says which of a job's sessions hold slots: those we saw
scheduled, and of those we still think waiting, as many as the keypair's
`using` in their group has room for beyond the sessions we saw scheduled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fasttrack_gitops.core.pipeline.model import Resources
from fasttrack_gitops.core.scheduler import UNLIMITED_MEM
from fasttrack_gitops.engine.backendai.client import Client

CHECK_PRESETS = "/resource/check-presets"


@dataclass(frozen=True)
class ClusterCapacity:
    remaining: Mapping[str | None, Resources]  # per scaling group, None for the default one
    limits: Resources  # the keypair's and the project's limits together
    using: Mapping[str | None, Mapping[str, float]]  # what the keypair's sessions hold, per scaling group


async def check_presets(
    client: Client, *, group: str | None = None, scaling_group: str | None = None
) -> ClusterCapacity:
    """What the keypair may still ask for, per scaling group. BackendAIError from the call; ValueError when the
    answer is not check-presets' shape."""
    body = {"scaling_group": scaling_group, "group": group or "default"}
    doc = await client.request("POST", CHECK_PRESETS, json=body, idempotent=True)
    return parse_check_presets(doc)


def parse_check_presets(doc: Any) -> ClusterCapacity:
    """The answer read into Resources; ValueError when it is not check-presets' shape."""
    if not isinstance(doc, dict) or not isinstance(doc.get("scaling_groups"), dict):
        raise ValueError("the manager's answer to check-presets has no scaling_groups")
    keypair, project = _slots(doc, "keypair_remaining"), _slots(doc, "group_remaining")
    remaining: dict[str | None, Resources] = {None: _least(keypair, project, _slots(doc, "scaling_group_remaining"))}
    using: dict[str | None, Mapping[str, float]] = {None: _slots(doc, "keypair_using")}
    for name, group in doc["scaling_groups"].items():
        remaining[str(name)] = _least(keypair, project, _slots(group, "remaining"))
        using[str(name)] = _slots(group, "using")
    return ClusterCapacity(remaining, _least(_slots(doc, "keypair_limits"), _slots(doc, "group_limits")), using)


def held(
    seen: list[Resources], unsure: list[Resources], all_seen: list[Resources], using: Mapping[str, float]
) -> list[Resources]:
    """Which of a job's sessions in one group hold slots: those `seen` scheduled, and of the `unsure` ones (still
    waiting, as far as we know), those that fit in the group's `using` beyond `all_seen` (every session we saw
    scheduled there, other jobs' too)."""
    room = dict(using)
    for r in all_seen:
        for slot, amount in _slot_map(r).items():
            room[slot] = room.get(slot, 0.0) - amount
    found = list(seen)
    for r in unsure:
        needs = {slot: amount for slot, amount in _slot_map(r).items() if amount}
        if needs and all(amount <= room.get(slot, 0.0) for slot, amount in needs.items()):
            found.append(r)
            for slot, amount in needs.items():
                room[slot] -= amount
    return found


def _slot_map(r: Resources) -> dict[str, float]:
    return {"cpu": r.cpu, "mem": float(r.mem), **dict(r.accelerators)}


def _slots(doc: Any, key: str) -> dict[str, float]:
    """One answer's slots as numbers; NaN and Infinity (no limit) as math.inf."""
    found = doc.get(key) if isinstance(doc, dict) else None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise ValueError(f"the manager's {key} is not a map of resource slots: {found!r}")
    slots = {}
    for slot, value in found.items():
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"the manager's {key}.{slot} is not a number: {value!r}") from None
        slots[str(slot)] = max(0.0, float(amount)) if amount.is_finite() else math.inf
    return slots


def least(*found: Resources) -> Resources:
    """Per slot, the least of some capacities (an accelerator one of them lacks is not there)."""
    slots = [_slot_map(r) for r in found]
    shared = set.intersection(*(set(s) for s in slots)) if slots else set()
    return _resources((slot, min(s[slot] for s in slots)) for slot in shared)


def _least(*answers: Mapping[str, float]) -> Resources:
    """Per slot, the least of the answers that limit it; a slot none of them limits has no limit."""
    least: dict[str, float] = {}
    for answer in answers:
        for slot, amount in answer.items():
            least[slot] = min(amount, least.get(slot, math.inf))
    return _resources(least.items())


def _resources(slots: Iterable[tuple[str, float]]) -> Resources:
    found = dict(slots)
    cpu, mem = found.pop("cpu", math.inf), found.pop("mem", None)
    return Resources(
        cpu=cpu,
        mem=UNLIMITED_MEM if mem is None or mem >= UNLIMITED_MEM else int(mem),
        accelerators=tuple(sorted(found.items())),
    )
