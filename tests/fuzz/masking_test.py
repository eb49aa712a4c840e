"""Fuzz: masking a task's output (core/masking.py) as it is written to its log (engine/executors/logcap.py).

Invariant: a secret never survives into the log, whatever chunks the output comes in (a secret split at every
position across `write` calls, several secrets overlapping, non-ASCII ones, a log capped to a head and a tail).
Secrets hold no `*`: a secret made of the mask's own characters would show in the mask itself.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.masking import MASK, StreamMasker, masked
from fasttrack_gitops.engine.executors.logcap import LogCapture

SECRET_TEXT = st.text(alphabet=st.characters(blacklist_characters="*", blacklist_categories=["Cs"]), min_size=1)
SECRETS = st.lists(
    st.one_of(st.text(alphabet="ab\n", min_size=1, max_size=6), SECRET_TEXT.filter(lambda s: len(s) <= 8)),
    min_size=1,
    max_size=3,
)
OMITTED = re.compile(rb"\n?\[\.\.\. [0-9]+ bytes omitted \.\.\.\]\n")
TEXT = st.text(alphabet="abc\n*é", max_size=60)


def captured(tmp: Path, secrets: list[str], chunks: list[bytes], *, head: int, tail: int) -> bytes:
    log = tmp / "task.log"
    capture = LogCapture(log, head=head, tail=tail, masks=secrets, buffering=0)
    for chunk in chunks:
        capture.write(chunk)
    capture.close()
    return log.read_bytes()


def survives(secret: str, log: bytes) -> bool:
    """Whether the secret is in the log's text (the line that says how much was left out is ours, not output)."""
    return secret.encode() in OMITTED.sub(b"\0", log)


@given(secrets=SECRETS, before=TEXT, after=TEXT)
def test_a_secret_split_at_every_position_never_reaches_the_log(secrets, before, after):
    secret = secrets[0]
    data = (before + secret + after).encode()
    start = len(before.encode())
    with TemporaryDirectory() as tmp:
        for cut in range(start, start + len(secret.encode()) + 1):  # between any two of its bytes, UTF-8 ones too
            log = captured(Path(tmp), secrets, [data[:cut], data[cut:]], head=1 << 20, tail=1 << 20)
            assert not any(survives(s, log) for s in secrets), (cut, log)


@given(
    secrets=SECRETS,
    text=st.lists(st.one_of(TEXT, SECRETS.map("".join)), max_size=6).map("".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
    head=st.integers(min_value=0, max_value=40),
    tail=st.integers(min_value=0, max_value=40),
)
def test_no_secret_reaches_a_capped_log_whatever_the_chunks(secrets, text, cuts, head, tail):
    data = text.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    with TemporaryDirectory() as tmp:
        log = captured(Path(tmp), secrets, chunks, head=head, tail=tail)
    assert not any(survives(s, log) for s in secrets), log
    if head + tail >= len(data) + len(MASK) * len(data):  # nothing left out: the log is the whole text masked
        assert log == masked(text, secrets).encode()


@given(secrets=SECRETS, text=TEXT, sizes=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=30))
def test_the_stream_masker_in_chunks_of_any_size_hides_every_secret(secrets, text, sizes):
    data = (text + "".join(secrets) + text).encode()
    masker, out, pos = StreamMasker(secrets), [], 0
    for size in itertools.cycle(sizes):
        if pos >= len(data):
            break
        out.append(bytes(masker.feed(data[pos : pos + size])))
        pos += size
    shown = b"".join(out) + masker.flush()
    assert not any(survives(s, shown) for s in secrets)
