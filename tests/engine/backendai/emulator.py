"""A Backend.AI manager emulator for tests: a real HTTP server on 127.0.0.1, in a thread.

It checks every request the way the 23.09 manager does (backendai-api.md §1),
with its own code (manager_rules.py, not our client's): the version header
against the server's valid list (400 "Unsupported API version."), then for
authenticated routes the Date within ±15 minutes of its clock (400
invalid-auth-params "Date/time sync error"), the access key (401 "Access key
not found"), the HMAC signature (401 "Signature mismatch") and a
rolling-window rate limit per keypair (429). Every answer carries
X-RateLimit-Limit/-Remaining/-Window, as the manager's do. By code reading,
23.09's rate limiter raises its 429 before it adds them; the emulator's own
limit and `rate_limited()` put them on by default, `rate_limited(headers=False)`
leaves them off.

Routes are a table: `emu.route(method, "/session/{name}", handler, auth=True)`;
a handler gets a `Request` (with `.params` from the pattern) and returns a
`Reply`, or a `Stream` (a chunked body written as its iterator yields, for
server-sent events; yielding `DROP` cuts the connection mid-body). Built in:
`GET /` (the version hello, unauthenticated), `GET|POST /auth` (the manager's
echo test), `GET /config/resource-slots` and `POST /admin/gql`, whose root
fields the parts register: `emu.gql_field("compute_session", resolve,
"ComputeSession")`, where `resolve(req, args)` gives a dict (or None) from
which the query's selection is cut, as graphene would. Later parts (sessions,
events, vfolders) add their routes the same way, and clean up after
themselves with `emu.on_close(callback)`.

Faults on demand, each for the next `times` matching requests (path=None: any):
`fail(503, times=2)`, `rate_limited(...)`, `slow(seconds)`, `drop()` (close
without answering), `not_a_manager()` (GET / is a web UI's HTML page), and
`clock_skew` (shifts the emulator's clock, and so its Date header).
A manager restart (tests/chaos): `stop_serving()` closes the port and cuts
every open connection, event streams included, and `start_serving()` listens
on the same port again; what the manager keeps in its database (sessions,
folders, faults) stays, as the agents keep running the sessions meanwhile.
`cut_streams()` cuts the open event streams only (a proxy dropping them).
Every request is recorded in `emu.requests` (method, target, headers, body, status, reply headers).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from engine.backendai.manager_rules import (  # noqa: F401  (re-exported for tests)
    ACCESS_KEY,
    SECRET_KEY,
    SERVERS,
    VALID_23_09,
    VALID_24_03,
    VALID_25_15,
    Reply,
    Request,
    authenticate,
    limits,
)

DROP = object()  # a handler's or fault's answer: close the connection without a response


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # None when dropped
    reply_headers: dict[str, str] | None = None
    at: float = field(default_factory=time.time)  # when it arrived (bench/critical_path_bench.py)


@dataclass
class Stream:
    """A streamed answer: `chunks` is written as it yields (chunked encoding); `DROP` cuts the connection."""

    status: int = 200
    chunks: Iterable[bytes | object] = ()
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Route:
    method: str
    regex: re.Pattern
    handler: Callable[[Request], Any]
    auth: bool


@dataclass
class _Fault:
    kind: str
    times: int
    path: str | None
    args: dict


class Emulator:
    def __init__(
        self,
        server: str = "23.09",
        *,
        keypairs: dict[str, str] | None = None,
        rate_limit: int = 1000,
        window: int = 900,
    ) -> None:
        self.version, self.manager, self.valid_versions = SERVERS[server]
        self.keypairs = {ACCESS_KEY: SECRET_KEY} if keypairs is None else keypairs
        self.rate_limit, self.window = rate_limit, window
        self.clock_skew = timedelta(0)
        self.requests: list[Recorded] = []
        self._routes: list[_Route] = []
        self._faults: list[_Fault] = []
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._port = 0  # 0 until first started: then the same port across stop_serving()/start_serving()
        self._connections: set = set()  # open client sockets, cut by stop_serving()
        self._streams: set = set()  # the sockets of open event streams, cut by cut_streams()
        self._on_close: list[Callable[[], Any]] = []
        self.route("GET", "/", lambda req: Reply.json({"version": self.version, "manager": self.manager}), auth=False)
        self.route("GET", "/auth", lambda req: Reply.json({"authorized": "yes", **req.query}))
        self.route("POST", "/auth", lambda req: Reply.json({"authorized": "yes", **(req.json() or {})}))
        self.route("GET", "/config/resource-slots", lambda req: Reply.json({"cpu": "count", "mem": "bytes"}))
        self._gql_fields: dict[str, tuple[Callable[[Request, dict], Any], str]] = {}
        self.route("POST", "/admin/gql", self._gql)

    # -- set-up ---------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Callable[[Request], Any], *, auth: bool = True) -> None:
        """Add (or replace) a route; `{name}` in the pattern matches one path segment."""
        regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$")
        self._routes = [r for r in self._routes if not (r.method == method and r.regex.pattern == regex.pattern)]
        self._routes.append(_Route(method, regex, handler, auth))

    def on_close(self, callback: Callable[[], Any]) -> None:
        """Call `callback` when the emulator stops (after streams are told to end), last added first."""
        self._on_close.append(callback)

    @property
    def stopping(self) -> threading.Event:
        """Set when the emulator stops: long-running handlers and streams wait on it."""
        return self._stopping

    def gql_field(self, name: str, resolve: Callable[[Request, dict], Any], type_name: str) -> None:
        """Answer the GraphQL root field `name` with `resolve(req, args)`: a dict, a list of dicts, or None."""
        self._gql_fields[name] = (resolve, type_name)

    def gql_mutation(self, name: str, resolve: Callable[[Request, dict], Any], type_name: str) -> None:
        """Answer the GraphQL mutation `name` with `resolve(req, args)` (the emulator refuses any other mutation)."""
        self._gql_fields["mutation:" + name] = (resolve, type_name)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.clock_skew

    @property
    def endpoint(self) -> str:
        assert self._port, "the emulator is not started"
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> Emulator:
        self.start_serving()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # wakes slow answers and ends streams
        for callback in reversed(self._on_close):
            callback()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def start_serving(self) -> None:
        """Listen (again) on 127.0.0.1: a free port the first time, the same one after stop_serving()."""
        assert self._httpd is None, "the emulator serves already"
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.emulator = self  # type: ignore[attr-defined]
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def stop_serving(self) -> None:
        """Close the port and cut every open connection, as a manager process that goes away."""
        assert self._httpd is not None, "the emulator is not serving"
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        with self._lock:
            connections = list(self._connections)
        _cut(connections)

    def cut_streams(self) -> int:
        """Cut the open event streams (the client sees its stream end mid-body); how many there were."""
        with self._lock:
            streams = list(self._streams)
        _cut(streams)
        return len(streams)

    # -- faults ---------------------------------------------------------------------------------
    def fail(self, status: int = 503, times: int = 1, *, path: str | None = None) -> None:
        self._faults.append(_Fault("status", times, path, {"status": status}))

    def rate_limited(
        self,
        times: int = 1,
        *,
        limit: int = 100,
        remaining: int = 0,
        window: int = 900,
        headers: bool = True,
        path: str | None = None,
    ) -> None:
        self._faults.append(_Fault("429", times, path, {"limits": limits(limit, remaining, window) if headers else {}}))

    def slow(self, seconds: float, times: int = 1, *, path: str | None = None) -> None:
        self._faults.append(_Fault("slow", times, path, {"seconds": seconds}))

    def drop(self, times: int = 1, *, path: str | None = None, handled: bool = False) -> None:
        """Close the connection without an answer; handled=True: after doing the work (a manager stopped mid-request)."""
        self._faults.append(_Fault("drop", times, path, {"handled": handled}))

    def not_a_manager(self) -> None:
        page = b"<!doctype html><html><head><title>Backend.AI Web UI</title></head><body></body></html>"
        self.route("GET", "/", lambda req: Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}), auth=False)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if urlsplit(r.target).path == path]

    # -- serving --------------------------------------------------------------------------------
    def respond(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply | object:
        record = Recorded(method, target, headers, body)
        with self._lock:
            self.requests.append(record)
        split = urlsplit(target)
        req = Request(method, target, split.path, dict(parse_qsl(split.query)), headers, body)
        reply = self._fault(req) or self._serve(req)
        if isinstance(reply, (Reply, Stream)):
            record.status, record.reply_headers = reply.status, reply.headers
        return reply

    def _fault(self, req: Request) -> Reply | object | None:
        with self._lock:
            fault = next((f for f in self._faults if f.path in (None, req.path)), None)
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
        if fault.kind == "drop":
            if fault.args["handled"]:
                self._serve(req)
            return DROP
        if fault.kind == "slow":
            self._stopping.wait(fault.args["seconds"])
            return None
        if fault.kind == "429":
            reply = Reply.problem(429, "rate-limit-exceeded", "You have reached your API query rate limit.")
            reply.headers.update(fault.args["limits"])
            return reply
        status = fault.args["status"]
        if status == 503:
            return Reply.problem(
                503, "server-frozen", "The server is frozen due to maintenance. Please try again later."
            )
        return Reply.problem(status, "internal-server-error", "Internal server error.")

    def _serve(self, req: Request) -> Reply | object:
        matches = [(r, m) for r in self._routes if (m := r.regex.match(req.path))]
        if not matches:
            return Reply.problem(404, "url-not-found", "Unknown URL path.", data=req.path)
        route, match = next(((r, m) for r, m in matches if r.method == req.method), (None, None))
        if route is None:
            return Reply.problem(405, "method-not-allowed", "Method not allowed.")
        req.params = match.groupdict()
        version = req.headers.get("x-backendai-version")
        if version is not None and version not in self.valid_versions:  # api_middleware
            return Reply.problem(400, "generic-bad-request", "Bad request.", "Unsupported API version.")
        headers = limits(1000, 1000, self.window)
        if route.auth:
            refusal = authenticate(req, self.keypairs, self.now())
            if refusal:
                return refusal
            count = self._count(req.access_key)
            headers = limits(self.rate_limit, self.rate_limit - count, self.window)
            if count > self.rate_limit:
                reply = Reply.problem(429, "rate-limit-exceeded", "You have reached your API query rate limit.")
                reply.headers.update(limits(self.rate_limit, 0, self.window))
                return reply
        reply = route.handler(req)
        if isinstance(reply, (Reply, Stream)):
            reply.headers.update(headers)
        return reply

    def _gql(self, req: Request) -> Reply:
        """graphene's formatted result: 200 with {"data": ...}, or {"data": null, "errors": [...]}."""
        doc = req.json() or {}
        try:
            data = {}
            mutations = any(key.startswith("mutation:") for key in self._gql_fields)
            for name, args, selection in parse_query(
                doc.get("query", ""), doc.get("variables") or {}, mutations=mutations
            ):
                if name not in self._gql_fields:
                    kind = "Mutations" if name.startswith("mutation:") else "Queries"
                    raise GQLError(f"Cannot query field '{name.removeprefix('mutation:')}' on type '{kind}'.")
                resolve, type_name = self._gql_fields[name]
                found = resolve(req, args)
                key = name.removeprefix("mutation:")
                data[key] = None if found is None else select(found, selection, type_name)
        except GQLError as exc:
            return Reply.json({"data": None, "errors": [{"message": str(exc), "locations": None, "path": None}]})
        return Reply.json({"data": data})

    def _count(self, access_key: str) -> int:
        """The rolling count of this keypair's requests in the window, this one and refused ones included."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(access_key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            hits.append(now)
            return len(hits)


class _Server(ThreadingHTTPServer):
    """Keeps the emulator's set of open connections, so a restart can cut them."""

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.emulator._lock:  # type: ignore[attr-defined]
            self.emulator._connections.add(request)  # type: ignore[attr-defined]
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.emulator._lock:  # type: ignore[attr-defined]
            self.emulator._connections.discard(request)  # type: ignore[attr-defined]
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a connection cut (a restart) or reset by its client: no news
            return
        super().handle_error(request, client_address)


