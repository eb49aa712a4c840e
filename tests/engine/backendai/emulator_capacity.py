"""A cluster of limited size in the emulator: scaling groups with slots, 23.09's scheduler passes, check-presets.

    cluster = install(emu, groups={"default": {"cpu": 2}}, pass_interval=1.0)   # after emulator_sessions

Each scaling group has its agents' total slots (`groups`; mem unset: 1 TiB).
A session uses its requested slots from the moment the scheduler places it
until it ends (TERMINATED, CANCELLED, ERROR), as the manager's agents'
occupied_slots do; `others` holds slots other users occupy. Placement is
23.09's dispatcher reduced to what matters here: a session that fits when it
is enqueued (and no older one waits in its group) is placed at once, as the
SessionEnqueued event's pass does; any other waits PENDING for the next
timer pass, every `pass_interval` seconds (23.09: 10 s), which places the
waiting sessions that fit, oldest first. So asking for more than fits is
slower, as on the real manager.

`POST /resource/check-presets` answers 23.09's shape (api/resource.py
check_presets): keypair limits/using/remaining (limits from `keypair_limits`,
"Infinity" for a slot without one), group_* NaN-filled (project resource
visibility off, the default), per scaling group its user's `using` and its
`remaining` (capped by the keypair's remaining), `scaling_group_remaining`
over all groups, `presets: []`. Slot values are decimal strings. 400 for an
unknown project or scaling group, as 23.09.

`peak` is the most sessions that were ever asked for and not yet ended at
once: what a test of "never more than N requested at once" reads; `waited`
counts the sessions that did not fit when enqueued.
"""

from __future__ import annotations

import json
import re
import threading
from decimal import Decimal
from typing import Any

from engine.backendai.emulator import Emulator, Reply
from engine.backendai.emulator_sessions import EmuSession, Sessions

