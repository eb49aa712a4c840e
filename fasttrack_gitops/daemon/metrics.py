"""The daemon's counters, rendered in the Prometheus text exposition format (version 0.0.4).

Counters count since the daemon started, as Prometheus expects (it handles
restarts); gauges (jobs queued and running) are read when scraped. Label
values are escaped as the format requires, so a repository or pipeline name
cannot break the page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Task durations span seconds to days; the buckets follow Prometheus' habit of roughly x2.5 steps.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


@dataclass
class Metrics:
    deliveries: Counter = field(default_factory=Counter)  # (provider, result) -> n
    jobs_created: Counter = field(default_factory=Counter)  # trigger event -> n
    jobs_finished: Counter = field(default_factory=Counter)  # status -> n
    executor_errors: Counter = field(default_factory=Counter)  # executor -> n
    fetch_errors: Counter = field(default_factory=Counter)  # repository -> n
    commits_read: Counter = field(default_factory=Counter)  # repository -> pushes whose commit git read
    task_durations: dict = field(default_factory=dict)  # executor -> [bucket counts..., sum, count]
    reports: Counter = field(default_factory=Counter)  # (reporter, sent | retry | gave_up | skipped) -> n

    def report_result(self, reporter: str, result: str) -> None:
        self.reports[(reporter, result)] += 1

    def delivery(self, provider: str, result: str) -> None:
        self.deliveries[(provider, result)] += 1

    def task_ended(self, executor: str, seconds: float) -> None:
        counts = self.task_durations.setdefault(executor, [0] * len(DURATION_BUCKETS) + [0.0, 0])
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-2] += seconds
        counts[-1] += 1

    def render(
        self,
        *,
        jobs: Mapping[str, int],
        queue_depth: int,
        executors: Iterable[str] = (),
        outbox: Mapping[str, int] | None = None,
    ) -> str:
        """The /metrics page; `jobs` is the number of jobs per status the daemon holds now.

        The error counter of each of `executors` is shown from 0 on: a series
        that appears only at its first error hides that error from rate().
        """
        out: list[str] = []
        executor_errors = {**dict.fromkeys(executors, 0), **self.executor_errors}
        _family(
            out,
            "ftg_jobs",
            "gauge",
            "Jobs the daemon holds now, by status (queued, running).",
            ((({"status": s},), n) for s, n in sorted(jobs.items())),
        )
        _family(
            out,
            "ftg_queue_depth",
            "gauge",
            "Jobs waiting for a slot or their concurrency group.",
            [(((),), queue_depth)],
        )
        _family(
            out,
            "ftg_jobs_created_total",
            "counter",
            "Jobs created, by the event that triggered them.",
            ((({"trigger": t},), n) for t, n in sorted(self.jobs_created.items())),
        )
        _family(
            out,
            "ftg_jobs_finished_total",
            "counter",
            "Jobs that ended, by status.",
            ((({"status": s},), n) for s, n in sorted(self.jobs_finished.items())),
        )
        _family(
            out,
            "ftg_webhook_deliveries_total",
            "counter",
            "Webhook deliveries, by provider and result.",
            ((({"provider": p, "result": r},), n) for (p, r), n in sorted(self.deliveries.items())),
        )
        _family(
            out,
            "ftg_executor_errors_total",
            "counter",
            "Task attempts the executor could not start or follow.",
            ((({"executor": e},), n) for e, n in sorted(executor_errors.items())),
        )
        _family(
            out,
            "ftg_repository_fetch_errors_total",
            "counter",
            "Failed fetches of remote repositories.",
            ((({"repository": r},), n) for r, n in sorted(self.fetch_errors.items())),
        )
        _family(
            out,
            "ftg_push_commits_read_total",
            "counter",
            "Pushes whose commit the daemon read and checked (deliveries of one push share one read).",
            ((({"repository": r},), n) for r, n in sorted(self.commits_read.items())),
        )
        _family(
            out,
            "ftg_reports_total",
            "counter",
            "Reports sent to GitHub, GitLab and Slack, by result.",
            ((({"reporter": r, "result": x},), n) for (r, x), n in sorted(self.reports.items())),
        )
        _family(
            out,
            "ftg_outbox_pending",
            "gauge",
            "Jobs whose latest report a reporter has not sent yet.",
            ((({"reporter": r},), n) for r, n in sorted((outbox or {}).items())),
        )
        out.append("# HELP ftg_task_duration_seconds Task instance run time, first attempt start to last end.")
        out.append("# TYPE ftg_task_duration_seconds histogram")
        for executor, counts in sorted(self.task_durations.items()):
            for bound, n in zip(DURATION_BUCKETS, counts):
                out.append(f"ftg_task_duration_seconds_bucket{_labels({'executor': executor, 'le': str(bound)})} {n}")
            out.append(f"ftg_task_duration_seconds_bucket{_labels({'executor': executor, 'le': '+Inf'})} {counts[-1]}")
            out.append(f"ftg_task_duration_seconds_sum{_labels({'executor': executor})} {counts[-2]:.3f}")
            out.append(f"ftg_task_duration_seconds_count{_labels({'executor': executor})} {counts[-1]}")
        return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, help_text: str, samples: Iterable) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    for (labels,), value in samples:
        out.append(f"{name}{_labels(labels) if labels else ''} {value}")


def _labels(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
