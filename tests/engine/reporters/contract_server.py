"""A real HTTP server on 127.0.0.1 that stands in for GitHub, GitLab or Slack in tests.

Every request body is checked against the published schema of its
operation (tests/data/contracts/); a body that does not match is recorded as
a violation and answered 422, so a test that sends one fails twice over
(`server.violations` is asserted empty at the end of each `serving` block).
Routes are (method, path regex) -> handler(request) -> Answer; a test can
script faults for the next matching requests (403, 404, 422, 429 with
Retry-After, 500) with `fail_next`, or for every matching request during
the next seconds (an outage) with `fail_for`; an Answer with a `delay` is
held that long before it goes out (a server that times its clients out).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jsonschema


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict
    headers: dict  # lower-case names
    body: bytes
    match: re.Match | None = None

    def json(self):
        content_type = self.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:
            return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    status: int = 200
    body: object = None  # JSON-able, or bytes sent as they are
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds the answer is held back (a client's timeout shorter than this gives up first)


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[[Request], Answer]
    schema: dict | None = None  # the request body's JSON Schema


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client that was killed (kill -9) reset its connection
            return
        super().handle_error(request, client_address)


class ContractServer:
    def __init__(self):
        self.routes: list[Route] = []
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._faults: list[tuple[str, re.Pattern, Answer, list, bool]] = []
        self._outages: list[tuple[str, re.Pattern, Answer, float, bool]] = []  # (method, path, answer, until, handled)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def route(self, method: str, pattern: str, handler: Callable[[Request], Answer], *, schema: dict | None = None):
        self.routes.append(Route(method, re.compile(pattern + r"\Z"), handler, schema))

    def fail_next(self, method: str, pattern: str, answer: Answer, *, times: int = 1, handled: bool = False) -> None:
        """Answer the next `times` matching requests with `answer` instead of the route's handler (handled: as
        well as; see fail_for)."""
        self._faults.append((method, re.compile(pattern + r"\Z"), answer, [times], handled))

    def fail_for(self, method: str, pattern: str, answer: Answer, *, seconds: float, handled: bool = False) -> None:
        """Answer every matching request with `answer` for the next `seconds` seconds (an outage that ends);
        handled: the request is still carried out, only its answer is replaced (a gateway that timed out after
        the service did the work, which GitHub documents for its 502s)."""
        with self._lock:
            self._outages.append((method, re.compile(pattern + r"\Z"), answer, time.monotonic() + seconds, handled))

    def calls(self, method: str | None = None, pattern: str | None = None) -> list[Request]:
        found = re.compile(pattern + r"\Z") if pattern else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (found is None or found.match(r.path))
        ]

    def _handle(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            outage = None
            for method, pattern, answer, left, handled in self._faults:
                if left[0] > 0 and method == request.method and pattern.match(request.path):
                    left[0] -= 1
                    outage = (answer, handled)
                    break
            now = time.monotonic()
            outage = outage or next(
                (
                    (answer, handled)
                    for method, pattern, answer, until, handled in self._outages
                    if now < until and method == request.method and pattern.match(request.path)
                ),
                None,
            )
        if outage is not None:
            if outage[1]:
                self._route(request)
            return outage[0]
        return self._route(request)

    def _route(self, request: Request) -> Answer:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if route.method == request.method and match:
                request.match = match
                if route.schema is not None:
                    try:
                        body = request.json()
                    except ValueError as e:
                        return self._violation(request, f"body is not JSON: {e}")
                    errors = sorted(jsonschema.Draft202012Validator(route.schema).iter_errors(body), key=str)
                    if errors:
                        where = "/".join(str(p) for p in errors[0].absolute_path)
                        return self._violation(request, f"{where}: {errors[0].message}")
                return route.handler(request)
        return Answer(404, {"message": "Not Found"})

    def _violation(self, request: Request, message: str) -> Answer:
        with self._lock:
            self.violations.append(f"{request.method} {request.path}: {message}")
        return Answer(422, {"message": f"Validation Failed: {message}"})

    @contextlib.contextmanager
    def serving(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                answer = server._handle(request)
                if answer.delay:
                    time.sleep(answer.delay)
                raw = (
                    answer.body
                    if isinstance(answer.body, bytes)
                    else (b"" if answer.body is None else json.dumps(answer.body).encode())
                )
                try:
                    self.send_response(answer.status)
                    headers = {"Content-Type": "application/json; charset=utf-8", **answer.headers}
                    for name, value in headers.items():
                        self.send_header(name, str(value))
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out before a delayed answer
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
        assert not self.violations, "requests that break the published contract:\n" + "\n".join(self.violations)