ENDED = ("TERMINATED", "CANCELLED", "ERROR")
DEFAULT_MEM = 1 << 40
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class Cluster:
    def __init__(
        self,
        sessions: Sessions,
        groups: dict[str, dict[str, float]],
        *,
        pass_interval: float = 10.0,
        keypair_limits: dict[str, float] | None = None,
        others: dict[str, dict[str, float]] | None = None,
        projects: tuple[str, ...] = ("default",),
    ):
        self.sessions, self.emu = sessions, sessions.emu
        self.groups = {name: {"mem": DEFAULT_MEM, **slots} for name, slots in groups.items()}
        self.pass_interval = pass_interval
        self.keypair_limits = dict(keypair_limits or {})
        self.others = {name: dict(slots) for name, slots in (others or {}).items()}
        self.projects = projects
        self.placed: set[str] = set()  # ids of sessions the scheduler placed
        self._queue: list[EmuSession] = []  # those that did not fit when enqueued, oldest first
        self.passes = 0  # timer passes so far
        self.peak = 0
        self.waited = 0  # sessions that did not fit when enqueued and waited for a timer pass
        self._changed = threading.Condition(sessions._lock)
        self._thread = threading.Thread(target=self._timer, daemon=True)

    # -- placing sessions ------------------------------------------------------------------------------
    def gate(self, s: EmuSession) -> bool:
        """Called by the session's lifecycle thread: True once placed, False when it was cancelled meanwhile."""
        with self._changed:
            self.peak = max(self.peak, sum(1 for x in self.sessions.sessions if x.status not in ENDED))
            if not any(group_of(x) == group_of(s) for x in self._pending()) and self._fits(s):
                self.placed.add(s.id)  # the SessionEnqueued pass
                return True
            self.waited += 1
            self._queue.append(s)
            while s.id not in self.placed:
                if s.cancelled.is_set() or self.emu.stopping.is_set():
                    return False
                self._changed.wait(0.05)
            return True

    def _timer(self) -> None:
        while not self.emu.stopping.wait(self.pass_interval):
            with self._changed:
                self.passes += 1
                for s in self._pending():
                    if self._fits(s):
                        self.placed.add(s.id)
                self._changed.notify_all()

    def _pending(self) -> list[EmuSession]:
        """The queue of sessions waiting for a pass (a destroyed one leaves it)."""
        self._queue = [s for s in self._queue if s.id not in self.placed and s.status == "PENDING"]
        return self._queue

    def _fits(self, s: EmuSession) -> bool:
        group = group_of(s)
        if group not in self.groups:
            return True
        free = self.remaining(group)
        kept = self.keypair_remaining()
        return all(
            amount <= min(free.get(slot, 0), kept.get(slot, Decimal("Infinity")))
            for slot, amount in slots_of(s).items()
        )

    # -- what is used and free -------------------------------------------------------------------------
    def using(self, group: str | None = None) -> dict[str, Decimal]:
        """Slots our sessions occupy (in one group, or all)."""
        total = {slot: Decimal(0) for slot in self.slot_types()}
        for s in self.sessions.sessions:
            if s.id in self.placed and s.status not in ENDED and group in (None, group_of(s)):
                for slot, amount in slots_of(s).items():
                    total[slot] = total.get(slot, Decimal(0)) + amount
        return total

    def remaining(self, group: str) -> dict[str, Decimal]:
        """The group's agents' available slots minus what is occupied, ours and others'."""
        used, others = self.using(group), self.others.get(group, {})
        have = self.groups[group]
        return {slot: Decimal(str(have.get(slot, 0))) - used[slot] - Decimal(str(others.get(slot, 0))) for slot in used}

    def keypair_remaining(self) -> dict[str, Decimal]:
        used = self.using()
        return {slot: self._limit(slot) - used[slot] for slot in used}

    def _limit(self, slot: str) -> Decimal:
        return Decimal(str(self.keypair_limits[slot])) if slot in self.keypair_limits else Decimal("Infinity")

    def slot_types(self) -> list[str]:
        return list(self.sessions.slots)

    # -- POST /resource/check-presets ------------------------------------------------------------------
    def check_presets(self, req) -> Reply:
        try:
            doc = json.loads(req.body or b"{}")
        except ValueError:
            return _invalid("Malformed body")
        unknown = [key for key in doc if key not in ("scaling_group", "group")]
        if unknown:
            return _invalid("Input validation error", {unknown[0]: f"{unknown[0]} is not allowed key"})
        if doc.get("group", "default") not in self.projects:
            return _invalid("Unknown project")
        wanted = doc.get("scaling_group")
        if wanted is not None and wanted not in self.groups:
            return _invalid("Unknown scaling group")
        with self._changed:
            slots = self.slot_types()
            kept = self.keypair_remaining()
            per_group = {}
            total = {slot: Decimal(0) for slot in slots}
            for name in self.groups if wanted is None else (wanted,):
                free = self.remaining(name)
                for slot in slots:
                    total[slot] += free[slot]
                per_group[name] = {
                    "using": _json(self.using(name)),
                    "remaining": _json({slot: min(free[slot], kept[slot]) for slot in slots}),
                }
            answer = {
                "keypair_limits": _json({slot: self._limit(slot) for slot in slots}),
                "keypair_using": _json(self.using()),
                "keypair_remaining": _json(kept),
                "group_limits": _json({slot: Decimal("NaN") for slot in slots}),
                "group_using": _json({slot: Decimal("NaN") for slot in slots}),
                "group_remaining": _json({slot: Decimal("NaN") for slot in slots}),
                "scaling_group_remaining": _json({slot: min(total[slot], kept[slot]) for slot in slots}),
                "scaling_groups": per_group,
                "presets": [],
            }
        return Reply.json(answer)


def install(emu: Emulator, groups: dict[str, dict[str, float]], **options: Any) -> Cluster:
    """Limit the sessions of `emu` (emulator_sessions installed first) to `groups`, and answer check-presets."""
    sessions: Sessions = emu.sessions  # type: ignore[attr-defined]
    cluster = Cluster(sessions, groups, **options)
    sessions.gate = cluster.gate
    emu.route("POST", "/resource/check-presets", cluster.check_presets)
    emu.cluster = cluster  # type: ignore[attr-defined]
    cluster._thread.start()
    return cluster


def group_of(s: EmuSession) -> str:
    return s.config.get("scaling_group") or "default"


def slots_of(s: EmuSession) -> dict[str, Decimal]:
    """The session's requested slots as decimals (mem in bytes, from '1g' or a number)."""
    found = {}
    for slot, value in (s.config.get("resources") or {}).items():
        if slot == "mem" and isinstance(value, str):
            number, unit = re.fullmatch(r"([\d.]+)\s*([kmgtp]?)i?b?", value.strip().lower()).groups()  # type: ignore[union-attr]
            found[slot] = Decimal(number) * _UNITS[unit]
        else:
            found[slot] = Decimal(str(value))
    return found


def _json(slots: dict[str, Decimal]) -> dict[str, str]:
    """ResourceSlot.to_json(): each amount as its decimal string ('2', '8589934592', 'NaN', 'Infinity')."""
    return {slot: _decimal(amount) for slot, amount in slots.items()}


def _decimal(amount: Decimal) -> str:
    if amount.is_finite() and amount == amount.to_integral_value():
        return str(int(amount))
    return str(amount)


def _invalid(msg: str, data: Any = None) -> Reply:
    return Reply.problem(400, "invalid-api-params", "Missing or invalid API parameters.", msg, data)
