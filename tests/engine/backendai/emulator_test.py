"""The emulator refuses what the manager refuses, so a passing client test means something."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY

from fasttrack_gitops.engine.backendai.auth import KeypairAuth


def send(emulator, request: httpx.Request) -> httpx.Response:
    with httpx.Client(trust_env=False) as http:
        return http.send(request)


def signed(emulator, path: str, *, version="v7.20230615", secret=SECRET_KEY, clock=None) -> httpx.Request:
    auth = KeypairAuth(ACCESS_KEY, secret, version, **({"clock": clock} if clock else {}))
    return auth.sign(httpx.Request("GET", emulator.endpoint + path))


def problem(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()
    return response.status_code, body["type"].rsplit("/", 1)[-1], body.get("msg")


def test_a_correctly_signed_request_passes(emulator):
    response = send(emulator, signed(emulator, "/config/resource-slots"))
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "999" and response.headers["X-RateLimit-Window"] == "900"


def test_unsigned_and_tampered_requests_are_refused(emulator):
    assert problem(
        send(
            emulator,
            httpx.Request("GET", emulator.endpoint + "/auth", headers={"Date": datetime.now(timezone.utc).isoformat()}),
        )
    ) == (401, "auth-failed", "Unauthorized access")
    moved = signed(emulator, "/auth")
    moved.url = httpx.URL(emulator.endpoint + "/auth?echo=1")  # the query is part of what is signed
    assert problem(send(emulator, moved)) == (401, "auth-failed", "Signature mismatch")
    assert problem(send(emulator, signed(emulator, "/auth", secret="wrong"))) == (
        401,
        "auth-failed",
        "Signature mismatch",
    )


def test_a_date_out_of_the_window_and_an_unknown_version_are_400(emulator):
    late = signed(emulator, "/auth", clock=lambda: datetime.now(timezone.utc) - timedelta(minutes=16))
    assert problem(send(emulator, late)) == (400, "invalid-auth-params", "Date/time sync error")
    assert problem(send(emulator, signed(emulator, "/auth", version="v8.20240315"))) == (
        400,
        "generic-bad-request",
        "Unsupported API version.",
    )


def test_the_date_header_follows_the_skewed_clock(emulator):
    emulator.clock_skew = timedelta(hours=1)
    response = send(emulator, httpx.Request("GET", emulator.endpoint + "/"))
    offset = parsedate_to_datetime(response.headers["Date"]) - datetime.now(timezone.utc)
    assert abs(offset - timedelta(hours=1)) < timedelta(seconds=3)
    assert response.json() == {"version": "v7.20230615", "manager": "23.09.10"}
