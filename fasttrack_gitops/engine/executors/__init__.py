"""Executors: where a task's attempts run. One module per executor (`backendai` is a package), behind `base.Executor`.

The registry names each executor's class by import path, so choosing one
imports only that one (the Backend.AI executor pulls in httpx; `local` does not).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fasttrack_gitops.core.errors import UsageError

if TYPE_CHECKING:
    from fasttrack_gitops.engine.executors.base import Executor

EXECUTORS = {
    "local": "fasttrack_gitops.engine.executors.local:LocalExecutor",
    "backendai": "fasttrack_gitops.engine.executors.backendai.executor:BackendAIExecutor",
}


def get_executor(name: str, **options: Any) -> Executor:
    """A new executor by name, e.g. get_executor("local", bwrap=False)."""
    try:
        target = EXECUTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise UsageError(f"unknown executor '{name}'; known executors: {known}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)
