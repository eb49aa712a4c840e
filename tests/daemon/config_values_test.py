"""The rules for one value of the configuration, apart from any file."""

from __future__ import annotations

import pytest

from fasttrack_gitops.daemon.config_values import expand, looks_like_secret, parse_listen, url_kind


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("${A}", "1"),
        ("x${A}y${B}", "x1y2"),
        ("$$", "$"),
        ("$${A}", "${A}"),
        ("$A", "$A"),
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_expand(text, expected):
    assert expand(text, {"A": "1", "B": "2"}) == expected


@pytest.mark.parametrize(
    "text, problem",
    [
        ("${UNSET}", "${UNSET} is not set"),
        ("${1X}", "does not name a variable"),
        ("${", "is not closed"),
        ("${}", "does not name a variable"),
    ],
)
def test_expand_refuses(text, problem):
    with pytest.raises(ValueError, match=problem.replace("$", r"\$").replace("{", r"\{")):
        expand(text, {})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:80", ("::1", 80)),
        (":8080", ("0.0.0.0", 8080)),
        ("ftg.internal:0", ("ftg.internal", 0)),
    ],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "url, kind",
    [
        ("/srv/git/ml", "local"),
        ("git/ml", "local"),
        ("./a:b", "local"),
        ("file:///srv/git/ml", "local"),
        ("https://github.com/acme/ml.git", "remote"),
        ("ssh://git@host:2222/acme/ml", "remote"),
        ("git@github.com:acme/ml.git", "remote"),
        ("http://git.internal/ml", "remote"),
        ("ftp://host/ml", None),
        ("https://", None),
        ("https://host:port/x", None),
        ("file://otherhost/x", None),
    ],
)
def test_url_kind(url, kind):
    assert url_kind(url) == kind


@pytest.mark.parametrize(
    "name, secret",
    [
        ("GITHUB_TOKEN", False),
        ("ghp_x", True),
        ("github_pat_11AB", True),
        ("xoxb", True),
        ("aB3dEfGh1jKlMnOp2rStUvWx9z", True),
    ],
)
def test_looks_like_secret(name, secret):
    assert looks_like_secret(name) is secret
