"""A daemon for tests: a real repository with real commits, a config file, the daemon on a real socket.

`daemon_env` gives a function that starts `run_daemon` in the test's event
loop on 127.0.0.1 (port chosen by the kernel) and hands back the Daemon and
its base URL; webhooks are signed as GitHub signs them, from the real
payloads in tests/data/contracts/github-webhooks/.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import socket
import textwrap
from pathlib import Path

import pytest
from conftest import git

SECRET = "test-webhook-secret-value"
REPO_NAME = "acme/pipes"

PIPELINE = """\
version: "26.4.4"
name: {name}
{extra}tasks:
  - name: prepare
    command: echo prepare > "$PIPELINE_OUTPUT_ROOT/out.txt"
  - name: train
    dependencies: [prepare]
    command: cat "$PIPELINE_INPUT1/out.txt"
"""


def pipeline_text(name: str = "demo", extra: str = "") -> str:
    return PIPELINE.format(name=name, extra=textwrap.dedent(extra))


def commit_file(repo: Path, relpath: str, text: str, message: str = "change") -> str:
    path = repo / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", relpath)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A real repository on branch main with one pipeline, pipelines/demo.yaml."""
    repo = tmp_path / "source"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_file(repo, "pipelines/demo.yaml", pipeline_text(), "first")
    return repo


def write_config(
    tmp_path: Path,
    repo: Path,
    *,
    extra: str = "",
    repo_extra: str = "",
    name: str = REPO_NAME,
    url: str | None = None,
    more_repositories: str = "",
    listen: str = "127.0.0.1:0",
    shutdown_grace: str = "2s",
) -> Path:
    config = tmp_path / "ftg.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        state_dir: {tmp_path / "state"}
        listen: {listen}
        shutdown_grace: {shutdown_grace}
        github:
          webhook_secret_env: FTG_TEST_WEBHOOK_SECRET
        gitlab:
          webhook_token_env: FTG_TEST_WEBHOOK_SECRET
        repositories:
          - name: {name}
            url: {url or repo}
            provider: github
            branches: [main]
        """)
        + _indent(repo_extra)
        + _indent(more_repositories, "  ")
        + textwrap.dedent(extra)
    )
    return config


def _indent(text: str, by: str = "    ") -> str:
    text = textwrap.dedent(text)
    return "".join(f"{by}{line}\n" for line in text.splitlines()) if text.strip() else ""


def load(config_path: Path):
    from fasttrack_gitops.daemon.config_loading import load_config

    config, diagnostics = load_config(config_path, {"FTG_TEST_WEBHOOK_SECRET": SECRET})
    assert config is not None, diagnostics
    return config


@contextlib.asynccontextmanager
async def running(config, **kwargs):
    """The daemon of `config`, serving on a free port of 127.0.0.1 until the block ends."""
    from fasttrack_gitops.daemon.app import listening_socket, run_daemon

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_daemon(config, sock, stop=stop, ready=ready.set_result, **kwargs))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield ready.result(), f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await task


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(contracts: Path, name: str) -> dict:
    return json.loads((contracts / "github-webhooks" / name).read_text())


def push_payload(contracts: Path, *, ref: str, before: str, after: str, name: str = REPO_NAME) -> dict:
    data = copy.deepcopy(payload(contracts, "push.payload.json"))
    data.update(
        ref=ref, before=before, after=after, forced=False, deleted=after == "0" * 40, created=before == "0" * 40
    )
    data["repository"]["full_name"] = name
    data["repository"]["default_branch"] = "main"
    return data


def github_headers(body: bytes, event: str, delivery: str) -> dict:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signed(body),
        "Content-Type": "application/json",
    }


def pr_payload(
    contracts: Path,
    *,
    number: int,
    head_sha: str,
    base_sha: str,
    action: str = "opened",
    head_repo: str = REPO_NAME,
    base_ref: str = "main",
    head_ref: str = "feature",
    name: str = REPO_NAME,
) -> dict:
    """The real pull_request.opened payload, pointed at the test repository."""
    data = copy.deepcopy(payload(contracts, "pull_request.opened.payload.json"))
    data["action"], data["number"] = action, number
    pr = data["pull_request"]
    pr["number"] = number
    pr["head"].update(sha=head_sha, ref=head_ref)
    pr["head"]["repo"]["full_name"] = head_repo
    pr["base"].update(sha=base_sha, ref=base_ref)
    pr["base"]["repo"]["full_name"] = name
    data["repository"]["full_name"] = name
    return data


def comment_payload(
    contracts: Path,
    *,
    number: int,
    body: str,
    association: str = "MEMBER",
    author: str = "octocat",
    name: str = REPO_NAME,
) -> dict:
    """The real issue_comment.created payload, as a comment on pull request `number`."""
    data = copy.deepcopy(payload(contracts, "issue_comment.created.payload.json"))
    data["issue"]["number"] = number
    data["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{name}/pulls/{number}"}
    data["comment"].update(body=body, author_association=association)
    data["comment"]["user"]["login"] = author
    data["repository"]["full_name"] = name
    return data


async def deliver(client, event: str, data: dict, delivery: str):
    """POST a signed GitHub delivery; the httpx response."""
    body = json.dumps(data).encode()
    return await client.post("/webhooks/github", content=body, headers=github_headers(body, event, delivery))


@contextlib.contextmanager
def http_git_server(repo: Path):
    """The repository served over git's smart HTTP protocol on 127.0.0.1 (dulwich's own server), as a URL."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from dulwich.repo import Repo
    from dulwich.server import DictBackend
    from dulwich.web import make_wsgi_chain

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    app = make_wsgi_chain(DictBackend({"/pipes.git": Repo(str(repo))}))
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/pipes.git"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now: for a daemon process whose address a test must know."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