def _cut(sockets: list) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed meanwhile
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx uses it
    disable_nagle_algorithm = True  # small answers go out at once, not after the 40 ms delayed-ACK wait
    server_version = "BackendAI"
    sys_version = ""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.emulator.respond(self.command, self.path, headers, body)  # type: ignore[attr-defined]
        if reply is DROP:
            self.close_connection = True
            return
        if isinstance(reply, Stream):
            self._stream(reply)
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def _stream(self, reply: Stream) -> None:
        """Headers now, then each chunk as the iterator yields it; a clean end sends the last chunk."""
        self.close_connection = True  # the connection ends with the stream
        chunks = iter(reply.chunks)
        emulator = self.server.emulator  # type: ignore[attr-defined]
        with emulator._lock:
            emulator._streams.add(self.connection)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for chunk in chunks:
                if chunk is DROP:  # cut: the client sees the body end without its last chunk
                    return
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away, or the stream was cut
            pass
        finally:
            with emulator._lock:
                emulator._streams.discard(self.connection)
            close = getattr(chunks, "close", None)
            if close:
                close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, from the emulator's (possibly skewed) clock."""
        return formatdate(self.server.emulator.now().timestamp(), usegmt=True)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the requests are recorded instead
        pass


# -- a minimal GraphQL reader: one query, fields, arguments, variables, nested selections -------------
_GQL_TOKEN = re.compile(
    r'[\s,]+|#[^\n]*|(?P<p>[{}()!:$=\[\]])|(?P<s>"(?:[^"\\]|\\.)*")'
    r"|(?P<n>-?\d+(?:\.\d+)?)|(?P<w>[A-Za-z_]\w*)|(?P<bad>.)"
)


