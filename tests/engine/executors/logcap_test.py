"""The log of a task: secrets masked however the output is chopped into reads, huge logs cut in the middle."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttrack_gitops.engine.executors.logcap import LogCapture, Masker


def mask_in_pieces(values, pieces) -> bytes:
    masker = Masker(values)
    return b"".join(bytes(masker.feed(p)) for p in pieces) + masker.flush()


def test_a_secret_is_replaced_wherever_the_stream_is_split():
    text = b"token=s3cr3t-value; again s3cr3t-value."
    expected = b"token=***; again ***."
    for cut in range(len(text) + 1):
        assert mask_in_pieces(["s3cr3t-value"], [text[:cut], text[cut:]]) == expected
    assert mask_in_pieces(["s3cr3t-value"], [bytes([b]) for b in text]) == expected  # one byte per read


def test_the_longest_secret_wins_where_one_begins_another():
    text = b"abc abcdef ab"
    assert mask_in_pieces(["abc", "abcdef"], [text]) == b"*** *** ab"
    assert mask_in_pieces(["abc", "abcdef"], [b"abcd", b"ef ab"]) == b"*** ab"


def test_no_masks_pass_the_data_through_untouched():
    masker = Masker(["", ""])
    data = b"nothing to hide"
    assert masker.feed(data) is data
    assert masker.flush() == b""


def test_non_ascii_secrets_are_masked_as_utf8():
    assert mask_in_pieces(["pässwörd"], ["x pässwörd y".encode()[:5], "x pässwörd y".encode()[5:]]) == b"x *** y"


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(st.text(alphabet="ab\n", min_size=1, max_size=5), min_size=1, max_size=3),
    text=st.text(alphabet="ab\nc", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_masking_in_pieces_equals_masking_the_whole(secrets, text, cuts):
    data = text.encode()
    values = sorted({s.encode() for s in secrets}, key=len, reverse=True)
    expected = re.sub(b"|".join(re.escape(v) for v in values), b"***", data)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert mask_in_pieces(secrets, pieces) == expected


def test_a_small_log_is_kept_whole(tmp_path):
    log = LogCapture(tmp_path / "logs" / "t.log", head=10, tail=10)
    log.write(b"0123456789")
    log.write(memoryview(b"abcdefghij"))
    log.close()
    assert (tmp_path / "logs" / "t.log").read_bytes() == b"0123456789abcdefghij"
    assert log.omitted == 0


def test_a_big_log_keeps_its_head_and_tail_with_a_marker_between(tmp_path):
    path = tmp_path / "t.log"
    log = LogCapture(path, head=10, tail=6)
    for i in range(100):
        log.write(b"%04d\n" % i)
    log.close()
    assert path.read_bytes() == b"0000\n0001\n[... 484 bytes omitted ...]\n\n0099\n"
    assert log.total == 500 and log.omitted == 484


def test_the_marker_gets_its_own_line_and_the_file_follows_until_it_overflows(tmp_path):
    path = tmp_path / "t.log"
    log = LogCapture(path, head=4, tail=4, buffering=0)
    log.write(b"abcdef")
    assert path.read_bytes() == b"abcdef"  # written as it comes while it fits
    log.write(b"ghijklmnop")
    log.close()
    assert path.read_bytes() == b"abcd\n[... 8 bytes omitted ...]\nmnop"


def test_one_chunk_larger_than_the_whole_log(tmp_path):
    path = tmp_path / "t.log"
    log = LogCapture(path, head=3, tail=3)
    log.write(b"x" * 1000 + b"end")
    log.close()
    assert path.read_bytes() == b"xxx\n[... 997 bytes omitted ...]\nend"


def test_no_tail_at_all(tmp_path):
    path = tmp_path / "t.log"
    log = LogCapture(path, head=3, tail=0)
    log.write(b"abc\n" * 3)
    log.close()
    assert path.read_bytes() == b"abc\n[... 9 bytes omitted ...]\n"


def test_masking_happens_before_the_cut_so_no_part_of_a_secret_survives_it(tmp_path):
    path = tmp_path / "t.log"
    log = LogCapture(path, head=8, tail=8, masks=["SECRETVALUE"])
    log.write(b"1234SECRE")
    log.write(b"TVALUE" + b"-" * 50 + b"SECRETVALUE")
    log.close()
    data = path.read_bytes()
    assert b"SECR" not in data and b"ALUE" not in data
    assert data.startswith(b"1234***-") and data.endswith(b"--***")


def test_negative_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError):
        LogCapture(tmp_path / "t.log", head=-1)
