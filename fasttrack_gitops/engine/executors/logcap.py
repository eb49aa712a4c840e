"""A task's log: its output with secret values masked (core/masking.py), and the middle of a huge log left out.

The log keeps the first `head` bytes and the last `tail` bytes of the
(masked) output, with one line `[... N bytes omitted ...]` between, so a task
that prints a gigabyte leaves a log of about head + tail bytes and never
makes us hold more than head + tail + one chunk. Until the output outgrows
head + tail the file is written as it comes, so it can be followed live.

A log that cannot be written (a full disk) raises its OSError once, from the
write that met it, and keeps it in `error`; after that the output is counted
and dropped, and neither flush() nor close() raises again, so the executor
can end the attempt with one clear message rather than a trace per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fasttrack_gitops.core.masking import StreamMasker

DEFAULT_HEAD = 1 << 20  # 1 MiB
DEFAULT_TAIL = 1 << 20


class LogCapture:
    """Writes output to a log file: masked, capped to head + tail bytes. Close it to finish the file."""

    def __init__(
        self,
        path: Path,
        *,
        head: int = DEFAULT_HEAD,
        tail: int = DEFAULT_TAIL,
        masks: Iterable[str] = (),
        buffering: int = 64 * 1024,
    ):
        if head < 0 or tail < 0:
            raise ValueError("head and tail must not be negative")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "wb", buffering=buffering)  # noqa: SIM115 - closed by close()
        self._masker = StreamMasker(masks)
        self._head = head
        self._tail_size = tail
        self._written = 0  # bytes in the file
        self._last_head_byte = b"\n"
        self._tail = bytearray()  # the output after the head, its last `tail` bytes
        self._overflowed = False  # the file stopped following: the rest is written by close()
        self.total = 0  # bytes of output (after masking)
        self.omitted = 0
        self.closed = False
        self.error: OSError | None = None  # the first write the file refused; nothing is written after it

    def write(self, data: bytes | memoryview) -> None:
        """Take a chunk of output (a view of a reused buffer is fine: nothing keeps it)."""
        data = self._masker.feed(data)
        if data and self.error is None:
            self._guarded(self._append, data)
        elif data:
            self.total += len(data)

    def flush(self) -> None:
        if not self.closed and self.error is None:
            self._guarded(self._file.flush)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.error is None:
                self._guarded(self._finish)
        finally:
            self.closed = True
            try:
                self._file.close()
            except OSError as e:  # its buffer could not be written: the disk filled since
                if self.error is None:
                    self.error = e
                    raise
            finally:
                self._tail = bytearray()

    def _finish(self) -> None:
        rest = self._masker.flush()
        if rest:
            self._append(rest)
        if self._overflowed:
            self._file.seek(self._head)
            self._file.truncate()
            newline = b"" if self._last_head_byte == b"\n" else b"\n"
            self._file.write(b"%s[... %d bytes omitted ...]\n" % (newline, self.omitted))
            self._file.write(self._tail)

    def _guarded(self, operation, *args) -> None:
        """Run a file operation; the first OSError is kept and raised, and the file is written no more."""
        try:
            operation(*args)
        except OSError as e:
            self.error = e
            raise

    def _append(self, data: bytes | memoryview) -> None:
        self.total += len(data)
        view = memoryview(data)
        if self._written < self._head:
            take = min(len(view), self._head - self._written)
            self._file.write(view[:take])
            self._written += take
            self._last_head_byte = bytes(view[take - 1 : take])
            view = view[take:]
            if not view:
                return
        size = self._tail_size
        if len(view) >= size:
            self.omitted += len(self._tail) + len(view) - size
            self._tail = bytearray(view[len(view) - size :])
        else:
            self._tail += view
            if len(self._tail) > size:
                drop = len(self._tail) - size
                del self._tail[:drop]
                self.omitted += drop
        if self._overflowed:
            return
        if self.omitted:
            self._overflowed = True  # the file now holds head + a stale middle; close() rewrites the end
        else:
            self._file.write(view)
            self._written += len(view)
