"""Signing reproduces the worked examples of backendai-api.md §1.6, and KeypairAuth signs what httpx sends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from fasttrack_gitops.engine.backendai.auth import (
    EMPTY_BODY_SHA256,
    KeypairAuth,
    format_date,
    signature,
    string_to_sign,
)
from fasttrack_gitops.engine.backendai.credentials import Secret

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DATE = "2024-09-20T12:34:56.789000+00:00"
WHEN = datetime(2024, 9, 20, 12, 34, 56, 789000, tzinfo=timezone.utc)
EVENTS = "/events/session?sessionId=2d8e6a2c-1f4b-4c59-9a3e-5d0b7f1c8e21&scope=session"

# §1.6: (method, rel_url, content-type, host, version) -> the signature SDK 23.9.10 computes
WORKED_EXAMPLES = [
    (
        "GET",
        "/",
        "text/plain",
        "api.example.com",
        "v8.20240915",
        "c1ee02dda03d61d2868b3d8a1ccee5407aef712d4abccfc3f53fec2106a843f3",
    ),
    (
        "POST",
        "/session",
        "application/json",
        "api.example.com",
        "v8.20240915",
        "bdddabbf5e8e60468fb38c21af5c32f32d24feebe704f50568a9339b77f9f111",
    ),
    (
        "GET",
        EVENTS,
        "text/plain",
        "api.example.com:8081",
        "v7.20230615",
        "f2bcc2925a0bf72f535366f9db61931ca866facee4b02374916137b51740108a",
    ),
]


@pytest.mark.parametrize(("method", "path", "content_type", "host", "version", "expected"), WORKED_EXAMPLES)
def test_the_worked_examples_give_the_documented_signatures(method, path, content_type, host, version, expected):
    got = signature(
        secret_key=SECRET, method=method, path=path, date=DATE, host=host, content_type=content_type, version=version
    )
    assert got == expected


def test_the_string_to_sign_of_row_2_is_the_documented_seven_lines():
    text = string_to_sign(
        method="POST",
        path="/session",
        date=DATE,
        host="api.example.com",
        content_type="application/json",
        version="v8.20240915",
    )
    assert text == (
        "POST\n/session\n2024-09-20T12:34:56.789000+00:00\nhost:api.example.com\n"
        "content-type:application/json\nx-backendai-version:v8.20240915\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert text.count("\n") == 6 and not text.endswith("\n")
    assert EMPTY_BODY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_content_type_is_signed_without_parameters_and_in_lower_case():
    plain = {"method": "POST", "path": "/session", "date": DATE, "host": "api.example.com", "version": "v8.20240915"}
    with_charset = string_to_sign(content_type="Application/JSON; charset=utf-8", **plain)
    assert "\ncontent-type:application/json\n" in with_charset
    assert (
        signature(secret_key=SECRET, content_type="application/json; charset=utf-8", **plain) == WORKED_EXAMPLES[1][5]
    )
    # no Content-Type at all: the manager signs aiohttp's default
    assert "\ncontent-type:application/octet-stream\n" in string_to_sign(content_type=None, **plain)


def test_the_host_with_its_port_is_part_of_the_signing_key():
    method, path, content_type, _, version, expected = WORKED_EXAMPLES[2]
    args = {
        "secret_key": SECRET,
        "method": method,
        "path": path,
        "date": DATE,
        "content_type": content_type,
        "version": version,
    }
    assert signature(host="api.example.com:8081", **args) == expected
    assert signature(host="api.example.com", **args) != expected


def test_the_key_date_comes_from_the_date_header():
    args = {
        "secret_key": SECRET,
        "method": "GET",
        "path": "/",
        "host": "api.example.com",
        "content_type": "text/plain",
        "version": "v8.20240915",
    }
    next_day = format_date(WHEN + timedelta(days=1))
    assert signature(date=next_day, **args) != WORKED_EXAMPLES[0][5]


def test_a_secret_wrapper_signs_like_the_plain_string():
    method, path, content_type, host, version, expected = WORKED_EXAMPLES[1]
    assert (
        signature(
            secret_key=Secret(SECRET),
            method=method,
            path=path,
            date=DATE,
            host=host,
            content_type=content_type,
            version=version,
        )
        == expected
    )


def test_the_date_header_is_utc_iso_with_microseconds():
    assert format_date(WHEN) == DATE
    assert format_date(datetime(2024, 9, 20, 12, 34, 56, tzinfo=timezone.utc)) == "2024-09-20T12:34:56.000000+00:00"
    seoul = timezone(timedelta(hours=9))
    assert format_date(datetime(2024, 9, 21, 1, 0, tzinfo=seoul)) == "2024-09-20T16:00:00.000000+00:00"


def signed(request: httpx.Request, version: str) -> httpx.Request:
    auth = KeypairAuth(ACCESS, SECRET, version, clock=lambda: WHEN)
    return next(auth.sync_auth_flow(request))


def test_keypair_auth_signs_a_real_httpx_request_with_the_port_and_the_query():
    request = httpx.Request(
        "GET",
        "http://api.example.com:8081/events/session",
        params={"sessionId": "2d8e6a2c-1f4b-4c59-9a3e-5d0b7f1c8e21", "scope": "session"},
    )
    headers = signed(request, "v7.20230615").headers
    assert headers["Host"] == "api.example.com:8081"
    assert headers["Date"] == DATE
    assert headers["X-BackendAI-Version"] == "v7.20230615"
    assert headers["Content-Type"] == "text/plain"
    assert headers["Authorization"] == (
        f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS}:{WORKED_EXAMPLES[2][5]}"
    )


def test_keypair_auth_signs_a_json_post_as_application_json():
    request = httpx.Request("POST", "https://api.example.com/session", json={"name": "x"})
    headers = signed(request, "v8.20240915").headers
    assert headers["Host"] == "api.example.com"  # httpx leaves the default port out, and so do we
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"].endswith(f":{WORKED_EXAMPLES[1][5]}")


def test_keypair_auth_keeps_an_explicit_content_type_and_signs_its_bare_mime():
    request = httpx.Request(
        "POST",
        "https://api.example.com/session",
        content=b"{}",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    headers = signed(request, "v8.20240915").headers
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Authorization"].endswith(f":{WORKED_EXAMPLES[1][5]}")


def test_a_body_without_a_type_is_sent_as_octet_stream():
    request = httpx.Request("PUT", "https://api.example.com/x", content=b"raw")
    assert signed(request, "v8.20240915").headers["Content-Type"] == "application/octet-stream"


def test_the_secret_shows_nowhere():
    auth = KeypairAuth(ACCESS, SECRET, "v7.20230615")
    secret = Secret(SECRET)
    for text in (repr(auth), str(auth), repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert SECRET not in text
    assert repr(secret) == "'***'" and str(secret) == "***"
    assert ACCESS in repr(auth)
    assert secret.reveal() == SECRET and secret == Secret(SECRET) and secret != Secret("other")
