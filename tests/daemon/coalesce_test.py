"""Coalescer and Bursts (daemon/coalesce.py) on their own: what is shared, what is remembered, what waits."""

from __future__ import annotations

import asyncio
import time

from fasttrack_gitops.core.events import Comment, Push
from fasttrack_gitops.daemon.coalesce import PLANS_WAIT, Bursts, Coalescer
from fasttrack_gitops.daemon.handled import Handled

PUSH = Push("acme/pipes", "refs/heads/main", "a" * 40, "b" * 40)


def test_callers_of_one_key_share_one_run_and_a_failed_result_is_not_remembered():
    async def scenario():
        runs = []
        release = asyncio.Event()

        async def work(answer: Handled) -> Handled:
            runs.append(answer)
            await release.wait()
            return answer

        coalescer: Coalescer[Handled] = Coalescer(keep=lambda h: not h.failed)
        ok = Handled(jobs=["j-1"], note="made")
        callers = [asyncio.create_task(coalescer.run("k", lambda: work(ok))) for _ in range(5)]
        await asyncio.sleep(0)
        assert coalescer.in_flight("k") is not None
        release.set()
        results = await asyncio.gather(*callers)
        assert len(runs) == 1 and [shared for _, shared in results] == [False, True, True, True, True]
        assert all(handled is ok for handled, _ in results)
        assert coalescer.remembered("k") is ok and coalescer.in_flight("k") is None

        failed = Handled(note="store locked", failed=True)
        assert (await coalescer.run("f", lambda: work(failed)))[0] is failed
        assert coalescer.remembered("f") is None  # the next delivery tries again

    asyncio.run(scenario())


def test_a_caller_that_goes_away_does_not_cancel_the_run_for_the_others():
    async def scenario():
        release = asyncio.Event()

        async def work() -> Handled:
            await release.wait()
            return Handled(jobs=["j-1"])

        coalescer: Coalescer[Handled] = Coalescer(keep=lambda h: True)
        first = asyncio.create_task(coalescer.run("k", work))
        second = asyncio.create_task(coalescer.run("k", work))
        await asyncio.sleep(0)
        first.cancel()  # its connection closed
        release.set()
        assert (await second)[0].jobs == ["j-1"]
        assert first.cancelled()

    asyncio.run(scenario())


def test_remembered_results_are_bounded_newest_kept():
    async def scenario():
        coalescer: Coalescer[int] = Coalescer(keep=lambda n: True, size=3)

        async def value(n: int) -> int:
            return n

        for n in range(5):
            await coalescer.run(n, lambda n=n: value(n))
        assert [coalescer.remembered(n) for n in range(5)] == [None, None, 2, 3, 4]

    asyncio.run(scenario())


def test_a_burst_holds_new_jobs_plans_until_it_is_answered_and_a_stream_for_a_second_at_most():
    async def scenario():
        planned: list[str] = []
        bursts = Bursts(still_stored=lambda push, known: True, plan=planned.append)
        release = asyncio.Event()

        async def handling(job_id: str) -> Handled:
            bursts.plan_later(job_id)
            await release.wait()
            return Handled(jobs=[job_id])

        assert bursts.quiet.is_set()
        first = asyncio.create_task(bursts.handle(PUSH, lambda: handling("j-1")))
        comment = Comment("acme/pipes", 5, "/fasttrack rerun", "octocat", "MEMBER")
        second = asyncio.create_task(bursts.handle(comment, lambda: handling("j-2")))
        await asyncio.sleep(0.05)
        assert not bursts.quiet.is_set() and planned == []  # both still being answered
        release.set()
        await asyncio.gather(first, second)
        assert bursts.quiet.is_set() and sorted(planned) == ["j-1", "j-2"]

        bursts.plan_later("j-3")  # outside any handling: at once
        assert planned[-1] == "j-3"

        endless = asyncio.Event()
        stream = asyncio.create_task(bursts.handle(comment, lambda: endless.wait()))  # never quiet
        await asyncio.sleep(0)
        bursts.plan_later("j-4")
        assert planned[-1] == "j-3"
        started = time.monotonic()
        while time.monotonic() - started <= PLANS_WAIT:
            await asyncio.sleep(0.05)
        bursts.plan_later("j-5")  # the oldest has waited long enough: both go
        assert planned[-2:] == ["j-4", "j-5"]
        endless.set()
        await stream

    asyncio.run(scenario())


def test_copies_of_one_push_share_a_handling_and_a_late_copy_is_answered_if_its_jobs_are_stored():
    async def scenario():
        stored = {"j-1"}
        bursts = Bursts(still_stored=lambda push, known: set(known.jobs) <= stored, plan=lambda job_id: None)
        runs = []

        async def handling() -> Handled:
            runs.append(1)
            await asyncio.sleep(0.01)
            return Handled(jobs=["j-1"], created=["j-1"], note="push")

        answers = await asyncio.gather(*(bursts.handle(PUSH, handling) for _ in range(10)))
        assert len(runs) == 1
        assert [a.coalesced for a in answers].count(False) == 1 and all(a.jobs == ["j-1"] for a in answers)
        assert sum(len(a.created) for a in answers) == 1
        late = await bursts.handle(PUSH, handling)
        assert late.coalesced and late.jobs == ["j-1"] and len(runs) == 1  # from memory, checked with the store
        other = Push("acme/other", PUSH.ref, PUSH.before, PUSH.after)
        await bursts.handle(other, handling)
        assert len(runs) == 2  # another repository: its own handling
        stored.clear()  # retention removed the job: handled again
        await bursts.handle(PUSH, handling)
        assert len(runs) == 3

    asyncio.run(scenario())
