"""Signed links: a signature holds for its path until its expiry, and nothing else gets past verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, unquote, urlsplit

from fasttrack_gitops.core.signing import (
    BAD_SIGNATURE,
    EXPIRED,
    MISSING,
    output_path,
    sign,
    signed_output_url,
    verify,
)

SECRET = b"a daemon's signing secret"
PATH = "/api/jobs/20261128-101530-3fa9c1/tasks/draw/outputs/plots/loss.svg"
NOW = 1_800_000_000.0


def query(text: str) -> dict[str, str]:
    return dict(parse_qsl(text))


def test_a_signature_is_hmac_sha256_of_path_and_expiry_in_urlsafe_base64_without_padding():
    signed = query(sign(SECRET, PATH, expires=1_800_000_060))
    mac = hmac.new(SECRET, f"{PATH}\n1800000060".encode(), hashlib.sha256).digest()
    assert signed == {"expires": "1800000060", "signature": base64.urlsafe_b64encode(mac).rstrip(b"=").decode()}
    assert "=" not in signed["signature"] and "+" not in signed["signature"] and "/" not in signed["signature"]


def test_a_valid_signature_passes_until_it_expires():
    signed = query(sign(SECRET, PATH, expires=int(NOW) + 60))
    assert verify(SECRET, PATH, signed, now=NOW) is None
    assert verify(SECRET, PATH, signed, now=NOW + 59.9) is None
    assert verify(SECRET, PATH, signed, now=NOW + 60) == EXPIRED
    assert verify(SECRET, PATH, signed, now=NOW + 10**6) == EXPIRED


def test_a_tampered_path_expiry_signature_or_secret_is_a_bad_signature():
    signed = query(sign(SECRET, PATH, expires=int(NOW) + 60))
    assert verify(SECRET, PATH.replace("loss", "acc"), signed, now=NOW) == BAD_SIGNATURE
    assert verify(SECRET, PATH + "/", signed, now=NOW) == BAD_SIGNATURE
    assert verify(SECRET, PATH, {**signed, "expires": str(int(NOW) + 3600)}, now=NOW) == BAD_SIGNATURE
    flipped = signed["signature"][:-1] + ("B" if signed["signature"].endswith("A") else "A")
    assert verify(SECRET, PATH, {**signed, "signature": flipped}, now=NOW) == BAD_SIGNATURE
    assert verify(b"another secret", PATH, signed, now=NOW) == BAD_SIGNATURE
    for odd in ("-1", "1e9", " 60", "9" * 40, "\u00b2"):
        assert verify(SECRET, PATH, {**signed, "expires": odd}, now=NOW) == BAD_SIGNATURE
    assert verify(SECRET, PATH, {**signed, "signature": "\udcff"}, now=NOW) == BAD_SIGNATURE
    # an expired link that was tampered with says it is bad, not merely old
    old = query(sign(SECRET, PATH, expires=int(NOW) - 60))
    assert verify(SECRET, PATH, {**old, "expires": str(int(NOW) - 30)}, now=NOW) == BAD_SIGNATURE


def test_a_link_without_expiry_or_signature_is_missing_its_signature():
    signed = query(sign(SECRET, PATH, expires=int(NOW) + 60))
    assert verify(SECRET, PATH, {}, now=NOW) == MISSING
    assert verify(SECRET, PATH, {"expires": signed["expires"]}, now=NOW) == MISSING
    assert verify(SECRET, PATH, {"signature": signed["signature"]}, now=NOW) == MISSING
    assert verify(SECRET, PATH, {"expires": "", "signature": signed["signature"]}, now=NOW) == MISSING


def test_a_signed_output_url_names_the_file_quoted_and_verifies_for_its_decoded_path():
    url = signed_output_url("https://ftg.example.com/", SECRET, "j-1", "draw", "plots/a b#1.svg", 300, now=NOW)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "ftg.example.com")
    assert parts.path == "/api/jobs/j-1/tasks/draw/outputs/plots/a%20b%231.svg"
    decoded = unquote(parts.path)
    assert decoded == output_path("j-1", "draw", "plots/a b#1.svg")
    assert query(parts.query)["expires"] == str(int(NOW) + 300)
    assert verify(SECRET, decoded, query(parts.query), now=NOW + 299) is None
    assert verify(SECRET, decoded, query(parts.query), now=NOW + 300) == EXPIRED
