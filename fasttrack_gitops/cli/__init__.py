"""The `fasttrack-gitops` command line.

`main` answers a bare `--version` itself, before the command group (and
click) is imported: scripts and tools probe the version often, and it then
costs little more than starting Python (bench/run_bench.py). Everything
else goes to the command group (group.py).

While a command loads, the cyclic collector is held back, and once it has
answered, what is still alive is frozen out of the last collection
(commands/startup.py: together 50-150 ms of CPU of a 1-task `run`).
Finalizers still run; nothing is skipped but the search for garbage.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from fasttrack_gitops.version import describe

        sys.stdout.write(f"fasttrack-gitops {describe()}\n")
        return 0
    from fasttrack_gitops.commands import startup

    # Only for the process's own command line (the process ends with the command; a caller passing argv, a test,
    # goes on), and never for the daemon, long-lived: its collector is left as it is.
    process = argv is None and args[:1] != ["serve"]
    if process:
        startup.pause()
    from fasttrack_gitops.cli.group import invoke

    code = invoke(args)
    if process:
        startup.leaving()
    return code
