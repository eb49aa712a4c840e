"""`Client`: signed, retried, time-limited requests to a Backend.AI manager, on httpx.AsyncClient.

    async with Client(Credentials.from_env()) as client:
        server = await client.negotiate()          # GET / -> the API version to send
        slots = await client.request("GET", "/config/resource-slots")
        info = await client.request("GET", "/session/{name}", path_params={"name": name})

`path` may hold `{placeholders}` filled from `path_params` (each value
percent-quoted, so a name can never change the path); the unfilled template
is the key of `client.calls`, which counts every HTTP request sent
(retries included) by (method, template), for tests that budget API calls.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from fasttrack_gitops import __version__
from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.auth import Clock, KeypairAuth, utcnow
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.retry import (
    IDEMPOTENT_METHODS,
    RateLimit,
    RetryPolicy,
    rate_limit_wait,
)
from fasttrack_gitops.engine.backendai.versions import ServerInfo, choose_version

log = logging.getLogger("fasttrack_gitops.engine.backendai")

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
DEFAULT_RETRY = RetryPolicy()
_DEFAULT = object()
# Transport errors raised before a byte of the request left: safe to repeat for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Client:
    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Clock = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        transport: httpx.AsyncBaseTransport | None = None,
        trust_env: bool = True,
    ) -> None:
        self.credentials = credentials
        self.retry = retry
        self.server: ServerInfo | None = None
        self.rate_limit: RateLimit | None = None  # the latest X-RateLimit-* the manager sent
        self.calls: Counter[tuple[str, str]] = Counter()
        self._clock, self._sleep, self._random = clock, sleep, random
        self._auth: KeypairAuth | None = None
        self._negotiating = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=credentials.endpoint,
            timeout=timeout,
            transport=transport,
            trust_env=trust_env,
            follow_redirects=False,
            headers={"User-Agent": f"fasttrack-gitops/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"Client(endpoint={self.credentials.endpoint!r}, access_key={self.credentials.access_key!r})"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def negotiate(self) -> ServerInfo:
        """Ask the manager (`GET /`, unsigned) which API it speaks; pick the version we send."""
        endpoint = self.credentials.endpoint
        response, attempts = await self._send("GET", "/", "/", auth=None, idempotent=True)
        if response.status_code >= 500:
            raise self._error(response, "/", attempts=attempts)
        hello = _json_object(response) if response.status_code == 200 else None
        if not hello or not isinstance(hello.get("version"), str) or not isinstance(hello.get("manager"), str):
            raise errors.NotAManagerError(
                f"{endpoint} does not answer like a Backend.AI manager: GET / gave {_what(response)}; "
                "set BACKEND_ENDPOINT to the manager's API endpoint (not the web UI)",
                status=response.status_code,
                method="GET",
                path="/",
            )
        version = choose_version(hello["version"], endpoint=endpoint, manager=hello["manager"])
        self.server = ServerInfo(endpoint, hello["version"], hello["manager"], version)
        self._auth = KeypairAuth(self.credentials.access_key, self.credentials.secret_key, version, clock=self._clock)
        log.debug(
            "Backend.AI manager %s at %s: API %s, sending %s", hello["manager"], endpoint, hello["version"], version
        )
        return self.server

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        path_params: Mapping[str, Any] | None = None,
        timeout: Any = _DEFAULT,
        idempotent: bool | None = None,
    ) -> Any:
        """The parsed JSON answer (bytes when it is not JSON, None when empty); errors raise BackendAIError."""
        response = await self.send(
            method, path, json=json, params=params, path_params=path_params, timeout=timeout, idempotent=idempotent
        )
        if not response.content:
            return None
        if _is_json(response):
            return response.json()
        return response.content

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        path_params: Mapping[str, Any] | None = None,
        timeout: Any = _DEFAULT,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """The successful httpx.Response (body read) of a signed request; negotiates first when needed."""
        if self._auth is None:
            async with self._negotiating:  # the first requests of many tasks at once: negotiate once
                if self._auth is None:
                    await self.negotiate()
        method = method.upper()
        real_path = (
            path.format_map({k: quote(str(v), safe="") for k, v in path_params.items()}) if path_params else path
        )
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        response, attempts = await self._send(
            method, path, real_path, json=json, params=params, timeout=timeout, auth=self._auth, idempotent=idempotent
        )
        if response.status_code >= 300:  # a redirect too: following it would sign for another host
            raise self._error(response, real_path, attempts=attempts)
        return response

    async def open_stream(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """A signed GET whose body is read as it arrives (the event stream); close the response when done.

        Not retried: a stream that cannot open is the caller's to fall back from.
        """
        if self._auth is None:
            async with self._negotiating:
                if self._auth is None:
                    await self.negotiate()
        request = self._http.build_request(
            "GET", path, params=params, headers=headers, timeout=timeout or httpx.USE_CLIENT_DEFAULT
        )
        self.calls[("GET", path)] += 1
        response = await self._http.send(request, auth=self._auth, stream=True)
        if response.status_code >= 300:
            await response.aread()
            await response.aclose()
            raise self._error(response, path, attempts=1)
        return response

    @property
    def unsigned(self) -> httpx.AsyncClient:
        """The connection pool for requests the manager does not sign (the storage proxy's, by token)."""
        return self._http

    @property
    def sleep(self):
        """The sleep retries wait with (a fake one in tests)."""
        return self._sleep

    @property
    def random(self):
        """The source of retry jitter."""
        return self._random

    async def _send(
        self,
        method: str,
        template: str,
        path: str,
        *,
        auth: httpx.Auth | None,
        idempotent: bool,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: Any = _DEFAULT,
    ) -> tuple[httpx.Response, int]:
        """One logical request: attempts with backoff; (the last response, attempts), or the transport error mapped.

        What is retried. Any method: a connection that never opened (the manager
        saw nothing), a 429 (the rate limiter refuses before any handler runs)
        and a 503 (frozen or unavailable: refused before acting). Idempotent
        methods only (GET, PUT, DELETE, ... or idempotent=True, e.g. a GraphQL
        query): also 500/502/504 and a connection lost or timed out after the
        request went out. A POST that creates a session or a folder may already
        have done so in those cases, and a repeat would make a second one or
        fail with "already exists", so the error goes to the caller instead.
        """
        extra = {} if timeout is _DEFAULT else {"timeout": timeout}
        for attempt in range(1, self.retry.max_attempts + 1):
            self.calls[(method, template)] += 1
            started = time.monotonic()
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, auth=auth or httpx.USE_CLIENT_DEFAULT, **extra
                )
            except httpx.RequestError as exc:  # transport errors, and an undecodable body
                retry = isinstance(exc, httpx.TransportError) and (idempotent or isinstance(exc, _NOT_SENT))
                if not retry or attempt == self.retry.max_attempts:
                    raise self._transport_error(exc, method, path, attempt, timeout) from exc
                delay = self.retry.backoff(attempt, self._random)
                log.info(
                    "%s %s: %s; retrying in %.2fs (attempt %d of %d)",
                    method,
                    path,
                    _reason(exc),
                    delay,
                    attempt + 1,
                    self.retry.max_attempts,
                )
                await self._sleep(delay)
                continue
            status = response.status_code
            log.debug("%s %s -> %d in %.0f ms", method, path, status, (time.monotonic() - started) * 1000)
            self.rate_limit = RateLimit.from_headers(response.headers) or self.rate_limit
            retryable = status in (429, 503) or (idempotent and status in (500, 502, 504))
            if not retryable or attempt == self.retry.max_attempts:
                return response, attempt
            if status == 429:
                delay = rate_limit_wait(
                    self.retry, attempt, self._random, self.rate_limit, response.headers.get("Retry-After")
                )
            else:
                delay = self.retry.backoff(attempt, self._random)
            log.info(
                "%s %s -> %d; retrying in %.2fs (attempt %d of %d)",
                method,
                path,
                status,
                delay,
                attempt + 1,
                self.retry.max_attempts,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    def _error(self, response: httpx.Response, path: str, *, attempts: int) -> errors.BackendAIError:
        return errors.error_from_response(
            response.status_code,
            response.headers,
            response.content,
            method=response.request.method,
            path=path,
            endpoint=self.credentials.endpoint,
            access_key=self.credentials.access_key,
            sent_date=response.request.headers.get("Date"),
            attempts=attempts,
        )

    def _transport_error(self, exc: httpx.RequestError, method: str, path: str, attempts: int, timeout: Any):
        endpoint = self.credentials.endpoint
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        fields: errors.ErrorFields = {"method": method, "path": path}
        if isinstance(exc, httpx.TimeoutException):
            phase = {
                httpx.ConnectTimeout: "connect",
                httpx.ReadTimeout: "read",
                httpx.WriteTimeout: "write",
                httpx.PoolTimeout: "pool",
            }.get(type(exc), "")
            limit = _timeout_value(self._http.timeout if timeout is _DEFAULT else httpx.Timeout(timeout), phase)
            within = f" within {limit:g} s" if limit is not None else " in time"
            return errors.RequestTimeoutError(
                f"the Backend.AI manager at {endpoint} did not answer {method} {path}{within} "
                f"({phase or 'request'} timeout){tries}",
                **fields,
            )
        if not isinstance(exc, httpx.TransportError):  # e.g. a body that does not decode
            return errors.BackendAIError(
                f"the Backend.AI manager at {endpoint} sent an unreadable answer to {method} {path}: {exc}", **fields
            )
        return errors.ConnectionFailedError(
            f"cannot reach the Backend.AI manager at {endpoint} ({method} {path}): {_reason(exc)}{tries}; "
            "check BACKEND_ENDPOINT and that the manager is running",
            **fields,
        )


def _reason(exc: BaseException) -> str:
    """What went wrong underneath httpx's wrapper ("All connection attempts failed" says little)."""
    cause: BaseException | None = exc
    for _ in range(10):  # a chain is short; never loop on a cyclic one
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"unknown host ({cause.strerror or cause})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    return str(exc).strip() or type(exc).__name__


def _timeout_value(timeout: httpx.Timeout, phase: str) -> float | None:
    return getattr(timeout, phase, None) if phase else None


def _is_json(response: httpx.Response) -> bool:
    kind = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _json_object(response: httpx.Response) -> dict | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _what(response: httpx.Response) -> str:
    kind = response.headers.get("Content-Type", "no content type").split(";", 1)[0]
    where = response.headers.get("Location")
    text = f"{response.status_code} {response.reason_phrase} ({kind})".replace("  ", " ")
    if where:
        text += f", redirecting to {where}"
    elif response.status_code == 200:
        text += ', not the {"version", "manager"} JSON a manager sends'
    return text
