"""Credentials from BACKEND_* variables; the secret never shows; endpoints are normalised."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.engine.backendai.credentials import (
    Credentials,
    Secret,
    normalize_endpoint,
)

ENV = {
    "BACKEND_ENDPOINT": "https://api.example.com",
    "BACKEND_ACCESS_KEY": "AKIAEXAMPLE",
    "BACKEND_SECRET_KEY": "s3cr3t/value+that-must-not-leak",
}


def test_credentials_come_from_the_official_clients_variables():
    credentials = Credentials.from_env(ENV)
    assert credentials.endpoint == "https://api.example.com"
    assert credentials.access_key == "AKIAEXAMPLE"
    assert credentials.secret_key.reveal() == ENV["BACKEND_SECRET_KEY"]


@pytest.mark.parametrize("name", sorted(ENV))
def test_a_missing_variable_is_a_usage_error_naming_it(name):
    for environ in ({k: v for k, v in ENV.items() if k != name}, {**ENV, name: "  "}):
        with pytest.raises(UsageError, match=f"^{name} is not set") as caught:
            Credentials.from_env(environ)
        assert caught.value.exit_code == 2
        assert ENV["BACKEND_SECRET_KEY"] not in str(caught.value)


def test_every_missing_variable_is_named():
    with pytest.raises(UsageError, match="^BACKEND_ENDPOINT, BACKEND_ACCESS_KEY and BACKEND_SECRET_KEY are not set"):
        Credentials.from_env({})


def test_the_web_servers_session_mode_is_refused():
    with pytest.raises(UsageError, match="BACKEND_ENDPOINT_TYPE='session' is not supported"):
        Credentials.from_env({**ENV, "BACKEND_ENDPOINT_TYPE": "session"})
    assert Credentials.from_env({**ENV, "BACKEND_ENDPOINT_TYPE": "api"})


def test_the_secret_never_shows_in_repr_str_logs_json_or_pickle(caplog):
    credentials = Credentials.from_env(ENV)
    secret = ENV["BACKEND_SECRET_KEY"]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("credentials %s %r", credentials, credentials.secret_key)
    for text in (repr(credentials), str(credentials), f"{credentials.secret_key}", caplog.text):
        assert secret not in text
    assert "secret_key='***'" in repr(credentials)
    with pytest.raises(TypeError):
        json.dumps(credentials.secret_key)
    with pytest.raises(TypeError):
        pickle.dumps(credentials)


def test_a_plain_string_secret_is_wrapped():
    assert isinstance(Credentials("http://h", "AK", "plain").secret_key, Secret)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com:443/", "https://api.example.com"),
        ("http://api.example.com:80", "http://api.example.com"),
        ("http://10.0.0.5:8081/", "http://10.0.0.5:8081"),
        ("https://api.example.com:80", "https://api.example.com:80"),
        ("https://Example.COM/prefix/api//", "https://example.com/prefix/api"),
        ("http://[::1]:8081", "http://[::1]:8081"),
        ("  http://127.0.0.1:8081\n", "http://127.0.0.1:8081"),
    ],
)
def test_endpoints_are_normalised(given, expected):
    assert normalize_endpoint(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("api.example.com", "must be an http:// or https:// URL"),
        ("ftp://api.example.com", "must be an http:// or https:// URL"),
        ("https://", "must be an http:// or https:// URL"),
        ("https://api.example.com:http", "is not a valid URL"),
        ("https://user:pw@api.example.com", "must not contain a user name or password"),
        ("https://api.example.com/?x=1", "must not have a query"),
    ],
)
def test_bad_endpoints_are_usage_errors(given, problem):
    with pytest.raises(UsageError, match=problem):
        normalize_endpoint(given)
