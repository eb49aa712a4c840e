"""What the console's templates show, as plain data made from the store's views (no HTML here: templates escape).

Kept apart from the routes so a page's data can be read (and timed) without
a server: `job_rows` for /jobs, `job_page` for /jobs/{id}, `task_page` for
a task. Secrets are masked in everything that came from a run or a spec.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from fasttrack_gitops.core.job import ENDED, JobStatus, JobView, TaskState
from fasttrack_gitops.core.pipeline.units import format_duration
from fasttrack_gitops.core.render.jobs import elapsed

OPEN = (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING, JobStatus.INTERRUPTED)


def job_url(job_id: str) -> str:
    return f"/jobs/{quote(job_id, safe='')}"


def task_url(job_id: str, task: str) -> str:
    return f"{job_url(job_id)}/tasks/{quote(task, safe='')}"


def job_duration(view: JobView, now: float | None = None) -> str:
    """First attempt's start to the last end (to now while it runs); "" before anything ran."""
    starts = [i.attempts[0].started_at for i in view.tasks.values() if i.attempts]
    if not starts:
        return ""
    ends = [a.ended_at for i in view.tasks.values() for a in i.attempts]
    end = (now or time.time()) if view.status in OPEN or None in ends else max(e for e in ends if e is not None)
    return format_duration(max(0.0, end - min(starts)))


def trigger_words(trigger) -> str:
    """The trigger in a few words: 'push by octocat', 'rerun of 1a2b… by alice'."""
    event = str(trigger.get("event", "?"))
    who = trigger.get("sender") or trigger.get("by") or ""
    number = f" #{trigger['number']}" if trigger.get("number") else ""
    of = f" of {str(trigger['of'])[:12]}" if trigger.get("of") else ""
    return f"{event}{number}{of}{' by ' + str(who) if who else ''}"


def job_row(view: JobView, status: JobStatus | None = None) -> dict:
    """A job's facts for the list and its page; `status` the one to show (Daemon.shown_status), else the view's."""
    job = view.job
    ran = sum(1 for i in view.tasks.values() if i.attempts)
    reused = sum(1 for i in view.tasks.values() if i.state == TaskState.REUSED)
    return {
        "id": job.id,
        "url": job_url(job.id),
        "pipeline": job.pipeline,
        "repository": job.repository,
        "commit": (job.commit or "")[:12],
        "ref": (job.ref or "").removeprefix("refs/heads/"),
        "trigger": trigger_words(job.trigger),
        "status": str(status or view.status),
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at)),
        "duration": job_duration(view),
        "ran": ran,
        "reused": reused,
        "tasks": len(view.tasks),
    }


def task_rows(view: JobView, session_of: Callable[[str, int], str]) -> list[dict]:
    """The job page's task table; `session_of(task, attempt)` the Backend.AI session id ("" for local runs)."""
    rows = []
    for index, (name, i) in enumerate(view.tasks.items()):
        last = i.attempts[-1].number if i.attempts else 0
        rows.append(
            {
                "index": index,
                "name": name,
                "url": task_url(view.job.id, name),
                "state": str(i.state),
                "attempts": len(i.attempts),
                "exit_code": "" if i.exit_code is None else i.exit_code,
                "duration": elapsed(i),
                "session": session_of(name, last) if last else "",
                "reused_from": i.reused_from or "",
                "reused_url": job_url(i.reused_from) if i.reused_from else "",
                "reason": i.reason,
                "ended": i.state in ENDED,
            }
        )
    return rows


def is_open(view: JobView) -> bool:
    return view.status in OPEN
