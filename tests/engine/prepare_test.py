"""AheadOfStart: each task's folders and working directory made once, by its thread or by the runner, never twice."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest

from fasttrack_gitops.engine.prepare import AheadOfStart


def test_the_thread_prepares_every_task_once_and_the_runner_finds_them(tmp_path: Path):
    made: Counter[str] = Counter()
    folders: list[str] = []

    def workdir(task: str) -> Path:
        made[task] += 1
        return tmp_path / task

    async def main() -> list[Path]:
        ahead = AheadOfStart(["a", "b", "c"], folders.append, workdir)
        ahead.start()
        await ahead.wait()  # the thread has gone through them all
        return [await ahead.workdir(t) for t in ("a", "b", "c")]

    assert asyncio.run(main()) == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert made == {"a": 1, "b": 1, "c": 1}
    assert folders == ["a", "b", "c"]


def test_a_task_the_thread_is_preparing_is_awaited_not_prepared_beside_it(tmp_path: Path):
    entered, release = threading.Event(), threading.Event()
    made: Counter[str] = Counter()

    def workdir(task: str) -> Path:
        made[task] += 1
        if task == "slow":
            entered.set()
            assert release.wait(timeout=30)
        return tmp_path / task

    async def main() -> Path:
        ahead = AheadOfStart(["slow"], lambda task: None, workdir)
        ahead.start()
        await asyncio.to_thread(entered.wait, 30)
        asking = asyncio.ensure_future(ahead.workdir("slow"))
        await asyncio.sleep(0.05)
        assert not asking.done()  # waits for the thread's copy
        release.set()
        path = await asking
        await ahead.stop()
        return path

    assert asyncio.run(main()) == tmp_path / "slow"
    assert made == {"slow": 1}


def test_a_task_the_runner_started_first_is_skipped_by_the_thread(tmp_path: Path):
    made: Counter[str] = Counter()

    def workdir(task: str) -> Path:
        made[task] += 1
        return tmp_path / task

    async def main() -> None:
        ahead = AheadOfStart(["first", "second"], lambda task: None, workdir)
        assert await ahead.workdir("second") == tmp_path / "second"  # before the thread starts
        ahead.start()
        await ahead.wait()

    asyncio.run(main())
    assert made == {"first": 1, "second": 1}


def test_a_failure_is_not_kept_the_next_ask_tries_again(tmp_path: Path):
    calls: Counter[str] = Counter()

    def workdir(task: str) -> Path:
        calls[task] += 1
        if calls[task] == 1:
            raise OSError(28, "No space left on device")
        return tmp_path / task

    async def main() -> Path:
        ahead = AheadOfStart(["t"], lambda task: None, workdir)
        ahead.start()
        await ahead.wait()  # the thread's attempt failed, quietly
        return await ahead.workdir("t")  # the runner's own attempt: it works now

    assert asyncio.run(main()) == tmp_path / "t"
    assert calls == {"t": 2}


def test_the_runners_own_failure_reaches_it_and_a_retry_tries_again(tmp_path: Path):
    calls: Counter[str] = Counter()

    def workdir(task: str) -> Path:
        calls[task] += 1
        if calls[task] == 1:
            raise OSError(13, "Permission denied")
        return tmp_path / task

    async def main() -> Path:
        ahead = AheadOfStart([], lambda task: None, workdir)
        with pytest.raises(OSError, match="Permission denied"):
            await ahead.workdir("t")
        return await ahead.workdir("t")

    assert asyncio.run(main()) == tmp_path / "t"


def test_stop_ends_the_thread_after_the_task_in_hand(tmp_path: Path):
    entered, release = threading.Event(), threading.Event()
    made: list[str] = []

    def workdir(task: str) -> Path:
        made.append(task)
        entered.set()
        assert release.wait(timeout=30)
        return tmp_path / task

    async def main() -> None:
        ahead = AheadOfStart(["a", "b", "c"], lambda task: None, workdir)
        ahead.start()
        await asyncio.to_thread(entered.wait, 30)
        stopping = asyncio.ensure_future(ahead.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # waits for "a", in hand
        release.set()
        await stopping

    asyncio.run(main())
    assert made == ["a"]
