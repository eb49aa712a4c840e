"""Reading attempt logs back: print them, or follow them while the job runs."""

from __future__ import annotations

import sys
import time

import click

from fasttrack_gitops.core.errors import UsageError

FOLLOW_POLL = 0.2  # seconds


def print_logs(store, view, task: str | None, attempt: int | None) -> int:
    names = [task] if task else list(view.tasks)
    for name in names:
        instance = view.tasks[name]
        if not instance.attempts:
            why = f"{instance.state}{': ' + instance.reason if instance.reason else ''}"
            if task:
                click.echo(f"task '{name}' has not run ({why})", err=True)
            else:
                click.echo(click.style(f"==> {name} ({why}) <==", bold=True))
            continue
        number = attempt or instance.attempts[-1].number
        if number > len(instance.attempts):
            raise UsageError(f"task '{name}' has {len(instance.attempts)} attempt(s), not {number}")
        if not task:
            click.echo(click.style(f"==> {name} (attempt {number}, {instance.state}) <==", bold=True))
        _copy(store.log_path(view.job.id, name, number))
    return 0


def _copy(path) -> None:
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    except FileNotFoundError:
        pass  # an attempt that could not start has no output


def follow_logs(store, job_id: str, task: str | None, attempt: int | None) -> int:
    """Print the logs as they grow, task by task as attempts start, until the job ends."""
    offsets: dict = {}
    while True:
        view = store.view(job_id)
        running = view.status.value in ("pending", "running")
        for name, instance in view.tasks.items():
            if task and name != task:
                continue
            for a in instance.attempts:
                if attempt and a.number != attempt:
                    continue
                path = store.log_path(job_id, name, a.number)
                key = (name, a.number)
                if key not in offsets:
                    offsets[key] = 0
                    if not task:
                        click.echo(click.style(f"==> {name} (attempt {a.number}) <==", bold=True))
                offsets[key] = _copy_from(path, offsets[key], prefix="" if task else f"{name}: ", final=not running)
        if not running:
            return 0
        time.sleep(FOLLOW_POLL)


def _copy_from(path, offset: int, prefix: str, final: bool = False) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    if final and prefix and data and not data.endswith(b"\n"):
        data += b"\n"  # the job has ended: its last line will not be finished
    # Only whole lines while the job runs, so two tasks' output never interleaves within a line.
    end = len(data) if final else data.rfind(b"\n") + 1
    if end:
        for line in data[:end].splitlines(keepends=True):
            sys.stdout.buffer.write(prefix.encode() + line)
        sys.stdout.flush()
    return offset + end
