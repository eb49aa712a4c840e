"""Moving bytes through the storage proxy: tus uploads and token downloads (backendai-api.md §3.2).

The manager hands out a session (`request-upload`/`request-download` ->
`{"token", "url"}`); the bytes then go straight to the storage proxy, which
may be another host and port. Those requests are *not* HMAC-signed: the JWT
in the query string is the credential, so it never appears in a message.

Upload is the tus 1.0.0 subset the storage proxy implements: no creation
(the manager's request-upload made the session), `HEAD` for the current
offset, `PATCH` with `Upload-Offset` and `application/offset+octet-stream`
answered by 204 and the new `Upload-Offset`. A 23.09 proxy does not check
our `Upload-Offset`, it appends; so after anything that went wrong (a
dropped connection, a 5xx, a 409 from newer proxies) we never resend blindly:
we `HEAD` and go on from the offset the proxy has. It moves the file into
place only from a PATCH that reaches the declared size, so the upload is
done when a PATCH answer says so (after a HEAD that reports the full size,
an empty PATCH finishes it). Downloads resume with `Range`.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from fasttrack_gitops.engine.backendai import errors
from fasttrack_gitops.engine.backendai.retry import RetryPolicy

TUS_VERSION = "1.0.0"
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024


class UploadSessionGone(errors.NotFoundError):
    """The proxy no longer knows the upload session (expired or cleaned up): ask the manager for a new one."""


class Source:
    """The bytes to upload: a bytes-like object, or a binary file read from its start."""

    def __init__(self, data: bytes | bytearray | memoryview | IO[bytes]) -> None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._memory: memoryview | None = memoryview(data).cast("B")
            self._file = None
            self.size = self._memory.nbytes
        elif hasattr(data, "read") and hasattr(data, "seek"):
            self._memory, self._file = None, data
            self.size = data.seek(0, os.SEEK_END)
        else:
            raise TypeError(f"upload takes bytes or a binary file, not {type(data).__name__}")

    async def read(self, offset: int, length: int) -> bytes:
        if self._memory is not None:
            return bytes(self._memory[offset : offset + length])
        return await asyncio.to_thread(self._read_file, offset, length)

    def _read_file(self, offset: int, length: int) -> bytes:
        assert self._file is not None
        self._file.seek(offset)
        data = self._file.read(length)
        if len(data) != length:
            raise errors.BackendAIError(f"the file being uploaded changed size while it was read (at byte {offset})")
        return data


class StorageProxy:
    """Unsigned requests to storage-proxy URLs, retried like the client's; counted in `calls`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[Any]],
        random: Callable[[], float],
        calls: Counter[tuple[str, str]],
    ) -> None:
        self.http, self.retry, self.calls = http, retry, calls
        self._sleep, self._random = sleep, random

    async def upload(self, url: str, token: str, source: Source, *, chunk_size: int, what: str) -> None:
        """Send `source` to a fresh upload session; resumes from the proxy's offset after failures."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        offset, failures = 0, 0  # a fresh session is at 0: no HEAD needed first
        furthest = 0  # progress is passing this: a proxy whose offset goes back and forth makes none
        while True:
            chunk = await source.read(offset, min(chunk_size, source.size - offset))
            headers = {
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            }
            try:
                response = await self._send("PATCH", url, token, headers=headers, content=chunk)
            except httpx.TransportError as exc:
                failures = await self._failed(failures, self._transport_error(exc, "PATCH", url, what))
                offset = await self.offset(url, token, what)
                continue
            status = response.status_code
            if status in (200, 204):
                reached = _number(response.headers.get("Upload-Offset"))
                if reached is None:
                    raise self._error(response, what, note="the answer has no Upload-Offset")
                if reached >= source.size:
                    return
                if reached > furthest:
                    failures, furthest = 0, reached
                else:  # no progress: do not loop forever on a proxy that takes nothing
                    failures = await self._failed(failures, self._error(response, what, note="no progress"))
                offset = reached
            elif status in (409, 429) or status >= 500:  # 409: newer proxies check Upload-Offset
                failures = await self._failed(failures, self._error(response, what))
                offset = await self.offset(url, token, what)
            else:
                raise self._error(response, what)

    async def offset(self, url: str, token: str, what: str) -> int:
        """The proxy's offset for the session (HEAD), retried on connection errors and 5xx."""
        failures = 0
        while True:
            try:
                response = await self._send("HEAD", url, token, headers={"Tus-Resumable": TUS_VERSION})
            except httpx.TransportError as exc:
                failures = await self._failed(failures, self._transport_error(exc, "HEAD", url, what))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                failures = await self._failed(failures, self._error(response, what))
                continue
            offset = _number(response.headers.get("Upload-Offset"))
            if response.status_code == 200 and offset is not None:
                return offset
            raise self._error(response, what)

    async def download(self, url: str, token: str, sink: IO[bytes], *, what: str) -> int:
        """Write the file to `sink` (from its start); the byte count. Resumes with Range after a drop."""
        written, failures = 0, 0
        while True:
            headers = {"Range": f"bytes={written}-"} if written else {}
            self.calls[("GET", "storage-proxy " + urlsplit(url).path)] += 1
            try:
                async with self.http.stream("GET", url, params={"token": token}, headers=headers) as response:
                    status = response.status_code
                    if status == 429 or status >= 500:
                        await response.aread()
                        failures = await self._failed(failures, self._error(response, what))
                        continue
                    if status not in (200, 206):
                        await response.aread()
                        raise self._error(response, what)
                    if status == 200 and written:  # the proxy ignored Range: start again
                        sink.seek(0)
                        sink.truncate()
                        written = 0
                    async for part in response.aiter_bytes():
                        sink.write(part)
                        written += len(part)
                    return written
            except httpx.TransportError as exc:
                failures = await self._failed(failures, self._transport_error(exc, "GET", url, what))

    async def _send(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        self.calls[(method, "storage-proxy " + urlsplit(url).path)] += 1
        return await self.http.request(method, url, params={"token": token}, **kwargs)

    async def _failed(self, failures: int, error: errors.BackendAIError) -> int:
        """One more failure in a row: wait the backoff, or raise `error` when the attempts are used up."""
        failures += 1
        if failures >= self.retry.max_attempts:
            raise error
        await self._sleep(self.retry.backoff(failures, self._random))
        return failures

    def _error(self, response: httpx.Response, what: str, *, note: str | None = None) -> errors.BackendAIError:
        request = response.request
        where = _where(str(request.url))
        problem = errors.parse_problem(response.content)
        status, slug = response.status_code, problem.slug if problem else ""
        said = note or (problem.describe() if problem else f"{status} {response.reason_phrase}".strip())
        text = f"the storage proxy at {where[0]} answered {request.method} {where[1]} for {what}: {said} [{status}{' ' + slug if slug else ''}]"
        fields: errors.ErrorFields = {"status": status, "problem": problem, "method": request.method, "path": where[1]}
        if slug == "no-such-upload-session":
            return UploadSessionGone(text, **fields)
        if status == 404:
            return errors.NotFoundError(text, **fields)
        if slug == "quota-exceeded" or status in (412, 413):
            return errors.QuotaError(text + "; free space in the folder or raise its quota", **fields)
        if status >= 500 or status == 429:
            return errors.ServerError(text, **fields)
        return errors.BackendAIError(text, **fields)

    def _transport_error(self, exc: httpx.TransportError, method: str, url: str, what: str) -> errors.BackendAIError:
        base, path = _where(url)
        reason = str(exc).strip() or type(exc).__name__
        kind = errors.RequestTimeoutError if isinstance(exc, httpx.TimeoutException) else errors.ConnectionFailedError
        return kind(
            f"the storage proxy at {base} failed {method} {path} for {what} after {self.retry.max_attempts} "
            f"attempts: {reason}; the manager advertises this address: check that it is reachable from here",
            method=method,
            path=path,
        )


def _where(url: str) -> tuple[str, str]:
    """(scheme://host:port, path) of a URL, without its query (the token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def _number(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is None or value >= 0 else None
