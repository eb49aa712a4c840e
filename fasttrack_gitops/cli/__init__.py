"""The `fasttrack-gitops` command line.

`main` answers a bare `--version` itself, before the command group (and
click) is imported: scripts and tools probe the version often, and it then
costs little more than starting Python (bench/startup_bench.py). Everything
else goes to the command group (group.py).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from fasttrack_gitops.version import describe

        sys.stdout.write(f"fasttrack-gitops {describe()}\n")
        return 0
    from fasttrack_gitops.cli.group import invoke

    return invoke(args)
