"""Progress of a running job: a live table on a terminal, one line per change elsewhere (CI logs, pipes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from fasttrack_gitops.core.job import TaskInstance, TaskState
from fasttrack_gitops.core.render.jobs import elapsed

_STYLE = {
    TaskState.PENDING: "dim",
    TaskState.WAITING: "dim",
    TaskState.SUBMITTED: "cyan",
    TaskState.RUNNING: "bold cyan",
    TaskState.SUCCEEDED: "green",
    TaskState.REUSED: "green",
    TaskState.FAILED: "bold red",
    TaskState.SKIPPED: "dim",
    TaskState.CANCELLED: "yellow",
}
_ICON = {
    TaskState.PENDING: "·",
    TaskState.WAITING: "…",
    TaskState.SUBMITTED: "↑",
    TaskState.RUNNING: "▶",
    TaskState.SUCCEEDED: "✓",
    TaskState.REUSED: "↺",
    TaskState.FAILED: "✗",
    TaskState.SKIPPED: "-",
    TaskState.CANCELLED: "⊘",
}


class LineProgress:
    """One line per change: what CI logs and `| tee` want."""

    def __init__(self, job, stream: TextIO | None = None):
        self.stream = stream = stream or sys.stderr
        print(f"job {job.id}: {job.pipeline} ({len(job.code_trees)} tasks)", file=stream, flush=True)

    def change(self, change) -> None:
        instance: TaskInstance = change.instance
        attempt = f" attempt {len(instance.attempts)}" if instance.state == TaskState.RUNNING else ""
        took = f" in {elapsed(instance)}" if instance.ended and instance.attempts else ""
        note = f": {change.message}" if change.message else ""
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {change.task} {instance.state}{attempt}{took}{note}", file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class LiveProgress:
    """A table of the tasks, updated in place about four times a second."""

    def __init__(self, job, stream: TextIO | None = None):
        from rich.console import Console
        from rich.live import Live

        self.job = job
        self.tasks: dict[str, TaskInstance] = {name: TaskInstance(name) for name in job.code_trees}
        self.started = time.time()
        # transient: when the job ends the live table gives way to the summary printed after it
        self.live = Live(
            get_renderable=self._render,
            console=Console(file=stream or sys.stderr),
            refresh_per_second=4,
            transient=True,
        )

    def change(self, change) -> None:
        self.tasks[change.task] = change.instance

    def _render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        done = sum(1 for i in self.tasks.values() if i.ended)
        title = Text(
            f"{self.job.pipeline}  job {self.job.id}  {done}/{len(self.tasks)} done  "
            f"{int(time.time() - self.started)}s",
            style="bold",
        )
        table = Table(box=None)
        for column in ("", "task", "state", "time", "attempts", "note"):
            table.add_column(column)
        for name, instance in self.tasks.items():
            style = _STYLE[instance.state]
            table.add_row(
                _ICON[instance.state],
                name,
                f"[{style}]{instance.state}[/]",
                elapsed(instance),
                str(len(instance.attempts) or ""),
                instance.reason[:60],
            )
        return Group(title, table)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)


def progress_for(job, stream: TextIO | None = None):
    stream = stream or sys.stderr  # looked up now: tests and callers may have replaced it
    return LiveProgress(job, stream) if stream.isatty() else LineProgress(job, stream)
