"""Fuzz: the event-stream parser (engine/backendai/events.py) and the session events it reads from messages.

Invariants: any bytes, cut into chunks anywhere, give the same events as the whole stream fed at once (line ends
and UTF-8 characters split across reads included); the only error is the parser's own ValueError for a line over
its limit; a message whose data is any JSON (or none) gives a SessionEvent or None.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.engine.backendai.events import ServerSentEvent, SessionEvent, SSEParser

# The pieces an event stream is made of, plus noise: fields, line ends of the three kinds, a BOM, UTF-8 cut in two.
PIECES = st.sampled_from(
    [b"data:", b"data: ", b"event: ", b"id: ", b"retry: ", b": ping", b"\r\n", b"\r", b"\n", b"\n\n", b"\xef\xbb\xbf"]
    + [b"session_started", b'{"sessionId": "s1"}', b"\xc3", b"\xa9", b"\x00", b"12", b"x", b" "]
)
STREAMS = st.one_of(st.lists(PIECES, max_size=40).map(b"".join), st.binary(max_size=300))


def parse(chunks: list[bytes]) -> tuple[list[ServerSentEvent], SSEParser]:
    parser = SSEParser(max_line=1 << 16)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(stream=STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_a_stream_cut_into_chunks_anywhere_gives_the_events_of_the_whole(stream, cuts):
    whole, one = parse([stream])
    pieces, many = parse(cut(stream, cuts))
    assert pieces == whole
    assert (many.retry, many.last_id, many.comments) == (one.retry, one.last_id, one.comments)


@given(stream=STREAMS)
def test_a_stream_fed_byte_by_byte_gives_the_events_of_the_whole(stream):
    assert parse([stream[i : i + 1] for i in range(len(stream))])[0] == parse([stream])[0]


@given(digits=st.integers(min_value=1, max_value=10_000))
def test_a_retry_field_of_any_length_is_read_or_ignored_never_an_error(digits):
    parser = SSEParser()
    events = parser.feed(b"retry: " + b"7" * digits + b"\ndata: x\n\n")
    assert events == [ServerSentEvent("message", "x", None)]


@given(line=st.integers(min_value=1, max_value=4096))
def test_only_a_line_over_the_limit_is_an_error(line):
    parser = SSEParser(max_line=1024)
    try:
        parser.feed(b"data: " + b"y" * line)
    except ValueError as e:
        assert line + 6 > 1024 and "longer than 1024 bytes" in str(e)
    else:
        assert line + 6 <= 1024


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
FIELDS = st.sampled_from(["sessionId", "sessionName", "reason", "exitCode", "clusterIdx", "kernelId", "clusterRole"])


@given(
    name=st.sampled_from(["session_started", "session_terminated", "session_success", "kernel_terminated", "x"])
    | st.text(max_size=20),
    data=st.one_of(
        st.dictionaries(FIELDS, JSON, max_size=7).map(json.dumps),
        JSON.map(json.dumps),
        st.text(max_size=40),
    ),
)
def test_any_message_gives_a_session_event_or_none(name, data):
    event = SessionEvent.from_message(ServerSentEvent(name, data))
    if event is not None:
        assert event.name == name
        assert event.exit_code is None or isinstance(event.exit_code, int)
        event.status, event.result  # noqa: B018 - reading them must not fail
