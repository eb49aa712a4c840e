"""Who may read and press what: every page and API with no, a wrong, the read and the API credential; the login
cookie; the loopback rule and its `serve --check` warning; the security headers on every answer."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest
from conftest import await_until, console_script
from daemon.conftest import write_config
from daemon.http_test import quiet_config, serving
from daemon.web.console_helpers import READ, WRITE, bearer, log_in, tokens_config, trigger

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.daemon.web.access import Access, Caller, listens_beyond_loopback

READ_ROUTES = (
    "/",
    "/jobs",
    "/jobs/{job}",
    "/jobs/{job}/tasks/prepare",
    "/jobs/{job}/tasks/prepare/log?attempt=1&offset=0",
    "/repos",
    "/metrics",
    "/api/jobs",
    "/api/jobs/{job}",
    "/api/jobs/{job}/metrics",
    "/api/jobs/{job}/tasks/prepare/outputs",
    "/api/events?job={job}",
)


def test_every_page_and_api_wants_a_credential_and_takes_the_right_one(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            for route in READ_ROUTES:
                path = route.format(job=job)
                for headers in (
                    {},
                    bearer("wrong-token"),
                    {"Cookie": "ftg_session=write.99999999999.forged"},
                    {"Cookie": "ftg_session=write.².x".encode()},  # a digit to str.isdigit, not to int()
                    {"Cookie": f"ftg_session=write.{'9' * 5000}.x"},
                ):
                    refused = await client.get(path, headers=headers)
                    if path.startswith("/api/") or path == "/metrics" or path.endswith("offset=0"):
                        assert refused.status_code == 401, (path, headers, refused.status_code)
                        assert refused.json()["error"]
                    else:  # a page: to the login form, and back after it
                        assert refused.status_code == 303, (path, headers, refused.status_code)
                        assert refused.headers["location"] == "/login?" + urlencode({"next": path})
                    assert job not in refused.text and "prepare" not in refused.text, (path, refused.text[:300])
                for token in (READ, WRITE):
                    if path.startswith("/api/events"):  # a stream: the status line is enough
                        async with client.stream("GET", path, headers=bearer(token)) as stream:
                            assert stream.status_code == 200 and stream.headers["content-type"].startswith(
                                "text/event-stream"
                            )
                        continue
                    answer = await client.get(path, headers=bearer(token))
                    assert answer.status_code in (200, 404), (path, answer.status_code, answer.text[:300])
                    assert answer.status_code == 200 or path.endswith("/metrics"), path  # no task declares metrics
            # the read token reads but never writes
            refused = await client.post(
                "/api/trigger", json={"repository": "acme/pipes", "pipeline": "demo"}, headers=bearer(READ)
            )
            assert refused.status_code == 401
            # /healthz stays open: it carries no job data
            health = await client.get("/healthz")
            assert health.status_code == 200 and job not in health.text

    asyncio.run(scenario())


def test_a_page_without_a_credential_is_the_login_form_and_logging_in_sets_a_strict_httponly_cookie(
    tmp_path, source_repo
):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            assert (await client.get("/jobs")).headers["location"] == "/login?next=%2Fjobs"
            page = await client.get("/login", params={"next": "/jobs"})
            assert page.status_code == 200 and 'action="/login"' in page.text and 'type="password"' in page.text
            assert page.cookies.get("ftg_csrf") and "httponly" in page.headers["set-cookie"].lower()
            form = await client.get("/login")
            wrong = await client.post("/login", data={"token": "nope", "csrf": _csrf(form.text)})
            assert wrong.status_code == 401 and "ftg_session" not in wrong.headers.get("set-cookie", "")
            answer = await client.post(
                "/login", data={"token": READ, "csrf": _csrf(form.text), "next": "https://evil.example/"}
            )
            assert answer.status_code == 303 and answer.headers["location"] == "/"  # never to another site
            cookie = answer.headers["set-cookie"]
            assert (
                "ftg_session=" in cookie
                and "HttpOnly" in cookie
                and "SameSite=strict" in cookie.replace("Strict", "strict")
            )
            assert READ not in cookie  # the cookie holds a signed session, never the token
            listed = await client.get("/jobs")
            assert listed.status_code == 200 and "<h1>Jobs</h1>" in listed.text
            assert "Log out" in listed.text
            # a read login sees no buttons and cannot press one
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            page = await client.get(f"/jobs/{job}")
            assert page.status_code == 200 and "Re-run" not in page.text
            pressed = await client.post(f"/jobs/{job}/rerun", data={"csrf": _csrf(page.text), "failed_only": "0"})
            assert pressed.status_code == 403 and len(daemon.store.list_jobs(limit=0)) == 1

    asyncio.run(scenario())


def test_logging_in_with_the_api_token_shows_the_buttons(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            await log_in(client, WRITE)
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            page = await client.get(f"/jobs/{job}")
            assert "Re-run all" in page.text

    asyncio.run(scenario())


def test_public_read_opens_the_console_but_not_the_buttons(tmp_path, source_repo):
    config = tokens_config(tmp_path, source_repo, extra="public_read: true\n")
    assert config.public_read

    async def scenario():
        async with serving(config) as (daemon, client):
            job = await trigger(client, "demo")
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            for path in ("/jobs", f"/jobs/{job}", "/api/jobs", "/metrics"):
                assert (await client.get(path)).status_code == 200, path
            page = await client.get(f"/jobs/{job}")
            assert "Re-run" not in page.text
            refused = await client.post("/api/trigger", json={"repository": "acme/pipes", "pipeline": "demo"})
            assert refused.status_code == 401

    asyncio.run(scenario())


def test_without_any_credential_the_console_answers_loopback_clients_only():
    from fasttrack_gitops.daemon.config import DaemonConfig

    fields = dict.fromkeys(DaemonConfig.__dataclass_fields__)
    open_config = DaemonConfig(**{**fields, "public_read": False, "host": "0.0.0.0"})
    access = Access(open_config, b"k" * 32)
    assert open_config.loopback_only
    local = access.caller({}, {}, "127.0.0.1")
    assert access.may_read(local) and access.may_write(local)
    for host in ("10.1.2.3", "192.168.0.7", "2001:db8::1", None, "not-an-address"):
        remote = access.caller({}, {}, host)
        assert not access.may_read(remote) and not access.may_write(remote), host
        status, message = access.read_refusal(remote)
        assert status == 403 and "read_token_env" in message and "public_read" in message
    assert access.may_read(access.caller({}, {}, "::1"))
    for proxied in ({"x-forwarded-for": "203.0.113.9"}, {"forwarded": "for=203.0.113.9"}, {"x-real-ip": "203.0.113.9"}):
        assert not access.may_read(access.caller(proxied, {}, "127.0.0.1")), proxied  # a proxy on this machine
    assert listens_beyond_loopback("0.0.0.0") and listens_beyond_loopback("::") and listens_beyond_loopback("ftg.lan")
    assert not listens_beyond_loopback("127.0.0.1") and not listens_beyond_loopback("::1")
    public = Access(DaemonConfig(**{**fields, "public_read": True, "host": "0.0.0.0"}), b"k" * 32)
    assert public.may_read(public.caller({}, {}, "10.1.2.3")) and not public.may_write(Caller(None, False, False))


def test_a_session_dies_when_the_token_changes_or_it_expires():
    from fasttrack_gitops.daemon.config import DaemonConfig

    fields = dict.fromkeys(DaemonConfig.__dataclass_fields__)
    before = Access(DaemonConfig(**{**fields, "public_read": False, "api_token": "one"}), b"k" * 32)
    after = Access(DaemonConfig(**{**fields, "public_read": False, "api_token": "two"}), b"k" * 32)
    cookie = before.session("write")
    assert before.caller({}, {"ftg_session": cookie}, "10.0.0.1").level == "write"
    assert after.caller({}, {"ftg_session": cookie}, "10.0.0.1").level is None
    old = before.session("write", now=1.0)
    assert before.caller({}, {"ftg_session": old}, "10.0.0.1") == Caller(None, False, True)
    forged = cookie.replace("write", "read", 1)
    assert before.caller({}, {"ftg_session": forged}, "10.0.0.1").level is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "127.0.0.1:8080"])
def test_serve_check_warns_when_the_console_cannot_be_read_from_where_it_listens(tmp_path, source_repo, listen):
    import subprocess

    config = write_config(tmp_path, source_repo, listen=listen)
    done = subprocess.run(
        [console_script(), "serve", "--config", str(config), "--check", "--format", "json"],
        capture_output=True,
        text=True,
        env={"FTG_TEST_WEBHOOK_SECRET": "x", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["read_token"] is False and result["public_read"] is False
    if listen.startswith("0.0.0.0"):
        assert "warning" in done.stderr and "read_token_env" in done.stderr and "public_read" in done.stderr
        assert result["warnings"]
    else:
        assert "warning" not in done.stderr and result["warnings"] == []


def test_every_answer_carries_the_security_headers(tmp_path, source_repo):
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            for path in ("/jobs", "/login", "/api/jobs", "/healthz", "/static/console.js", "/nope", "/jobs/nope"):
                answer = await client.get(path)
                policy = answer.headers["content-security-policy"]
                scripts = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
                assert "unsafe-inline" not in scripts and "'self'" in scripts, path
                assert "frame-ancestors 'none'" in policy, path
                assert answer.headers["x-content-type-options"] == "nosniff", path
            page = (await client.get("/jobs")).text
            assert "<script>" not in page and "https://" not in page  # no inline script, nothing from elsewhere

    asyncio.run(scenario())


def _csrf(page: str) -> str:
    from daemon.web.console_helpers import csrf_of

    return csrf_of(page)
