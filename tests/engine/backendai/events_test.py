"""The session event stream: the SSE parser (pure), then GET /events/session over real sockets."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import await_until
from engine.backendai.emulator import Emulator
from engine.backendai.emulator_sessions import install

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.events import (
    ServerSentEvent,
    SessionEvent,
    SSEParser,
    StreamDropped,
    session_events,
)
from fasttrack_gitops.engine.backendai.session_spec import SessionSpec
from fasttrack_gitops.engine.backendai.sessions import (
    SessionResult,
    SessionStatus,
    create_batch_session,
    session_result,
)


def parse(*chunks: bytes, parser: SSEParser | None = None) -> list[ServerSentEvent]:
    parser = parser or SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


# -- the parser --------------------------------------------------------------------------------------

MANAGER_STREAM = (  # what aiohttp-sse writes: \r\n separators, a ping comment between events
    b'event: session_enqueued\r\ndata: {"sessionId": "s1", "exitCode": null}\r\n\r\n'
    b": ping\r\n\r\n"
    b'event: session_failure\r\ndata: {"sessionId": "s1", "exitCode": 3}\r\n\r\n'
)


def test_the_managers_stream_parses_into_events():
    parser = SSEParser()
    events = parse(MANAGER_STREAM, parser=parser)
    assert [(e.event, json.loads(e.data)["exitCode"]) for e in events] == [
        ("session_enqueued", None),
        ("session_failure", 3),
    ]
    assert parser.comments == 1


def test_any_split_of_the_bytes_gives_the_same_events():
    whole = parse(MANAGER_STREAM)
    assert parse(*(MANAGER_STREAM[i : i + 1] for i in range(len(MANAGER_STREAM)))) == whole
    for cut in range(len(MANAGER_STREAM)):
        assert parse(MANAGER_STREAM[:cut], MANAGER_STREAM[cut:]) == whole


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(eol):
    text = eol.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert parse(text) == [ServerSentEvent("a", "1\n2"), ServerSentEvent("message", "3")]


def test_a_cr_at_the_end_of_a_chunk_is_not_a_blank_line():
    assert parse(b"data: a\r", b"\ndata: b\r\n\r\n") == [ServerSentEvent("message", "a\nb")]


def test_field_rules():
    events = parse(
        b"data:x\ndata:  y\ndata\nfoo: ignored\n\n"  # no space, two spaces, no colon, unknown field
        b"event: only-a-type\n\n"  # no data: not dispatched, and the type does not leak
        b"id: 7\nretry: 2500\ndata: z\n\n"
        b"id: bad\0id\nretry: soon\ndata: w\n\n"
    )
    assert events == [
        ServerSentEvent("message", "x\n y\n"),
        ServerSentEvent("message", "z", "7"),
        ServerSentEvent("message", "w", "7"),
    ]


def test_a_bom_opens_the_stream_and_utf8_survives_any_cut():
    text = "\ufeffdata: 세션 ✓\n\n".encode()
    assert parse(*(text[i : i + 1] for i in range(len(text)))) == [ServerSentEvent("message", "세션 ✓")]
    assert parse(b"data: \xef\xbb\xbfx\n\n") == [ServerSentEvent("message", "\ufeffx")]  # only at the start


def test_an_unfinished_event_is_not_dispatched_and_lines_are_bounded():
    assert parse(b"data: half") == []
    with pytest.raises(ValueError):
        SSEParser(max_line=10).feed(b"data: " + b"x" * 20)


def test_session_events_from_messages():
    kernel = SessionEvent.from_message(
        ServerSentEvent(
            "kernel_terminated",
            json.dumps(
                {
                    "reason": "task-finished",
                    "sessionName": "n",
                    "ownerAccessKey": "AK",
                    "sessionId": "s",
                    "exitCode": 3,
                    "kernelId": "k",
                    "clusterRole": "main",
                }
            ),
        )
    )
    assert (kernel.kernel_id, kernel.cluster_role, kernel.exit_code, kernel.status) == ("k", "main", 3, None)

    def event(name, **data):
        return SessionEvent.from_message(ServerSentEvent(name, json.dumps(data)))

    assert event("session_enqueued").status is SessionStatus.PENDING
    assert event("session_pending").status is SessionStatus.PENDING  # 25.x's name for it
    assert event("session_started").status is SessionStatus.RUNNING
    assert event("session_warming_up").status is None  # a newer status: no claim
    success = event("session_success", exitCode=True)
    assert (success.status, success.result, success.exit_code) == (None, SessionResult.SUCCESS, None)
    assert event("bgtask_done") is None
    assert SessionEvent.from_message(ServerSentEvent("session_started", "not json")) is None


# -- the stream --------------------------------------------------------------------------------------


def run(client, scenario):
    async def main():
        async with client:
            return await scenario(client)

    return asyncio.run(main())


def batch(name: str, command: str = "exit 0") -> SessionSpec:
    return SessionSpec(name=name, image="python", startup_command=command)


async def collect(events, until: str = "session_terminated", *, count: int = 1) -> list[SessionEvent]:
    seen = []
    async for event in events:
        seen.append(event)
        count -= event.name == until
        if count == 0:
            return seen
    return seen


def test_a_stream_sees_only_its_session(session_emulator, make_client):
    async def scenario(client):
        async with (
            session_events(client, session_name="ftg-mine-1") as mine,
            session_events(client, scope="session") as everything,
        ):
            await create_batch_session(client, batch("ftg-other-1"))
            await create_batch_session(client, batch("ftg-mine-1", "exit 4"))
            return await collect(mine), await collect(everything, count=2)

    mine, everything = run(make_client(session_emulator), scenario)
    assert {e.session_name for e in mine} == {"ftg-mine-1"} and any(e.name.startswith("kernel_") for e in mine)
    assert next(e.exit_code for e in mine if e.name == "session_failure") == 4
    assert {e.session_name for e in everything} == {"ftg-mine-1", "ftg-other-1"}
    assert not any(e.name.startswith("kernel_") for e in everything)  # scope=session, server-side
    target = session_emulator.requests_to("/events/session")[0].target
    assert "sessionName=ftg-mine-1" in target and session_emulator.requests_to("/events/session")[0].status == 200


def test_on_25x_the_id_is_filtered_here_and_the_exit_code_comes_from_graphql(make_client):
    with Emulator("25.15") as emu:
        install(emu, step=0.02)

        async def scenario(client):
            async with session_events(client) as stream:
                await create_batch_session(client, batch("ftg-other-1", "exit 1"))
                mine = await create_batch_session(client, batch("ftg-mine-1", "exit 3"))
                stream.session_id = mine.id
                seen = await collect(stream)
            return seen, await session_result(client, mine.id)

        seen, outcome = run(make_client(emu), scenario)
    assert {e.session_name for e in seen} == {"ftg-mine-1"}
    assert [e.name for e in seen] == [
        "session_pending",
        "session_scheduled",
        "session_preparing",
        "session_started",
        "session_failure",
        "session_terminating",
        "session_terminated",
    ]
    assert next(e for e in seen if e.name == "session_failure").exit_code is None  # 25.x sends null
    assert outcome.exit_code == 3


def test_a_stream_that_drops_ends_with_stream_dropped(session_emulator, make_client):
    session_emulator.sessions.drop_stream(after=2)

    async def scenario(client):
        seen = []
        with pytest.raises(StreamDropped) as dropped:
            async with session_events(client, session_name="ftg-task-1") as events:
                await create_batch_session(client, batch("ftg-task-1"))
                async for event in events:
                    seen.append(event.name)
        return seen, dropped.value

    seen, dropped = run(make_client(session_emulator), scenario)
    assert seen == ["session_enqueued", "session_scheduled"] and dropped.events == 2
    assert isinstance(dropped, errors.BackendAIError) and "dropped after 2 events" in str(dropped)


def test_a_silent_stream_is_dropped_after_the_idle_timeout(session_emulator, make_client):
    session_emulator.sessions.silent_stream()

    async def scenario(client):
        started = time.monotonic()
        with pytest.raises(StreamDropped) as dropped:
            async with session_events(client, idle_timeout=0.3) as events:
                await collect(events)
        return time.monotonic() - started, dropped.value

    waited, dropped = run(make_client(session_emulator), scenario)
    # the bounds are the behaviour: the stream is given its idle timeout, and dropped once it passes
    assert 0.3 <= waited < 3 and "no data (not even a keep-alive) for 0.3 s" in str(dropped)


def test_a_stream_whose_headers_never_come_is_dropped_too(session_emulator, make_client):
    session_emulator.slow(5, path="/events/session")

    async def scenario(client):
        with pytest.raises(StreamDropped) as dropped:
            await session_events(client, idle_timeout=0.3).connect()
        return dropped.value

    assert "could not open it" in str(run(make_client(session_emulator), scenario))


def test_keep_alives_hold_a_quiet_stream_open(make_client):
    with Emulator() as emu:
        sessions = install(emu, step=0.02, ping_interval=0.05)

        async def scenario(client):
            async with session_events(client, session_name="ftg-late-1", idle_timeout=1.0) as events:
                reading = asyncio.ensure_future(collect(events))  # waiting on the stream from now on
                # nothing but pings, at least 0.05 s apart (20 to an idle timeout, room for a busy machine),
                # until 25 have come: the reader waited longer than its idle timeout, held by them alone
                await await_until(lambda: sessions.pings_sent >= 25 or reading.done(), what="25 keep-alive pings")
                await create_batch_session(client, batch("ftg-late-1"))
                return await reading

        seen = run(make_client(emu), scenario)
    assert seen[-1].name == "session_terminated"


def test_a_consumer_may_stop_waiting_at_any_time(session_emulator, make_client):
    async def scenario(client):
        async with session_events(client, session_name="ftg-never-1") as events:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(events.__anext__(), 0.2)  # e.g. the task's timeout
        return [event async for event in events]  # closed: ends quietly

    assert run(make_client(session_emulator), scenario) == []


def test_a_refused_stream_is_an_error_not_a_drop(session_emulator, make_client):
    async def scenario(client):
        with pytest.raises(errors.BackendAIError) as refused:
            await session_events(client, session_id="not-a-uuid").connect()
        return refused.value

    refused = run(make_client(session_emulator), scenario)
    assert not isinstance(refused, StreamDropped) and refused.status == 400 and "sessionId" in str(refused)


def test_a_wrong_secret_on_the_stream_is_an_auth_error(session_emulator, make_client):
    async def scenario(client):
        with pytest.raises(errors.AuthError):
            await session_events(client).connect()

    run(make_client(session_emulator, secret="not-the-secret"), scenario)


def test_a_retry_field_too_long_to_be_a_time_is_ignored():
    """Found by tests/fuzz/sse_test.py: `retry:` with 4,301 digits raised int()'s ValueError, which dropped the
    whole stream as if it had broken. Now the field is ignored, as the standard says of any unreadable retry."""
    parser = SSEParser()
    assert parser.feed(b"retry: " + b"7" * 4301 + b"\ndata: x\n\nretry: 1500\n") == [ServerSentEvent("message", "x")]
    assert parser.retry == 1500
