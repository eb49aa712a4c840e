"""GET /api/events as browsers and bad clients use it: a task's change arrives within a second, ?job= filters,
Last-Event-ID resumes, 100 followers at once, and a follower that never reads is dropped, the daemon unaffected."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
from conftest import await_until
from daemon.http_test import serving
from daemon.web.console_helpers import READ, SLOW, add_pipeline, bearer, tokens_config, trigger

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.daemon import live


async def events(response, *, until, limit: float = 20.0) -> list[dict]:
    """Parse a text/event-stream until `until(event)` holds; each event {id, event, data, received}."""
    found: list[dict] = []
    current: dict = {}
    deadline = time.monotonic() + limit
    lines = response.aiter_lines()
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(lines.__anext__(), timeout=deadline - time.monotonic())
        if not line:
            if "data" in current:
                current["received"] = time.time()
                current["data"] = json.loads(current["data"])
                found.append(current)
                if until(current):
                    return found
            current = {}
        elif not line.startswith(":") and ": " in line:
            key, value = line.split(": ", 1)
            current[key] = value
    raise AssertionError(f"the event did not come; got {found}")


def test_a_task_change_reaches_a_follower_within_a_second_and_only_its_jobs_events(tmp_path, source_repo):
    add_pipeline(source_repo, "slow", SLOW)
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            other = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(other).status == JobStatus.SUCCEEDED)
            job = await trigger(client, "slow")
            async with client.stream("GET", "/api/events", params={"job": job}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                other_again = await trigger(client, "demo")  # its events must not come here
                got = await events(
                    stream,
                    until=lambda e: (
                        e["event"] == "task" and e["data"]["task"] == "wait" and e["data"]["state"] == "running"
                    ),
                )
            daemon.cancel_job(job, "the test")  # no need to wait the minute out
            assert {e["data"]["job"] for e in got} == {job}, other_again
            running = got[-1]
            latency = running["received"] - running["data"]["started_at"]
            assert 0 <= latency < 1.0, latency  # the attempt began -> the page knows, in under a second
            assert [int(e["id"]) for e in got] == sorted(int(e["id"]) for e in got)

    asyncio.run(scenario())


def test_a_follower_that_reconnects_with_last_event_id_gets_what_it_missed(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            async with client.stream("GET", "/api/events") as stream:
                first = await trigger(client, "demo")
                seen = await events(stream, until=lambda e: e["event"] == "task")
            last = seen[-1]["id"]
            second = await trigger(client, "demo")  # while nobody follows
            await await_until(lambda: daemon.store.view(second).status == JobStatus.SUCCEEDED)
            await await_until(lambda: daemon.store.view(first).status == JobStatus.SUCCEEDED)
            async with client.stream("GET", "/api/events", headers={"Last-Event-ID": last}) as stream:
                missed = await events(
                    stream, until=lambda e: e["event"] == "job" and e["data"] == {"job": second, "status": "succeeded"}
                )
            assert int(missed[0]["id"]) == int(last) + 1  # nothing lost, nothing repeated
            assert {e["data"]["job"] for e in missed} >= {second}
            async with client.stream("GET", "/api/events", headers={"Last-Event-ID": "999999999"}) as stream:
                (reset,) = await events(stream, until=lambda e: True)  # an id of another process: reload
            assert reset["event"] == "reset"

    asyncio.run(scenario())


@pytest.mark.timeout(180)
def test_a_hundred_followers_at_once_all_get_the_events_and_the_daemon_still_answers(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with serving(config, headers=bearer(READ), limits=limits) as (daemon, client):
            ready = asyncio.Event()
            opened = []

            async def follower():
                async with client.stream("GET", "/api/events") as stream:
                    opened.append(stream)
                    if len(opened) == 100:
                        ready.set()
                    got = await events(
                        stream, until=lambda e: e["event"] == "job" and e["data"]["status"] == "succeeded", limit=60
                    )
                    return got[-1]["data"]["job"]

            followers = [asyncio.create_task(follower()) for _ in range(100)]
            await asyncio.wait_for(ready.wait(), 60)
            await await_until(lambda: len(daemon.live.followers) == 100)
            started = time.monotonic()
            assert (await client.get("/healthz")).status_code == 200
            assert time.monotonic() - started < 1.0
            job = await trigger(client, "demo")
            assert await asyncio.gather(*followers) == [job] * 100
            await await_until(lambda: len(daemon.live.followers) == 0)  # every stream closed is forgotten

    asyncio.run(scenario())


def test_a_follower_that_never_reads_is_dropped_and_costs_the_daemon_nothing(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config, headers=bearer(READ)) as (daemon, client):
            port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
            stuck = socket.socket()
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(("127.0.0.1", port))
            stuck.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ}\r\n\r\n".encode())
            await await_until(lambda: len(daemon.live.followers) == 1)
            (slow,) = daemon.live.followers
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            # a flood of changes: far more than a follower's queue and the sockets' buffers hold
            instance = daemon.store.view(job).tasks["prepare"]
            for n in range(20_000):
                daemon.live.task_changed(job, "prepare", instance)
                if n % 100 == 0:
                    await asyncio.sleep(0)
            started = time.monotonic()
            assert (await client.get("/healthz")).status_code == 200
            assert time.monotonic() - started < 1.0
            await await_until(lambda: slow not in daemon.live.followers, timeout=30)
            assert slow.dropped and slow.queue.qsize() <= live.QUEUE  # bounded, then let go
            # the daemon serves the next follower as if nothing happened
            async with client.stream("GET", "/api/events") as reading:
                again = await trigger(client, "demo")
                got = await events(
                    reading, until=lambda e: e["event"] == "job" and e["data"] == {"job": again, "status": "succeeded"}
                )
                assert got
            stuck.close()

    asyncio.run(scenario())


def test_the_history_replays_in_order_and_a_gap_older_than_it_is_a_reset():
    async def scenario():
        hub = live.LiveEvents()

        class Instance:
            state, attempts, exit_code, reason, reused_from, duration = "running", (), None, "", None, None

        for n in range(5):
            hub.task_changed("j1" if n % 2 else "j2", f"t{n}", Instance())
        follower = hub.follow("j1", last_id=1)
        replay = [follower.queue.get_nowait() for _ in range(follower.queue.qsize())]
        assert [e.id for e in replay] == [2, 4] and all(e.job == "j1" for e in replay)
        assert hub.follow(None, last_id=hub.last_id + 5).queue.get_nowait().kind == "reset"
        for _ in range(live.HISTORY + 10):
            hub.task_changed("j1", "t", Instance())
        assert hub.follow(None, last_id=1).queue.get_nowait().kind == "reset"  # older than the history
        # a follower whose queue fills is dropped, the others go on
        quiet, busy = hub.follow(None), hub.follow(None)
        for _ in range(live.QUEUE + 1):
            hub.task_changed("j1", "t", Instance())
            busy.queue.get_nowait()
        assert quiet.dropped and quiet not in hub.followers and busy in hub.followers

    asyncio.run(scenario())
