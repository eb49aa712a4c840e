"""The outbox and the deliverer: coalescing, spacing, retries, giving up, restarts.

Each story runs twice: over the daemon's outbox in a real state database,
and over the outbox the Action's step keeps in memory (the same rules).
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from conftest import await_until
from engine.reporters.contract_server import Answer
from engine.reporters.github_test import CHECK_RUNS, REPO, FakeGitHub, job_report, token_reporter
from engine.reporters.github_test import Clock as GitHubClock

from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater
from fasttrack_gitops.engine.deliver import Deliverer, Failure, Policy
from fasttrack_gitops.engine.state.memory_outbox import MemoryOutbox
from fasttrack_gitops.engine.state.outbox import Outbox
from fasttrack_gitops.engine.state.store import Store


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Service:
    """A reporter whose service answers as the test scripts it; records what it was sent and with which state."""

    name = "svc"
    min_interval = 5.0

    def __init__(self):
        self.sent: list[tuple[str, int, dict]] = []  # (job, report version seen, state given)
        self.answers: list[Exception | None] = []
        self.during_send = None  # called while a send is in flight

    def wants(self, report: JobReport) -> bool:
        return report.pipeline != "unwanted"

    async def send(self, report: JobReport, state):
        if self.during_send:
            self.during_send()
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        self.sent.append((report.job_id, report.created_at, dict(state)))
        return {"id": state.get("id", f"remote-{report.job_id}"), "sends": state.get("sends", 0) + 1}

    async def aclose(self):
        pass


def report(job_id: str, version: float = 0.0, pipeline: str = "p") -> JobReport:
    return JobReport(
        job_id=job_id,
        repository="acme/r",
        pipeline=pipeline,
        pipeline_path="p.yaml",
        commit="c" * 40,
        ref="refs/heads/main",
        trigger={},
        status="running",
        conclusion=None,
        started=True,
        title="t",
        summary="s",
        text="",
        created_at=version,
    )


@pytest.fixture(params=["database", "memory"])
def world(tmp_path, request):
    store = Store(tmp_path)
    clock = Clock()
    service = Service()
    versions = {}
    outbox = Outbox(store) if request.param == "database" else MemoryOutbox()
    deliverer = Deliverer(
        outbox,
        [service],
        lambda job: None if job == "gone" else report(job, versions.get(job, 0), "unwanted" if job == "other" else "p"),
        clock=clock,
        rng=random.Random(1),
    )
    yield outbox, deliverer, service, clock, versions
    store.close()


def test_many_changes_before_a_send_cost_one_send_and_the_state_is_kept(world):
    outbox, deliverer, service, clock, versions = world
    for _ in range(5):
        outbox.mark("j1", ["svc"])
    assert asyncio.run(deliverer.flush()) == 1
    assert service.sent == [("j1", 0, {})]
    assert asyncio.run(deliverer.flush()) == 0  # nothing changed since
    outbox.mark("j1", ["svc"])
    clock.now += 5
    asyncio.run(deliverer.flush())
    assert service.sent[-1][2] == {"id": "remote-j1", "sends": 1}  # updates what it made, does not make another


def test_sends_of_one_job_are_spaced_by_min_interval_but_the_final_one_goes_at_once(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("j1", ["svc"])
    asyncio.run(deliverer.flush())
    outbox.mark("j1", ["svc"])
    clock.now += 1
    assert asyncio.run(deliverer.flush()) == 0  # coalesced: at most one per 5 s
    assert outbox.next_due("svc") == pytest.approx(1005.0)
    outbox.mark("j1", ["svc"], final=True)
    assert asyncio.run(deliverer.flush()) == 1  # the final report does not wait


def test_a_change_during_a_send_is_sent_too(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("j1", ["svc"])
    service.during_send = lambda: outbox.mark("j1", ["svc"], final=True)
    asyncio.run(deliverer.flush())
    service.during_send = None
    assert outbox.due("svc", clock.now)  # the newer version is still owed
    asyncio.run(deliverer.flush())
    assert len(service.sent) == 2


def test_retry_later_backs_off_with_jitter_or_as_the_service_says(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("j1", ["svc"])
    service.answers = [RetryLater("503 from the service"), RetryLater("rate limited", after=30.0)]
    asyncio.run(deliverer.flush())
    first = outbox.row("j1", "svc")
    assert first["failures"] == 1 and 1000 + 1.0 <= first["retry_at"] <= 1000 + 2.0  # 2 s, jittered to 50-100%
    assert first["last_error"] == "503 from the service"
    clock.now = first["retry_at"]
    asyncio.run(deliverer.flush())
    assert outbox.row("j1", "svc")["retry_at"] == pytest.approx(clock.now + 30.0)
    clock.now += 30
    assert asyncio.run(deliverer.flush()) == 1 and outbox.row("j1", "svc")["failures"] == 0


def test_give_up_stops_that_job_for_that_reporter_only(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("j1", ["svc"])
    outbox.mark("j2", ["svc"])
    service.answers = [GiveUp("channel_not_found: #nope")]
    asyncio.run(deliverer.flush())
    assert outbox.row("j1", "svc")["gave_up"] == "channel_not_found: #nope"
    assert [s[0] for s in service.sent] == ["j2"]
    outbox.mark("j1", ["svc"], final=True)
    assert asyncio.run(deliverer.flush()) == 0  # not revived
    assert outbox.pending() == {}


def test_a_reporter_bug_is_retried_then_given_up_never_raised(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("j1", ["svc"])
    surprises = Policy().surprises
    service.answers = [KeyError("bug")] * surprises
    for _ in range(surprises):
        asyncio.run(deliverer.flush())
        clock.now += 1000
    assert outbox.row("j1", "svc")["gave_up"].startswith("KeyError")


def test_unwanted_or_vanished_jobs_are_settled_without_a_send(world):
    outbox, deliverer, service, clock, _ = world
    outbox.mark("other", ["svc"])
    outbox.mark("gone", ["svc"])
    assert asyncio.run(deliverer.flush()) == 0 and service.sent == [] and outbox.pending() == {}


def test_what_is_owed_survives_a_restart(tmp_path):
    with Store(tmp_path) as store:
        Outbox(store).mark("j1", ["svc"], final=True)
    service = Service()
    with Store(tmp_path) as store:
        deliverer = Deliverer(Outbox(store), [service], lambda job: report(job), clock=Clock())
        assert asyncio.run(deliverer.flush()) == 1
    assert service.sent == [("j1", 0, {})]


def test_the_loop_sends_when_woken_and_stops_when_asked(world):
    outbox, deliverer, service, clock, _ = world

    async def scenario():
        stop = asyncio.Event()
        loop = asyncio.create_task(deliverer.run(stop))
        await asyncio.sleep(0.05)
        outbox.mark("j1", ["svc"])
        deliverer.wake()
        await await_until(lambda: service.sent, what="the woken deliverer to send")
        stop.set()
        await asyncio.wait_for(loop, 5)

    asyncio.run(scenario())
    assert [s[0] for s in service.sent] == ["j1"]


# ---------------------------------------------------------------- over memory, to GitHub (the Action's step)

# The step's policy (ci/reporters.py), its waits shrunk to milliseconds.
STEP = Policy(tries=3, surprises=1, base_delay=0.01, max_wait=0.05, spacing=False)
UNAVAILABLE = Answer(503, {"message": "Service Unavailable"})


@pytest.fixture
def github(contracts):
    fake = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), GitHubClock())
    with fake.server.serving():
        yield fake


def deliver_stages(github: FakeGitHub, *stages: str) -> tuple[MemoryOutbox, list[Failure]]:
    """The job's reports at each stage, as the step delivers them: what is due at once, the last one until it
    went through or was given up. The outbox, and each failure the deliverer told of."""
    outbox, failures, now = MemoryOutbox(), [], {}
    reporter = token_reporter(github)
    deliverer = Deliverer(outbox, [reporter], lambda job: now["report"], policy=STEP, on_failure=failures.append)

    async def scenario():
        try:
            for stage in stages:
                now["report"] = job_report(stage)
                final = stage == stages[-1]
                outbox.mark(now["report"].job_id, ["github"], final=final)
                await (deliverer.drain() if final else deliverer.flush())
        finally:
            await reporter.aclose()

    asyncio.run(scenario())
    return outbox, failures


def test_over_memory_a_503_is_tried_again_and_makes_one_check_run(github):
    github.server.fail_next("POST", CHECK_RUNS, UNAVAILABLE, times=1)

    outbox, failures = deliver_stages(github, "queued", "failed")

    [failure] = failures  # the queued one, tried again with the end's report
    assert (failure.cause, failure.retry_in is not None) == ("unavailable", True)
    [check] = github.check_runs.values()
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert len(github.server.calls("POST", CHECK_RUNS)) == 2
    assert outbox.pending() == {} and outbox.row(job_report().job_id, "github")["failures"] == 0


def test_over_memory_a_service_that_keeps_failing_is_given_up_after_the_tries_and_said_once(github):
    github.server.fail_next("POST", CHECK_RUNS, UNAVAILABLE, times=100)

    outbox, failures = deliver_stages(github, "queued", "failed")

    assert [f.retry_in is None for f in failures] == [False, False, True]  # two retries, then given up
    given_up = failures[-1]
    assert given_up.reason == f"GitHub answered 503 while creating the check run {given_up.report.check_name} on {REPO}"
    assert given_up.report.conclusion == "failure"  # the end's report, not a stale one
    assert len(github.server.calls("POST", CHECK_RUNS)) == STEP.tries
    assert github.check_runs == {}
    assert outbox.pending() == {} and outbox.row(given_up.report.job_id, "github")["gave_up"] == given_up.reason
