"""What a chaos campaign came to, counted from every witness after the daemon stopped.

The store says which jobs exist and what each attempt was; the emulator says
which sessions were created and which still run; the marker files say which
task processes ran (each line `<round> <session id or pid>`, written by the
task itself); the fake GitHub holds the check runs and the fake Slack the
messages. `problems()` names every broken promise: a commit without its
job, a duplicate, a job not ended, an attempt that ran twice (two sessions,
or one session's command twice), a check run missing, duplicated, not
completed or with the wrong conclusion, a report owed or given up, a task
process or session still running after the final stop.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conftest import alive

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.engine.backendai.session_spec import session_name

CONCLUSION = {JobStatus.SUCCEEDED: "success", JobStatus.FAILED: "failure", JobStatus.CANCELLED: "cancelled"}
SESSION_ENDED = ("TERMINATED", "CANCELLED", "ERROR")


@dataclass
class Counts:
    seed: int
    wall: float
    executor: str
    commits: int = 0
    jobs: int = 0
    statuses: Counter = field(default_factory=Counter)
    faults: dict = field(default_factory=dict)
    daemon_starts: int = 0
    missing: list = field(default_factory=list)  # (repository, round, pipeline) without a job
    duplicated: list = field(default_factory=list)  # (repository, round, pipeline) with more than one
    not_ended: list = field(default_factory=list)
    attempts: int = 0
    outcomes: Counter = field(default_factory=Counter)
    runs: int = 0  # task processes that ran, by the marker files
    ran_twice: list = field(default_factory=list)
    sessions: int = 0  # created on the manager (the emulator or the real one)
    unrecorded_sessions: list = field(default_factory=list)  # sessions no recorded attempt names
    checks: int = 0
    check_problems: list = field(default_factory=list)
    slack_messages: int = 0
    slack_problems: list = field(default_factory=list)  # a train job without its one message, or with two
    owed: dict = field(default_factory=dict)
    gave_up: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    log: list = field(default_factory=list)

    @classmethod
    def read(cls, world, *, seed: int, wall: float, faults: dict, log: list) -> Counts:
        counts = cls(seed=seed, wall=wall, executor=world.executor, faults=faults, log=log)
        counts.daemon_starts = world.daemon.starts
        counts.commits = len(world.pushes)
        views = [v for v in world.views() if v.job.trigger.get("event") == "push"]
        counts.jobs = len(views)
        counts.statuses = Counter(str(v.status) for v in views)
        counts._jobs_per_commit(world, views)
        counts._attempts(world, views)
        counts._checks(world, views)
        counts._slack(world, views)
        counts._outbox(world.state)
        return counts

    def _jobs_per_commit(self, world, views) -> None:
        from chaos.chaoslib import ENDED

        made = Counter((v.job.commit, v.job.pipeline) for v in views)
        for pushed in world.pushes:
            for pipeline in world.pipelines:
                found = made[(pushed.after, pipeline)]
                if found == 0:
                    self.missing.append((pushed.repository, pushed.round, pipeline))
                elif found > 1:
                    self.duplicated.append((pushed.repository, pushed.round, pipeline, found))
        self.not_ended = [(v.job.id, str(v.status)) for v in views if v.status not in ENDED]

    def _attempts(self, world, views) -> None:
        rounds = {p.after: p for p in world.pushes}
        marks = _marks(world.marks)
        named: dict[str, tuple[str, str, int]] = {}  # session name -> (job, task, attempt)
        for view in views:
            pushed = rounds.get(view.job.commit)
            for task, instance in view.tasks.items():
                self.attempts += len(instance.attempts)
                self.outcomes.update(str(a.outcome) for a in instance.attempts)
                for attempt in instance.attempts:
                    named[session_name(view.job.id, task, attempt.number)] = (view.job.id, task, attempt.number)
                if pushed is None:
                    continue
                who = marks.get((pushed.repository, view.job.pipeline, task, pushed.round), [])
                self.runs += len(who)
                repeated = [w for w, n in Counter(who).items() if n > 1]
                if len(who) > len(instance.attempts) or repeated:
                    self.ran_twice.append((view.job.id, task, len(instance.attempts), who))
        if world.executor == "backendai":
            sessions = world.cluster.sessions(job_ids=[v.job.id for v in views])
            self.sessions = len(sessions)
            per_name = Counter(s.name for s in sessions)
            self.unrecorded_sessions = [s.name for s in sessions if s.name not in named]
            self.ran_twice += [(named.get(name), name, n) for name, n in per_name.items() if n > 1]
            self.orphans = [(s.name, s.status) for s in sessions if s.status not in SESSION_ENDED]
        else:
            self.orphans = [pid for who in marks.values() for pid in who if pid.isdigit() and alive(int(pid))]
        self.orphans += _running_commands(world.marks)

    def _checks(self, world, views) -> None:
        runs = list(world.github.check_runs.values())
        self.checks = len(runs)
        by_job = Counter(r.get("external_id") for r in runs)
        for view in views:
            if view.job.invalid:
                continue
            mine = [r for r in runs if r.get("external_id") == view.job.id]
            expected = CONCLUSION.get(view.status)
            if by_job[view.job.id] != 1:
                self.check_problems.append((view.job.id, f"{by_job[view.job.id]} check runs"))
            elif mine[0].get("status") != "completed" or mine[0].get("conclusion") != expected:
                got = (mine[0].get("status"), mine[0].get("conclusion"))
                self.check_problems.append((view.job.id, f"{got}, the job is {view.status}"))

    def _slack(self, world, views) -> None:
        """One message per `train` job (its pipeline notifies Slack), told apart by `<repository>@<commit>`."""
        texts = [m["text"] or "" for m in list(world.slack.messages.values()) if not m["thread_ts"]]
        self.slack_messages = len(texts)
        for view in views:
            if view.job.pipeline != "train":
                continue
            mine = sum(1 for text in texts if f"{view.job.repository}@{view.job.commit[:7]}" in text)
            if mine != 1:
                self.slack_problems.append((view.job.id, f"{mine} Slack messages"))

    def _outbox(self, state: Path) -> None:
        with sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True) as cx:
            self.owed = dict(
                cx.execute(
                    "SELECT reporter, count(*) FROM outbox WHERE version > sent_version AND gave_up IS NULL"
                    " GROUP BY reporter"
                ).fetchall()
            )
            self.gave_up = cx.execute(
                "SELECT job_id, reporter, gave_up FROM outbox WHERE gave_up IS NOT NULL"
            ).fetchall()

    # -- what it says ----------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        found = []
        for what, items in [
            ("commits without their job", self.missing),
            ("duplicated jobs", self.duplicated),
            ("jobs not ended", self.not_ended),
            ("attempts that ran twice", self.ran_twice),
            ("sessions no recorded attempt names", self.unrecorded_sessions),
            ("check runs wrong", self.check_problems),
            ("Slack messages wrong", self.slack_problems),
            ("reports given up", self.gave_up),
            ("orphans after the final stop", self.orphans),
        ]:
            if items:
                found.append(f"{len(items)} {what}: {items[:5]}")
        if self.owed:
            found.append(f"reports owed: {self.owed}")
        return found

    def __str__(self) -> str:
        lost = len(self.missing)
        lines = [
            f"chaos seed {self.seed} · {self.commits} commits · executor {self.executor} · wall {self.wall:.1f}s",
            f"faults injected: {', '.join(f'{k} {v}' for k, v in self.faults.items())}; daemon starts {self.daemon_starts}",
            f"jobs {self.jobs} ({', '.join(f'{k} {v}' for k, v in sorted(self.statuses.items()))}); "
            f"lost {lost}, duplicated {len(self.duplicated)}, not ended {len(self.not_ended)}",
            f"attempts {self.attempts} ({', '.join(f'{k} {v}' for k, v in sorted(self.outcomes.items()))}); "
            f"task runs {self.runs}; sessions created {self.sessions}; ran twice {len(self.ran_twice)}; "
            f"unrecorded sessions {len(self.unrecorded_sessions)}",
            f"check runs {self.checks}, wrong {len(self.check_problems)}; Slack messages {self.slack_messages}, "
            f"wrong {len(self.slack_problems)}; "
            f"owed reports {sum(self.owed.values())}; given up {len(self.gave_up)}; orphans {len(self.orphans)}",
        ]
        return "\n".join(lines)


def _marks(folder: Path) -> dict[tuple[str, str, str, int], list[str]]:
    """(repository, pipeline, task, round) -> who ran it, a line per run."""
    found: dict[tuple[str, str, str, int], list[str]] = {}
    for path in folder.glob("*.runs"):
        repository, pipeline, task = path.name.removesuffix(".runs").split(".")
        for line in path.read_text().splitlines():
            round_, _, who = line.partition(" ")
            found.setdefault((repository.replace("_", "/", 1), pipeline, task, int(round_)), []).append(who)
    return found


def _running_commands(marks: Path) -> list[str]:
    """Processes whose command line names the marker folder: a task's shell that outlived everything."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if str(marks) in text and alive(int(cmdline.parent.name)):
            found.append(f"{cmdline.parent.name}: {text[:120]}")
    return found