class GQLError(Exception):
    """A query graphene would refuse; the message is graphene's wording where it matters."""


def parse_query(text: str, variables: dict, *, mutations: bool = False) -> list[tuple[str, dict, list | None]]:
    """The root fields of a query document: [(name, {arg: value}, selection or None)]; a mutation only when
    `mutations` (the fields registered with gql_mutation), each root field then named `mutation:<name>`."""
    tokens = []
    for match in _GQL_TOKEN.finditer(text):
        if match.lastgroup == "bad":
            raise GQLError(f"Syntax Error: Unexpected character {match.group()!r}.")
        if match.lastgroup:
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
    tokens.append(("end", ""))
    at = 0

    def take(expected: str | None = None) -> str:
        nonlocal at
        kind, value = tokens[at]
        if kind == "end" or (expected is not None and value != expected):
            raise GQLError(f"Syntax Error: Expected {expected or 'a name'}, found {value or '<EOF>'!r}.")
        at += 1
        return value

    def value() -> Any:
        kind, word = tokens[at]
        take()
        if word == "$":
            return variables.get(take())
        if kind in ("s", "n"):
            return json.loads(word)
        return {"true": True, "false": False, "null": None}.get(word, word)

    def selection() -> list:
        take("{")
        fields = []
        while tokens[at][1] != "}":
            name, args = take(), {}
            if tokens[at][1] == "(":
                take("(")
                while tokens[at][1] != ")":
                    key = take()
                    take(":")
                    args[key] = value()
                take(")")
            fields.append((name, args, selection() if tokens[at][1] == "{" else None))
        take("}")
        return fields

    prefix = ""
    if tokens[at][1] in ("query", "mutation"):
        if take() == "mutation":
            if not mutations:
                raise GQLError("this emulator answers queries only")
            prefix = "mutation:"
        if tokens[at][0] == "w":
            take()  # the operation's name
        if tokens[at][1] == "(":  # variable definitions: the values come from `variables`
            while take() != ")":
                pass
    fields = selection()
    if tokens[at][0] != "end":
        raise GQLError(f"Syntax Error: Unexpected {tokens[at][1]!r}.")
    return [(prefix + name, args, sub) for name, args, sub in fields]


def select(found: Any, selection: list | None, type_name: str) -> Any:
    """Cut `found` (a dict, or a list of them) down to the selected fields; an unknown field is an error."""
    if isinstance(found, list):
        return [select(item, selection, type_name) for item in found]
    if selection is None:
        raise GQLError(f"Field of type '{type_name}' must have a selection of subfields.")
    out = {}
    for name, _args, sub in selection:
        if name not in found:
            raise GQLError(f"Cannot query field '{name}' on type '{type_name}'.")
        value = found[name]
        out[name] = select(value, sub, f"{type_name}.{name}") if sub is not None and value is not None else value
    return out
