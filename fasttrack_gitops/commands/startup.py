"""The cyclic garbage collector around start-up: out of the way while modules load, blind to what they made after.

Start-up makes some 30,000 tracked objects that live until the process ends
(modules, classes, functions, the parsed pipeline). With the default
threshold the collector runs some 75 times while they are made, each time
walking the young ones again, and once more over all of them as the
interpreter exits: together more CPU than planning and running a 1-task job
(bench/run_bench.py). So `pause()` raises the threshold while a command loads,
and `started()`, called once a long-running command has loaded what it needs,
freezes what exists (`gc.freeze()`: later collections never walk it again) and
restores the threshold for the objects the run itself makes. A short command
never calls it and exits with the raised threshold; `serve`, and a command run in-process
(`main(argv)`: tests), is never paused.
"""

from __future__ import annotations

import gc

STARTUP_THRESHOLD = 100_000  # young objects between collections while a command loads (default: 700)

_default: tuple[int, ...] | None = None


def pause() -> None:
    """Collect rarely until `started()`: what is made now lives until the process ends."""
    global _default
    if _default is None:
        _default = gc.get_threshold()
        gc.set_threshold(STARTUP_THRESHOLD, *_default[1:])


def started() -> None:
    """Start-up is over: freeze what it made and collect as usual from here on (nothing if `pause` was not called:
    a caller in a process that goes on, such as a test, keeps its collector as it is)."""
    global _default
    if _default is not None:
        gc.freeze()
        gc.set_threshold(*_default)
        _default = None


def leaving() -> None:
    """The command has answered: what is alive lives until the process ends; spare the last collection walking it."""
    gc.freeze()
