"""Masking: every secret hidden by one rule, in text, in a byte stream chopped anywhere, in URLs and log records."""

from __future__ import annotations

import io
import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fasttrack_gitops.core.masking import (
    MaskingFilter,
    StreamMasker,
    masked,
    masked_url_credentials,
    url_secrets,
)

# -- text


def test_every_occurrence_of_every_secret_is_hidden():
    assert masked("token=s3cr3t; again s3cr3t.", ["s3cr3t"]) == "token=***; again ***."
    assert masked("key k1 and key k2", ("k1", "k2")) == "key *** and key ***"


def test_the_longest_secret_wins_so_no_fragment_of_it_survives():
    assert masked("abc abcdef ab", ["abc", "abcdef"]) == "*** *** ab"
    assert masked("abc abcdef ab", ["abcdef", "abc"]) == "*** *** ab"


def test_overlapping_secrets_make_one_stretch_whatever_their_order():
    for secrets in itertools.permutations(["abcd", "cdef"]):
        assert masked("x abcdef x", secrets) == "x *** x"  # neither "ef" nor "ab" left over
    for secrets in itertools.permutations(["abc", "bcdef"]):
        assert masked("abcdefg", secrets) == "***g"
    assert masked("aaaaa", ["aa"]) == "***"  # a secret overlapping itself


def test_secrets_that_only_touch_stay_two_masks():
    assert masked("abcxyz", ["abc", "xyz"]) == "******"


def test_empty_secrets_are_ignored():
    text = "nothing to hide"
    assert masked(text, ["", ""]) is text
    assert masked(text, []) is text
    assert masked("a secret", ["", "secret"]) == "a ***"


def test_secrets_may_come_from_any_iterable_once_or_many_times():
    assert masked("a b c", iter(["b", "b"])) == "a *** c"
    assert masked("a b c", {"a", "c"}) == "*** b ***"


# -- byte streams


def mask_in_pieces(secrets, pieces) -> bytes:
    masker = StreamMasker(secrets)
    return b"".join(bytes(masker.feed(p)) for p in pieces) + masker.flush()


def test_a_secret_split_between_two_chunks_is_masked_wherever_the_stream_is_cut():
    text = b"token=s3cr3t-value; again s3cr3t-value."
    expected = b"token=***; again ***."
    for cut in range(len(text) + 1):
        assert mask_in_pieces(["s3cr3t-value"], [text[:cut], text[cut:]]) == expected
    assert mask_in_pieces(["s3cr3t-value"], [bytes([b]) for b in text]) == expected  # one byte per read


def test_the_longest_secret_wins_in_a_stream_too():
    assert mask_in_pieces(["abc", "abcdef"], [b"abc abcdef ab"]) == b"*** *** ab"
    assert mask_in_pieces(["abc", "abcdef"], [b"abcd", b"ef ab"]) == b"*** ab"


def test_a_stretch_that_goes_on_into_the_next_chunk_shows_one_mask():
    assert mask_in_pieces(["aa"], [b"x aaa", b"aaa", b"aa y"]) == b"x *** y"
    assert mask_in_pieces(["abcd", "cdef"], [b"ab", b"cd", b"ef!"]) == b"***!"


def test_without_secrets_the_stream_passes_through_untouched():
    masker = StreamMasker(["", ""])
    data = b"nothing to hide"
    assert masker.feed(data) is data
    assert masker.flush() == b""


def test_non_ascii_secrets_are_masked_as_utf8():
    data = "x pässwörd y".encode()
    assert mask_in_pieces(["pässwörd"], [data[:5], data[5:]]) == b"x *** y"


@settings(max_examples=400, deadline=None)
@given(
    secrets=st.lists(st.text(alphabet="ab\n", min_size=0, max_size=5), min_size=1, max_size=3),
    text=st.text(alphabet="ab\nc", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_masking_a_stream_in_pieces_equals_masking_the_whole_text(secrets, text, cuts):
    data = text.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert mask_in_pieces(secrets, pieces) == masked(text, secrets).encode()


@settings(max_examples=200, deadline=None)
@given(
    secrets=st.lists(st.text(alphabet="ab", min_size=1, max_size=4), min_size=1, max_size=3),
    text=st.text(alphabet="abc", max_size=40),
)
def test_no_secret_survives_masking(secrets, text):
    shown = masked(text, secrets)
    for secret in secrets:
        assert secret not in shown.replace("***", "\0")


# -- URLs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:token@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),  # a token as the user name
        ("https://us@r:p@ss@host/x", "https://***@host/x"),  # an unescaped @ in the password
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),  # a user name, no secret
        ("ssh://me:pw@host/r.git", "ssh://***@host/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("see https://a:b@h/x and http://c@h/y", "see https://***@h/x and http://***@h/y"),
    ],
)
def test_the_userinfo_of_a_url_is_masked_where_it_may_be_a_secret(url: str, shown: str):
    assert masked_url_credentials(url) == shown


def test_the_secrets_of_a_url_raw_and_percent_decoded():
    assert url_secrets("https://bot:p%40ss-word@host/x") == ("bot", "p%40ss-word", "p@ss-word")
    assert url_secrets("ssh://git:hunter22@host/r.git") == ("hunter22",)  # over ssh the user name is no secret
    assert url_secrets("https://ab@host/x") == ()  # too short to mask without hiding the message
    assert url_secrets("https://host/x") == url_secrets("http://[::1/x") == ()


# -- log records


def record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, None)


def test_a_filter_masks_the_formatted_message_of_every_record():
    masking = MaskingFilter(["xoxb-123", ""])
    item = record("posting with %s to %s", "xoxb-123", "#ci")
    assert masking.filter(item) is True
    assert item.getMessage() == "posting with *** to #ci"
    untouched = record("nothing %s", "here")
    masking.filter(untouched)
    assert untouched.args == ("here",)  # a record without a secret is left as it was logged


def test_a_logged_exception_is_masked_in_its_traceback_too():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskingFilter(["xoxb-123"]))
    logger = logging.getLogger("fasttrack_gitops.tests.masking.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("Slack refused the token xoxb-123")
        except RuntimeError as e:
            logger.exception("delivering failed: %s", e)
    finally:
        logger.removeHandler(handler)
    written = out.getvalue()
    assert "xoxb-123" not in written
    assert "delivering failed: Slack refused the token ***\nTraceback (most recent call last):" in written
    assert written.count("RuntimeError: Slack refused the token ***") == 1


def test_filters_of_the_same_secrets_are_equal_so_a_logger_gets_one(caplog):
    logger = logging.getLogger("fasttrack_gitops.tests.masking")
    for _ in range(3):
        if MaskingFilter(["s3cr3t"]) not in logger.filters:
            logger.addFilter(MaskingFilter(["s3cr3t"]))
    try:
        assert logger.filters == [MaskingFilter(["s3cr3t", "s3cr3t"])]
        assert MaskingFilter(["a1", "b2"]) == MaskingFilter(["b2", "a1"]) != MaskingFilter(["a1"])
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("the token is %s", "s3cr3t")
        assert caplog.messages == ["the token is ***"]
    finally:
        logger.filters.clear()
