"""A module's names that another module holds, imported when first asked for (a module `__getattr__`, PEP 562).

For what a command's start-up would otherwise load for nothing: `engine.plan`
answers the daemon's planning names from `plan_repo.py`, and `engine.gitrepo`
the history questions from `history.py`, without importing either for `run`
(tests/commands/run_imports_test.py). Type checkers see the names through the
module's own TYPE_CHECKING imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_names(module: str, names: Iterable[str], source: str) -> Callable[[str], object]:
    """The `__getattr__` for `module` (its __name__): each of `names` taken from `source` on first use, then kept as
    `module`'s own attribute (so asked for again, it is a plain lookup)."""
    wanted = frozenset(names)

    def __getattr__(name: str) -> object:
        if name not in wanted:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
