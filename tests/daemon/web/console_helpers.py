"""What the console's tests share: a daemon with both credentials, a pipeline that runs long, logging in as a person."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.conftest import REPO_NAME, commit_file
from daemon.http_test import quiet_config

READ = "read-token-for-the-console-tests-0123"
WRITE = "api-token-for-the-console-tests-4567"
TOKENS = "api_token_env: FTG_TEST_API_TOKEN\nread_token_env: FTG_TEST_READ_TOKEN\n"
ENVIRON = {"FTG_TEST_API_TOKEN": WRITE, "FTG_TEST_READ_TOKEN": READ}

SLOW = """\
version: "26.4.4"
name: slow
tasks:
  - name: first
    command: echo first
  - name: wait
    dependencies: [first]
    command: sleep 60
"""

GATED = """\
version: "26.4.4"
name: gated
tasks:
  - name: hold
    command: test -f "$PIPELINE_OUTPUT_ROOT/../go" || (while [ ! -f /tmp/never ]; do sleep 0.05; done)
"""


def tokens_config(tmp_path: Path, repo: Path, extra: str = ""):
    """The test repository (not watched) with a read token and an API token configured."""
    return quiet_config(tmp_path, repo, extra=TOKENS + extra, environ=ENVIRON)


def add_pipeline(repo: Path, name: str, text: str) -> str:
    return commit_file(repo, f"pipelines/{name}.yaml", text, name)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def log_in(client, token: str) -> str:
    """Log in through the form as a person does; the CSRF token of the next page."""
    form = await client.get("/login")
    answer = await client.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/jobs"})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/jobs")).text)


async def trigger(client, pipeline: str, token: str = WRITE) -> str:
    answer = await client.post(
        "/api/trigger", json={"repository": REPO_NAME, "pipeline": pipeline, "ref": "main"}, headers=bearer(token)
    )
    assert answer.status_code == 201, answer.text
    (job,) = answer.json()["jobs"]
    return job
