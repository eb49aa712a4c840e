"""GET /api/events: the daemon's live events (live.py) as Server-Sent Events; `?job=ID` follows one job.

A raw ASGI response rather than a StreamingResponse, because a client that
stops reading must cost a bounded amount: every write has SEND_TIMEOUT
seconds, after which the stream ends; a follower whose queue fills is
dropped by the publisher (live.py) and its stream ends too. A comment line
every PING seconds finds connections that died silently. The client
resumes with Last-Event-ID (EventSource sends it by itself).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import Response

from fasttrack_gitops.daemon.live import Follower, LiveEvents

PING = 15.0
SEND_TIMEOUT = 10.0
RETRY_MS = 1000  # how soon EventSource reconnects


def last_event_id(headers, query) -> int | None:
    given = headers.get("last-event-id") or query.get("last_event_id") or ""
    return int(given) if given.isascii() and given.isdigit() and len(given) < 19 else None


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(self, live: LiveEvents, follower: Follower):
        # Not Response.__init__: it would declare a Content-Length of 0 for a body that never ends.
        self.status_code, self.background = 200, None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # a proxy (nginx) passes each event on at once
        ]
        self.live, self.follower = live, follower

    async def __call__(self, scope, receive, send) -> None:
        gone = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await _timed(send({"type": "http.response.start", "status": 200, "headers": self.raw_headers}))
            await _timed(_body(send, f"retry: {RETRY_MS}\n: live events of fasttrack-gitops\n\n".encode()))
            while not gone.is_set() and not self.follower.dropped:
                getting = asyncio.create_task(self.follower.queue.get())
                closing = asyncio.create_task(gone.wait())
                done, _ = await asyncio.wait({getting, closing}, timeout=PING, return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                if getting in done:
                    pending = [getting.result()]
                    while not self.follower.queue.empty():  # what piled up goes in one write
                        pending.append(self.follower.queue.get_nowait())
                    chunks = [event.sse() for event in pending if event is not None]  # None: the daemon stops
                    if chunks:
                        await _timed(_body(send, b"".join(chunks)))
                else:
                    getting.cancel()
                    if not gone.is_set():
                        await _timed(_body(send, b": ping\n\n"))
            if not gone.is_set():  # dropped, or the daemon stops: the response ends properly
                await _timed(send({"type": "http.response.body", "body": b"", "more_body": False}))
        except (asyncio.TimeoutError, OSError):
            pass  # a client that does not read, or went away: its stream ends here
        finally:
            self.live.unfollow(self.follower)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _body(send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _timed(sending) -> None:
    await asyncio.wait_for(sending, timeout=SEND_TIMEOUT)
