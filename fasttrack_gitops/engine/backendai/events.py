"""The session event stream, `GET /events/session` (server-sent events, backendai-api.md §2.5).

    async with session_events(client, session_name=spec.name) as events:   # subscribed on enter
        created = await create_batch_session(client, spec)
        events.session_id = created.id                                     # filter on the id from now on
        async for event in events:                                         # SessionEvent, in order
            if event.name == "session_terminated":
                break
    # StreamDropped (a BackendAIError) when the stream ends, stalls or breaks: fall back to polling

The stream has no replay (what happened before the subscription is lost), so
subscribe before creating; a runner that finds its session again subscribes,
then asks GraphQL once (`session_result`) whether it already ended. The
stream never ends by itself: an end is a drop. The
manager (aiohttp-sse) sends a `: ping` comment every 15 s, so a read that
waits `idle_timeout` (45 s) with no byte at all means the stream is dead.
Filtering happens here too, on `sessionId` (25.x ignores it server-side) or
else on the name.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.sessions import SessionResult, SessionStatus

log = logging.getLogger("fasttrack_gitops.engine.backendai")

PATH = "/events/session"
DEFAULT_IDLE_TIMEOUT = 45.0  # three of the manager's 15 s keep-alive pings
_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
# A longer `retry:` (over 30 years in ms) means nothing, and int() refuses one of over 4,300 digits.
_MAX_RETRY_DIGITS = 12


class StreamDropped(errors.BackendAIError):
    """The event stream ended, went silent or broke; `events` says how many messages came before."""

    def __init__(self, message: str, *, events: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.events = events


@dataclass(frozen=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None  # the last event id seen so far (it persists across events)


class SSEParser:
    """An incremental text/event-stream parser (the WHATWG rules): feed bytes as they come, get whole events.

    Lines end with \\r\\n, \\n or \\r (also split across chunks); `:` lines are
    comments (keep-alives, counted in `comments`); `data:` lines join with \\n;
    a blank line dispatches; an event without data is not dispatched.
    """

    def __init__(self, *, max_line: int = 1 << 20) -> None:
        self.max_line = max_line
        self.comments = 0
        self.retry: int | None = None  # the reconnection time the server asked for, in ms
        self.last_id: str | None = None
        self._buffer = bytearray()
        self._skip_lf = False  # the previous chunk ended in \r: a leading \n belongs to it
        self._started = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            chunk = chunk[1:] if chunk[:1] == b"\n" else chunk
        self._buffer += chunk
        if not self._started and (len(self._buffer) >= len(_BOM) or _EOL.search(self._buffer)):
            self._started = True  # a byte-order mark may open the stream, and only the stream
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
        out: list[ServerSentEvent] = []
        end = 0
        for match in _EOL.finditer(self._buffer):
            line = bytes(self._buffer[end : match.start()]).decode("utf-8", "replace")
            end = match.end()
            if match.group() == b"\r" and end == len(self._buffer):
                self._skip_lf = True
            event = self._line(line)
            if event is not None:
                out.append(event)
        del self._buffer[:end]
        if len(self._buffer) > self.max_line:
            raise ValueError(f"an event-stream line longer than {self.max_line} bytes")
        return out

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS:
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        return ServerSentEvent(event, "\n".join(data), self.last_id) if data else None


_STATUS_WORDS = {"enqueued": SessionStatus.PENDING, "started": SessionStatus.RUNNING}


@dataclass(frozen=True)
class SessionEvent:
    """One lifecycle event: `session_*` (the session) or `kernel_*` (one of its containers)."""

    name: str
    session_id: str | None
    session_name: str | None
    reason: str | None = None
    exit_code: int | None = None  # on session_success/failure (23.09/24.03; null on 25.x), kernel_terminated
    owner_access_key: str | None = None
    kernel_id: str | None = None
    cluster_role: str | None = None
    cluster_idx: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_message(cls, message: ServerSentEvent) -> SessionEvent | None:
        """The event in an SSE message; None for one that is not a session or kernel event."""
        try:
            data = json.loads(message.data) if message.data else {}
        except ValueError:
            log.debug("event %s: data is not JSON: %.200r", message.event, message.data)
            return None
        if not isinstance(data, dict) or not message.event.startswith(("session_", "kernel_")):
            return None
        text = {
            key: str(data[key]) if data.get(key) is not None else None
            for key in ("sessionId", "sessionName", "reason", "ownerAccessKey", "kernelId", "clusterRole")
        }
        code, idx = data.get("exitCode"), data.get("clusterIdx")
        return cls(
            message.event,
            text["sessionId"],
            text["sessionName"],
            text["reason"],
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            text["ownerAccessKey"],
            text["kernelId"],
            text["clusterRole"],
            idx if isinstance(idx, int) else None,
            data,
        )

    @property
    def status(self) -> SessionStatus | None:
        """The session status this event announces (session_* events only; None when it names none we know)."""
        kind, _, word = self.name.partition("_")
        if kind != "session" or word in ("success", "failure"):
            return None
        status = _STATUS_WORDS.get(word) or SessionStatus.parse(word)
        return None if status is SessionStatus.UNKNOWN else status

    @property
    def result(self) -> SessionResult | None:
        return {"session_success": SessionResult.SUCCESS, "session_failure": SessionResult.FAILURE}.get(self.name)


class SessionEventStream:
    """`async with` subscribes (and closes); `async for` yields SessionEvents, then raises StreamDropped."""

    def __init__(
        self,
        client,
        *,
        session_name: str | None = None,
        session_id: str | None = None,
        scope: str = "*",
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.session_name, self.session_id = session_name, session_id
        self.scope, self.idle_timeout = scope, idle_timeout
        self.messages = 0  # SSE messages received, for every session
        self._client = client
        self._parser = SSEParser()
        self._pending: deque[SessionEvent] = deque()
        self._response: httpx.Response | None = None
        # response.aiter_bytes(): an async generator (closed with aclose), which httpx types as an AsyncIterator.
        self._chunks: Any = None
        self._done = False

    async def __aenter__(self) -> SessionEventStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> SessionEventStream:
        return self

    async def connect(self) -> None:
        """Open the stream (signed like any GET); once this returns, the manager has subscribed us."""
        if self._response is not None or self._done:
            return
        client = self._client
        if client.server is None:
            await client.negotiate()
        params = {"sessionName": self.session_name or "*", "scope": self.scope}
        if self.session_id:
            params["sessionId"] = self.session_id
        try:
            response = await client.open_stream(
                PATH,
                params=params,
                headers={"Accept": "text/event-stream"},
                timeout=httpx.Timeout(self.idle_timeout, connect=10.0),
            )
        except httpx.RequestError as exc:
            await self._drop(f"could not open it: {_why(exc, self.idle_timeout)}")
        except errors.BackendAIError:
            self._done = True
            raise
        kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if kind != "text/event-stream":
            await response.aclose()
            self._done = True
            raise errors.BackendAIError(
                f"Backend.AI GET {PATH} answered {kind or 'no content type'}, not an event stream",
                status=response.status_code,
                method="GET",
                path=PATH,
            )
        self._response, self._chunks = response, response.aiter_bytes()

    async def __anext__(self) -> SessionEvent:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            if self._response is None:
                await self.connect()
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                await self._drop("the manager closed it")
            except httpx.RequestError as exc:  # a broken connection, a read timeout, an undecodable body
                await self._drop(_why(exc, self.idle_timeout))
            try:
                messages = self._parser.feed(chunk)
            except ValueError as exc:
                await self._drop(str(exc))
            for message in messages:
                self.messages += 1
                event = SessionEvent.from_message(message)
                if event is not None and self._wanted(event):
                    self._pending.append(event)
        return self._pending.popleft()

    def _wanted(self, event: SessionEvent) -> bool:
        if self.session_id:
            return event.session_id == self.session_id
        return not self.session_name or event.session_name == self.session_name

    async def _drop(self, why: str) -> NoReturn:
        await self.aclose()
        endpoint = self._client.credentials.endpoint
        raise StreamDropped(
            f"the Backend.AI event stream (GET {PATH} at {endpoint}) dropped after {self.messages} events: {why}",
            events=self.messages,
            method="GET",
            path=PATH,
        )

    async def aclose(self) -> None:
        self._done = True
        chunks, response = self._chunks, self._response
        self._chunks = self._response = None
        if chunks is not None:
            await chunks.aclose()
        if response is not None:
            await response.aclose()


def session_events(
    client,
    *,
    session_name: str | None = None,
    session_id: str | None = None,
    scope: str = "*",
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> SessionEventStream:
    """The session event stream, filtered to one session when a name or id is given (see the module doc)."""
    return SessionEventStream(
        client, session_name=session_name, session_id=session_id, scope=scope, idle_timeout=idle_timeout
    )


def _why(exc: httpx.RequestError, idle_timeout: float) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data (not even a keep-alive) for {idle_timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return str(exc).strip() or type(exc).__name__
