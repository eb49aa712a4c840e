"""SECURITY.md "What each endpoint serves, and to whom": every route of the daemon's Starlette app, enumerated.

The routes are read from the application itself (`App(daemon)`, the class `serve` serves), so a route added
later is requested here too: unless it is on the short list of routes open by design (OPEN, each saying why) or
authenticated by its sender (SIGNED), it must refuse a caller with no credential, a wrong one or a forged session
cookie, and answer the right one. The requests go to the real daemon on a real 127.0.0.1 socket, after a real job
ran, and a refusal must not carry that job's data (its id, its task's name, its output's content).
"""

from __future__ import annotations

import asyncio
import re

from conftest import await_until
from daemon.conftest import REPO_NAME, commit_file
from daemon.http_test import quiet_config, serving
from daemon.web.console_helpers import READ, WRITE, bearer, tokens_config
from starlette.routing import Mount, Route

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.daemon.http import App

OUTPUT = "out-content-7e1d"  # what the task writes: no refusal may carry it
# Open by design, and why; each is still requested below and may carry no job data.
OPEN = {
    ("GET", "/healthz"): "a load balancer's probe: the counts of jobs by status, no ids",
    ("GET", "/login"): "the token form",
    ("POST", "/login"): "takes a token (and a CSRF token), gives a session",
    ("POST", "/logout"): "drops the session cookie",
    ("GET", "/static"): "the console's stylesheet and script, shipped in the package",
}
# Authenticated by their sender, not by the read credential: a signature or token over the request.
SIGNED = {("POST", "/webhooks/github"), ("POST", "/webhooks/gitlab")}
WRONG = (
    {},
    bearer("wrong-token"),
    {"Authorization": READ},  # the token without "Bearer "
    {"Cookie": "ftg_session=write.99999999999.forged"},
    {"Cookie": "ftg_session=read.99999999999.forged"},
)
PIPELINE = f"""\
version: "26.4.4"
name: demo
tasks:
  - name: prepare
    command: echo {OUTPUT} > "$PIPELINE_OUTPUT_ROOT/out.txt"
"""


def every_route(app: App) -> list[tuple[str, str]]:
    """(method, path template) of every route the application serves; a mount by its prefix."""
    found = []
    for route in app.app.app.routes:  # SecurityHeaders -> Starlette
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("GET", route.path))
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r}")
    return found


def concrete(template: str, job: str) -> str:
    values = {"job": job, "task": "prepare", "path": "out.txt"}
    path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], template)
    if path == "/static":
        return "/static/console.js"
    return path + ("?attempt=1&offset=0" if path.endswith("/log") else "")


def no_job_data(text: str, job: str) -> bool:
    return job not in text and "prepare" not in text and OUTPUT not in text


async def request(client, method: str, path: str, headers: dict):
    """The answer's status and text; a stream's status only (it would not end)."""
    if path.startswith("/api/events"):
        async with client.stream(method, path, headers=headers) as stream:
            text = "" if stream.status_code == 200 else (await stream.aread()).decode()
            return stream.status_code, text
    answer = await client.request(method, path, headers=headers)
    return answer.status_code, answer.text


def test_every_route_refuses_job_data_without_the_read_credential_and_serves_it_with_it(tmp_path, source_repo):
    commit_file(source_repo, "pipelines/demo.yaml", PIPELINE, "writes an output")
    config = tokens_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await client.post(
                "/api/trigger", json={"repository": REPO_NAME, "pipeline": "demo"}, headers=bearer(WRITE)
            )
            (job,) = answer.json()["jobs"]
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            routes = every_route(App(daemon, signing_secret=b"k" * 32))
            assert len(routes) >= 20, routes  # the enumeration found the app's routes, not an empty list
            checked = []
            for method, template in routes:
                path = concrete(template, job)
                key = (method, template)
                if key in OPEN:
                    status, text = await request(client, method, path, {})
                    assert no_job_data(text, job), (key, text[:300])
                    continue
                if key in SIGNED:  # unsigned, or signed with the wrong secret: refused before anything is read
                    for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-Gitlab-Token": "wrong"}):
                        status, text = await request(client, method, path, {"X-GitHub-Event": "push", **headers})
                        assert status == 401, (key, status, text[:300])
                    continue
                for headers in WRONG:
                    status, text = await request(client, method, path, headers)
                    # 401/403, or for a console page the redirect to the login form
                    assert status in (401, 403) or (status == 303 and method == "GET"), (key, headers, status)
                    assert no_job_data(text, job), (key, headers, text[:300])
                for name in ("token", "access_token", "api_token"):  # a credential is never taken from a URL
                    status, text = await request(
                        client, method, f"{path}{'&' if '?' in path else '?'}{name}={READ}", {}
                    )
                    assert status in (401, 403) or (status == 303 and method == "GET"), (key, name, status)
                if method == "GET":  # the read credential reads; the API token reads too
                    for token in (READ, WRITE):
                        status, text = await request(client, method, path, bearer(token))
                        assert status == 200 or (status == 404 and template.endswith("/metrics")), (key, status)
                else:  # a write: the read token may not; the API token passes the credential check
                    status, _ = await request(client, method, path, bearer(READ))
                    assert status in (401, 403), (key, status)
                    status, text = await request(client, method, path, bearer(WRITE))
                    assert status not in (401,), (key, status, text[:300])
                    if not template.startswith("/api/"):  # a console button: the CSRF token is still wanted
                        assert status == 403 and "CSRF" in text, (key, status, text[:300])
                checked.append(key)
            # the open static mount serves the package's assets, nothing beside them
            for escape in ("/static/%2e%2e/http.py", "/static/..%2Fhttp.py", "/static/%2e%2e/%2e%2e/daemon/http.py"):
                answer = await client.get(escape)
                assert answer.status_code == 404 and "import" not in answer.text, (escape, answer.text[:200])
            # nothing a refused request asked for happened: the one job is still the only one, and succeeded
            assert [v.job.id for v in daemon.store.list_jobs(limit=0)] == [job]
            assert daemon.store.view(job).status == JobStatus.SUCCEEDED
            return checked

    checked = asyncio.run(scenario())
    for must in ("/api/jobs", "/api/jobs/{job}", "/api/events", "/metrics", "/jobs/{job}/tasks/{task}/log"):
        assert ("GET", must) in checked, must
    assert ("POST", "/api/trigger") in checked and ("POST", "/jobs/{job}/cancel") in checked


def test_a_daemon_without_credentials_answers_no_route_a_proxy_forwarded(tmp_path, source_repo):
    """No credential configured: the loopback rule. A request a proxy forwarded (it connects from 127.0.0.1 but
    says whom for) is no local caller, on every route."""
    config = quiet_config(tmp_path, source_repo)

    async def scenario():
        async with serving(config) as (daemon, client):
            answer = await client.post("/api/trigger", json={"repository": REPO_NAME, "pipeline": "demo"})
            (job,) = answer.json()["jobs"]  # its own machine may trigger
            await await_until(lambda: daemon.store.view(job).status == JobStatus.SUCCEEDED)
            for method, template in every_route(App(daemon, signing_secret=b"k" * 32)):
                if (method, template) in OPEN or (method, template) in SIGNED:
                    continue
                path = concrete(template, job)
                for proxy in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
                    status, text = await request(client, method, path, proxy)
                    assert status in (401, 403), (method, template, proxy, status)
                    assert no_job_data(text, job), (method, template, text[:300])
            assert len(daemon.store.list_jobs(limit=0)) == 1

    asyncio.run(scenario())
