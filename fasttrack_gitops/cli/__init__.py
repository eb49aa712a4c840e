"""The `fasttrack-gitops` command line.

`main` answers a bare `--version` itself, before the command group (and
click) is imported: scripts and tools probe the version often, and it then
costs little more than starting Python (bench/run_bench.py). Everything
else goes to the command group (group.py).

When the command has answered, what is still alive lives until the process
ends: `gc.freeze()` spares the interpreter's last cyclic collection walking
it all (30-70 ms of CPU at the end of a 1-task `run`, bench/run_bench.py).
Finalizers still run; nothing is skipped but the search for garbage.
"""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from fasttrack_gitops.version import describe

        sys.stdout.write(f"fasttrack-gitops {describe()}\n")
        return 0
    from fasttrack_gitops.cli.group import invoke

    code = invoke(args)
    gc.freeze()
    return code
