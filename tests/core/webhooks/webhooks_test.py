"""What the host sees before any parsing: an oversized body is refused unread."""

from __future__ import annotations

from core.webhooks.conftest import refused

from fasttrack_gitops.core.webhooks import check_size


def test_size_limit():
    check_size(None, 10)  # chunked: the reader caps it
    check_size(10, 10)
    assert "11 bytes; the limit is 10" in refused(413, check_size, 11, 10)
    refused(400, check_size, -1, 10)
