"""The daemon's HTTP surface, as a plain ASGI application (uvicorn serves it).

    POST /webhooks/github   X-Hub-Signature-256 verified over the raw body; deduplicated by X-GitHub-Delivery
    POST /webhooks/gitlab   X-Gitlab-Token verified
    GET  /healthz           200 while serving, 503 while draining
    GET  /metrics           Prometheus text format
    GET  /api/jobs          the newest jobs (?pipeline=, ?status=, ?limit=), as `jobs --format json` prints them
    GET  /api/jobs/{id}     one job (an id or a unique prefix)
    GET  /api/jobs/{id}/metrics                      its model results against its baseline, as `jobs metrics --format json`
    GET  /api/jobs/{id}/tasks/{task}/outputs         a task's outputs, listed (outputs_http.py: token or signed link)
    GET  /api/jobs/{id}/tasks/{task}/outputs/{path}  one output file
    POST /api/trigger       {"repository", "pipeline", "ref", "request_id"?, "no_cache"?, "params"?}: a manual run (`fasttrack-gitops trigger`)

A refused webhook changes nothing: the signature is checked before the body
is parsed, and a body over the limit is not even read to its end. A webhook
runs only the repositories configured with its provider: the GitLab token is
no key to a GitHub repository, nor the GitHub secret to a GitLab one. Answers
are JSON; a webhook's answer says what it did, which GitHub shows in the
delivery log. Error answers never name the daemon's folders.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import parse_qs

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.events import Manual
from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.core.pipeline.params import ParamError, from_request
from fasttrack_gitops.core.webhooks import WebhookError, check_size
from fasttrack_gitops.core.webhooks.github import parse_github, verify_github
from fasttrack_gitops.core.webhooks.gitlab import parse_gitlab, verify_gitlab
from fasttrack_gitops.daemon.outputs_http import ROUTE as OUTPUTS
from fasttrack_gitops.daemon.outputs_http import OutputsAPI, signing_key
from fasttrack_gitops.daemon.service import Daemon
from fasttrack_gitops.engine.state.errors import StoreError

log = logging.getLogger("fasttrack_gitops.daemon.http")

API_BODY_LIMIT = 64 * 1024
JOBS_LIMIT = 1000  # the most jobs one GET /api/jobs lists
Send = Callable[[dict], Awaitable[None]]


class App:
    def __init__(self, daemon: Daemon, *, signing_secret: bytes | None = None):
        """`signing_secret`: what signs output links (outputs_http.signing_key when not given)."""
        self.daemon = daemon
        secret = signing_key(daemon.config) if signing_secret is None else signing_secret
        self.outputs = OutputsAPI(daemon.store, daemon.pool.executor, daemon.config, secret, self._public)

    async def __call__(self, scope: dict, receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the daemon starts and stops around the server, not inside it
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        extra: list[tuple[bytes, bytes]] = []
        body: dict | list  # the JSON answer
        try:
            if path in ("/webhooks/github", "/webhooks/gitlab"):
                _allow(method, "POST")
                status, body = await self._webhook(path.rsplit("/", 1)[1], headers, receive)
            elif path == "/healthz":
                _allow(method, "GET", "HEAD")
                status, body = self._health()
            elif path == "/metrics":
                _allow(method, "GET", "HEAD")
                text = self.daemon.metrics.render(
                    jobs=self.daemon.pool.jobs_by_status(),
                    queue_depth=self.daemon.ledger.queue_depth(),
                    executors=(self.daemon.config.executor,),
                    outbox=self.daemon.outbox.pending(),
                )
                await _answer(send, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
                return
            elif path == "/api/jobs":
                _allow(method, "GET")
                status, body = self._jobs(scope)
            elif path.startswith("/jobs/") and method in ("GET", "HEAD"):
                status, page = self._page(path.removeprefix("/jobs/"))
                await _answer(send, status, page.encode(), "text/html; charset=utf-8")
                return
            elif (route := OUTPUTS.fullmatch(path)) is not None:
                _allow(method, "GET")
                answer = await self.outputs.answer(scope, headers, route)
                await _answer(send, answer.status, answer.body, answer.content_type, answer.headers)
                return
            elif path.startswith("/api/jobs/") and path.endswith("/metrics"):
                _allow(method, "GET")
                status, body = self._metrics(path.removeprefix("/api/jobs/").removesuffix("/metrics"))
            elif path.startswith("/api/jobs/"):
                _allow(method, "GET")
                status, body = self._job(path.removeprefix("/api/jobs/"))
            elif path == "/api/trigger":
                _allow(method, "POST")
                status, body = await self._trigger(headers, receive)
            else:
                status, body = 404, {"error": f"no such endpoint {path}"}
        except _NotAllowed as e:
            status, body = e.status, {"error": e.message}
            extra.append((b"allow", ", ".join(e.allowed).encode()))
        except WebhookError as e:
            status, body = e.status, {"error": e.message}
        except FastTrackError as e:
            status, body = 400, {"error": self._public(str(e))}
        await _answer(send, status, json.dumps(body).encode(), "application/json", extra)

    def _public(self, message: str) -> str:
        """A message for the outside: the state folder is the daemon's business, not the caller's."""
        return message.replace(str(self.daemon.store.state_dir), "the daemon's state folder")

    # -- webhooks

    async def _webhook(self, provider: str, headers: dict, receive) -> tuple[int, dict]:
        config = self.daemon.config
        metrics = self.daemon.metrics
        try:
            length = headers.get("content-length")
            check_size(int(length) if length and length.isdigit() else None, config.webhook_max_body)
            raw = await _read(receive, config.webhook_max_body)
            if provider == "github":
                verify_github(
                    raw, headers.get("x-hub-signature-256"), config.github.webhook_secret if config.github else None
                )
                delivery = parse_github(headers, raw)
            else:
                verify_gitlab(headers.get("x-gitlab-token"), config.gitlab.webhook_token if config.gitlab else None)
                delivery = parse_gitlab(headers, raw)
        except WebhookError as e:
            metrics.delivery(provider, {401: "unauthorized", 413: "too_large"}.get(e.status, "malformed"))
            raise
        if delivery.record is None:
            metrics.delivery(provider, "ignored")
            return 202, {"delivery": delivery.id, "ignored": delivery.ignored}
        repo = config.repository(delivery.repository)
        if repo is not None and repo.provider != provider:
            metrics.delivery(provider, "ignored")
            return 202, {
                "delivery": delivery.id,
                "ignored": f"repository {repo.name} is configured with provider {repo.provider}, so its "
                f"{provider} webhooks run nothing",
            }
        if self.daemon.pool.draining:
            metrics.delivery(provider, "draining")
            return 503, {"error": "the daemon is shutting down; deliver again later"}
        ledger = self.daemon.ledger
        try:
            fresh = ledger.record_delivery(provider, delivery.id, delivery.event, "received")
        except StoreError:
            metrics.delivery(provider, "error")
            return 503, {"error": "the daemon's state cannot be written now; deliver again later"}
        if not fresh:
            metrics.delivery(provider, "duplicate")
            return 200, {
                "delivery": delivery.id,
                "duplicate": True,
                "note": "this delivery was handled already; nothing was done again",
            }
        handled = await self.daemon.handle(delivery.record, delivery=delivery.id, installation=delivery.installation_id)
        if handled.failed:  # forgotten, so that the host's redelivery is handled again
            with contextlib.suppress(StoreError):
                ledger.forget_delivery(provider, delivery.id)
            metrics.delivery(provider, "error")
            return 500, {"delivery": delivery.id, "error": self._public(handled.note)}
        with contextlib.suppress(StoreError):  # only the log line of a delivery done
            ledger.update_delivery(provider, delivery.id, handled.note[:500])
        metrics.delivery(provider, "accepted")
        return 202, {"delivery": delivery.id, **handled.as_dict(), "note": self._public(handled.note)}

    # -- status

    def _health(self) -> tuple[int, dict]:
        counts = self.daemon.pool.jobs_by_status()
        if self.daemon.pool.draining:
            return 503, {"status": "draining", **counts}
        return 200, {"status": "ok", **counts}

    def _jobs(self, scope: dict) -> tuple[int, dict | list]:
        from fasttrack_gitops.core.render.jobs import job_record

        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        limit = query.get("limit", "20")
        digits = limit.lstrip("0") if limit.isascii() and limit.isdigit() else ""
        if not digits:  # the store would read 0 or less as "no limit"
            return 400, {
                "error": f"limit is {limit[:40]!r}; give a whole number from 1 (at most {JOBS_LIMIT} are listed)"
            }
        try:
            status = JobStatus(query["status"]) if "status" in query else None
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            return 400, {"error": f"status is {query['status']!r}; give one of: {known}"}
        views = self.daemon.store.list_jobs(
            pipeline=query.get("pipeline"), status=status, limit=min(int(digits[:7]), JOBS_LIMIT)
        )  # no int() of 5000 digits
        return 200, [job_record(v) for v in views]

    def _page(self, job_id: str) -> tuple[int, str]:
        """The job as a page for people (check "Details" links and Slack buttons lead here)."""
        import html

        from fasttrack_gitops.daemon.page import job_page
        from fasttrack_gitops.engine.results import base_label, comparison

        try:
            view = self.daemon.store.view(job_id)
            found = comparison(self.daemon.store, view, public_url=self.daemon.config.public_url)
            return 200, job_page(view, found, base_label(view, found) if found is not None else "")
        except FastTrackError as e:
            return 404, f"<!doctype html><title>Not found</title><p>{html.escape(self._public(str(e)))}</p>"

    def _job(self, job_id: str) -> tuple[int, dict]:
        from fasttrack_gitops.core.render.jobs import job_record

        try:
            return 200, job_record(self.daemon.store.view(job_id))
        except FastTrackError as e:
            return 404, {"error": self._public(str(e))}

    def _metrics(self, job_id: str) -> tuple[int, dict]:
        from fasttrack_gitops.core.metrics import as_json
        from fasttrack_gitops.engine.results import comparison

        try:
            found = comparison(
                self.daemon.store, self.daemon.store.view(job_id), public_url=self.daemon.config.public_url
            )
        except FastTrackError as e:
            return 404, {"error": self._public(str(e))}
        if found is None:
            return 404, {"error": f"no task of job {job_id}'s pipeline declares metrics"}
        return 200, as_json(found)

    # -- manual runs

    async def _trigger(self, headers: dict, receive) -> tuple[int, dict]:
        token = self.daemon.config.api_token
        if token is not None:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return 401, {"error": "this daemon wants Authorization: Bearer <token> (its api_token_env)"}
        if self.daemon.pool.draining:
            return 503, {"error": "the daemon is shutting down; try again later"}
        try:
            request = json.loads(await _read(receive, API_BODY_LIMIT))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return 400, {"error": "the body is not JSON"}
        if not isinstance(request, dict) or not all(
            isinstance(request.get(k), str) and request.get(k) for k in ("repository", "pipeline")
        ):
            return 400, {"error": "give a JSON object with repository and pipeline (and ref, request_id)"}
        if self.daemon.repositories.find(request["repository"]) is None:
            return 404, {"error": f"repository {request['repository']} is not configured in this daemon"}
        try:
            params = from_request(request.get("params"))  # their names and types are checked against the pipeline
        except ParamError as e:
            return 400, {"error": str(e)}
        manual = Manual(
            request["repository"],
            request["pipeline"],
            str(request.get("ref") or "HEAD"),
            str(request.get("request_id") or secrets.token_hex(8)),
            str(request.get("sender") or "api"),
            no_cache=request.get("no_cache") is True,
            params=tuple(params.items()),
        )
        handled = await self.daemon.handle(manual, delivery=manual.request_id)
        status = 201 if handled.jobs else 400 if handled.refused else 422
        return status, {**handled.as_dict(), "note": self._public(handled.note)}


class _NotAllowed(WebhookError):
    """405, which must say in an Allow header what the endpoint takes."""

    def __init__(self, allowed: tuple[str, ...]):
        super().__init__(405, f"use {' or '.join(allowed)}")
        self.allowed = allowed


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise _NotAllowed(allowed)


async def _read(receive, limit: int) -> bytes:
    """The request body, refused (413) as soon as it grows past the limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookError(400, "the client went away before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, content_type: str, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})
