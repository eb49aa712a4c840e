"""The log of a task: huge logs cut in the middle, secrets masked before the cut (the rule: core/masking_test.py)."""

from __future__ import annotations

import pytest

from fasttrack_gitops.engine.executors.logcap import LogCapture


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
