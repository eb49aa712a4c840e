"""Masking: every secret value replaced by *** wherever text leaves the program. Pure.

One rule for every sink (a task's log, a report, an error line, a log
record, a URL): each character that belongs to an occurrence of a secret is
hidden, and each stretch of hidden characters shows as one `***`.
Occurrences that overlap (one secret inside or across another, or a secret
overlapping itself) make one stretch, so no fragment of any secret survives
whatever order the secrets come in; occurrences that merely touch stay two
`***`. Empty secrets are ignored.

`masked` applies the rule to a string, `StreamMasker` to a byte stream cut
into chunks anywhere (a secret split between two reads is still masked),
`masked_url_credentials` to the user and password part of URLs, and
`MaskingFilter` to logging records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TypeVar
from urllib.parse import unquote, urlsplit

MASK = "***"
_MASK_BYTES = MASK.encode()

_Text = TypeVar("_Text", str, bytes)


def masked(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret hidden (see the module docstring for the rule)."""
    present = [secret for secret in secrets if secret and secret in text]  # one fast scan per secret
    if not present:  # the common case
        return text
    out: list[str] = []
    pos = 0
    for start, end in _stretches(text, present):
        out += (text[pos:start], MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


class StreamMasker:
    """Masks a byte stream fed in chunks; the output, joined, is the whole stream masked as `masked` would.

    It holds back the last (longest secret - 1) bytes of what it was fed
    until the next chunk shows whether they begin a secret. A stretch still
    open at that point has its *** written already; the bytes of it that are
    held back are remembered as hidden, so a secret that continues the
    stretch in the next chunk extends it rather than showing a second ***.
    """

    def __init__(self, secrets: Iterable[str]):
        self._secrets = _distinct(secret.encode() for secret in secrets)
        self._keep = max((len(secret) for secret in self._secrets), default=1) - 1
        self._carry = b""  # fed but not yet written
        self._hidden = 0  # how many leading bytes of the carry belong to a stretch whose *** is written

    def feed(self, data: bytes | memoryview) -> bytes | memoryview:
        """The part of the stream so far that is safe to write, masked."""
        if not self._secrets:
            return data
        data = self._carry + data if self._carry else bytes(data)
        safe = len(data) - self._keep  # an occurrence starting before this lies wholly inside data
        if safe <= 0:
            self._carry = data
            return b""
        if not self._hidden and not any(secret in data for secret in self._secrets):
            self._carry = data[safe:]
            return data[:safe]
        return self._write(data, safe)

    def flush(self) -> bytes:
        """The rest, at the end of the stream."""
        rest = self._write(self._carry, len(self._carry)) if self._carry else b""
        self._carry, self._hidden = b"", 0
        return rest

    def _write(self, data: bytes, cut: int) -> bytes:
        """data[:cut] masked; the rest carried over, with how much of it an open stretch already hides."""
        out: list[bytes] = []
        pos = hidden = 0
        for start, end in _stretches(data, self._secrets, hidden=self._hidden):
            if start >= cut:
                break
            out.append(data[pos:start])
            if not (start == 0 and self._hidden):  # else the stretch goes on from the last chunk: *** is out
                out.append(_MASK_BYTES)
            if end > cut:
                pos, hidden = cut, end - cut
                break
            pos = end
        out.append(data[pos:cut])
        self._carry, self._hidden = data[cut:], hidden
        return b"".join(out)


@cache
def _userinfo() -> re.Pattern[str]:
    """A URL's scheme and user part; compiled on first use (only URLs that may carry a token are masked so)."""
    return re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s]*)@")


def masked_url_credentials(text: str) -> str:
    """The text with the credentials of every URL in it masked: https://user:token@host/x -> https://***@host/x.

    Over http(s) any user part is masked (a token is often the user name);
    elsewhere only one with a password, so ssh://git@host stays readable.
    """

    def mask(m: re.Match[str]) -> str:
        secret = ":" in m["userinfo"] or m["scheme"].lower().startswith("http")
        return f"{m['scheme']}{MASK}@" if secret else m[0]

    return _userinfo().sub(mask, text)


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets a URL carries, raw and percent-decoded, for masking where a library repeated them.

    Its password, and over http(s) its user name; forms shorter than three
    characters are left out (masking every "a" would hide the message, not a secret).
    """
    try:
        parts = urlsplit(url)
        found = (parts.password, parts.username if parts.scheme.startswith("http") else None)
    except ValueError:
        return ()
    forms = {form for secret in found if secret for form in (secret, unquote(secret))}
    return tuple(sorted(form for form in forms if len(form) >= 3))


class MaskingFilter(logging.Filter):
    """Masks the secrets in every record it sees (its message and traceback), whoever logged it; add it to a
    handler or a logger.

    Two filters of the same secrets are equal, so `f not in logger.filters`
    keeps a logger from collecting copies.
    """

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = tuple(sorted(_distinct(secrets)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaskingFilter) and other.secrets == self.secrets

    def __hash__(self) -> int:
        return hash(self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            hidden = masked(message, self.secrets)
            if hidden != message:
                record.msg, record.args = hidden, ()
            # A traceback repeats the exception's message: format it now, as the handler's formatter would
            # (it uses exc_text when set), so that it is masked too.
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = masked(record.exc_text, self.secrets)
        return True


def _distinct(secrets: Iterable[_Text]) -> tuple[_Text, ...]:
    """The non-empty secrets, each once."""
    return tuple(dict.fromkeys(secret for secret in secrets if secret))


def _stretches(text: _Text, secrets: Sequence[_Text], *, hidden: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each stretch of hidden characters, in order: overlapping occurrences merged.

    `hidden` > 0 counts the first characters as hidden already (a stream's open stretch).
    """
    spans = [(0, hidden)] if hidden else []
    for secret in secrets:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
