"""The daemon's HTTP surface: a Starlette application (uvicorn serves it).

    POST /webhooks/github   X-Hub-Signature-256 verified over the raw body; deduplicated by X-GitHub-Delivery
    POST /webhooks/gitlab   X-Gitlab-Token verified
    GET  /healthz           200 while serving, 503 while draining (open: it carries no job data)
    GET  /metrics           Prometheus text format                                         (read)
    GET  /api/jobs          the newest jobs (?pipeline=, ?status=, ?limit=), as `jobs --format json` prints them (read)
    GET  /api/jobs/{id}     one job (an id or a unique prefix)                              (read)
    GET  /api/jobs/{id}/metrics                      its model results, as `jobs metrics --format json` (read)
    GET  /api/jobs/{id}/tasks/{task}/outputs[/{path}] a task's outputs (outputs_http.py: read, or a signed link)
    GET  /api/events        live job and task changes as Server-Sent Events (web/sse.py)  (read)
    POST /api/trigger       {"repository", "pipeline", "ref", "request_id"?, "no_cache"?, "params"?}: a manual run (write)
    GET  /, /jobs, /jobs/{id}, /jobs/{id}/tasks/{task}, /repos, /login: the console (web/pages.py) (read)
    POST /jobs/{id}/cancel, /jobs/{id}/rerun, /repos/approve: the console's buttons (web/actions.py) (write + CSRF)

(read) and (write) are web/access.py's credentials. Answers of the API are
JSON; error answers never name the daemon's folders. Every answer carries
the console's security headers (web/security.py).
"""

from __future__ import annotations

import json
import logging
import secrets
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.events import Manual
from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.core.pipeline.params import ParamError, from_request
from fasttrack_gitops.core.webhooks import WebhookError
from fasttrack_gitops.daemon.outputs_http import OutputsAPI, signing_key
from fasttrack_gitops.daemon.service import Daemon
from fasttrack_gitops.daemon.web.access import Access
from fasttrack_gitops.daemon.webhooks_http import read_body, webhook

log = logging.getLogger("fasttrack_gitops.daemon.http")

API_BODY_LIMIT = 64 * 1024
JOBS_LIMIT = 1000  # the most jobs one GET /api/jobs lists


class App:
    """The ASGI application of one daemon."""

    def __init__(self, daemon: Daemon, *, signing_secret: bytes | None = None):
        """`signing_secret`: what signs output links, sessions and CSRF tokens (outputs_http.signing_key)."""
        from fasttrack_gitops.daemon.web.pages import Console
        from fasttrack_gitops.daemon.web.security import SecurityHeaders

        self.daemon = daemon
        secret = signing_key(daemon.config) if signing_secret is None else signing_secret
        self.access = Access(daemon.config, secret)
        self.outputs = OutputsAPI(daemon.store, daemon.pool.executor, daemon.config, secret, self.public)
        self.console = Console(daemon, self.access, self.public)
        routes = [
            Route("/webhooks/github", self._webhook, methods=["POST"]),
            Route("/webhooks/gitlab", self._webhook, methods=["POST"]),
            Route("/healthz", self._health, methods=["GET"]),
            Route("/metrics", self._metrics_page, methods=["GET"]),
            Route("/api/jobs", self._jobs, methods=["GET"]),
            Route("/api/jobs/{job}/tasks/{task}/outputs", self._outputs, methods=["GET"]),
            Route("/api/jobs/{job}/tasks/{task}/outputs/{path:path}", self._outputs, methods=["GET"]),
            Route("/api/jobs/{job}/metrics", self._metrics, methods=["GET"]),
            Route("/api/jobs/{job}", self._job, methods=["GET"]),
            Route("/api/trigger", self._trigger, methods=["POST"]),
            *self.console.routes(),
        ]
        starlette = Starlette(
            routes=routes, exception_handlers={HTTPException: self._http_error, WebhookError: self._refused}
        )
        starlette.router.redirect_slashes = False  # /api/jobs/ is no job, not a redirect to the list
        self.app = SecurityHeaders(starlette)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # the daemon starts and stops around the server, not inside it
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)

    def public(self, message: str) -> str:
        """A message for the outside: the state folder is the daemon's business, not the caller's."""
        return message.replace(str(self.daemon.store.state_dir), "the daemon's state folder")

    # -- errors

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            # quoted: the path is the caller's text, and a 404 is no place to hand markup back
            return JSONResponse({"error": f"no such endpoint {quote(request.url.path[:200], safe='/')}"}, 404)
        if exc.status_code == 405:
            order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # Starlette's is a set's: stable for clients
            methods = (exc.headers or {}).get("Allow", "").split(", ")
            allowed = ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order)))
            return JSONResponse({"error": f"use {' or '.join(allowed.split(', '))}"}, 405, {"Allow": allowed})
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, exc.headers)

    async def _refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebhookError)
        return JSONResponse({"error": exc.message}, exc.status)

    def _read_refusal(self, request: Request) -> Response | None:
        """None when the request may read the API; else the 401 or 403 that says why."""
        caller = self.console.caller(request)
        if self.access.may_read(caller):
            return None
        status, message = self.access.read_refusal(caller)
        return JSONResponse({"error": message}, status)

    # -- webhooks

    async def _webhook(self, request: Request) -> Response:
        provider = request.url.path.rsplit("/", 1)[1]
        status, body = await webhook(self.daemon, provider, request, self.public)
        return JSONResponse(body, status)

    # -- status

    async def _health(self, request: Request) -> Response:
        counts = self.daemon.pool.jobs_by_status()
        if self.daemon.pool.draining:
            return JSONResponse({"status": "draining", **counts}, 503)
        return JSONResponse({"status": "ok", **counts})

    async def _metrics_page(self, request: Request) -> Response:
        if (refused := self._read_refusal(request)) is not None:
            return refused
        text = self.daemon.metrics.render(
            jobs=self.daemon.pool.jobs_by_status(),
            queue_depth=self.daemon.ledger.queue_depth(),
            executors=(self.daemon.config.executor,),
            outbox=self.daemon.outbox.pending(),
        )
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def _jobs(self, request: Request) -> Response:
        from fasttrack_gitops.core.render.jobs import job_record

        if (refused := self._read_refusal(request)) is not None:
            return refused
        query = request.query_params
        limit = query.get("limit", "20")
        digits = limit.lstrip("0") if limit.isascii() and limit.isdigit() else ""
        if not digits:  # the store would read 0 or less as "no limit"
            return _error(400, f"limit is {limit[:40]!r}; give a whole number from 1 (at most {JOBS_LIMIT} are listed)")
        try:
            status = JobStatus(query["status"]) if "status" in query else None
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            return _error(400, f"status is {query['status']!r}; give one of: {known}")
        views = self.daemon.store.list_jobs(
            pipeline=query.get("pipeline"), status=status, limit=min(int(digits[:7]), JOBS_LIMIT)
        )  # no int() of 5000 digits
        return JSONResponse([job_record(v) for v in views])

    async def _job(self, request: Request) -> Response:
        from fasttrack_gitops.core.render.jobs import job_record

        if (refused := self._read_refusal(request)) is not None:
            return refused
        try:
            return JSONResponse(job_record(self.daemon.store.view(request.path_params["job"])))
        except FastTrackError as e:
            return _error(404, self.public(str(e)))

    async def _metrics(self, request: Request) -> Response:
        from fasttrack_gitops.core.metrics import as_json
        from fasttrack_gitops.engine.results import comparison

        if (refused := self._read_refusal(request)) is not None:
            return refused
        job_id = request.path_params["job"]
        try:
            found = comparison(
                self.daemon.store, self.daemon.store.view(job_id), public_url=self.daemon.config.public_url
            )
        except FastTrackError as e:
            return _error(404, self.public(str(e)))
        if found is None:
            return _error(404, f"no task of job {job_id}'s pipeline declares metrics")
        return JSONResponse(as_json(found))

    async def _outputs(self, request: Request) -> Response:
        caller = self.console.caller(request)
        answer = await self.outputs.answer(request, caller)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers}
        return Response(answer.body, answer.status, headers, media_type=answer.content_type)

    # -- manual runs

    async def _trigger(self, request: Request) -> Response:
        caller = self.console.caller(request)
        if not self.access.may_write(caller):
            if self.daemon.config.api_token is None:  # only a credential-less daemon's own machine may trigger
                return _error(
                    403, "this daemon has no api_token_env, so it takes manual runs from its own machine only"
                )
            return _error(401, "this daemon wants Authorization: Bearer <token> (its api_token_env)")
        if self.daemon.pool.draining:
            return _error(503, "the daemon is shutting down; try again later")
        try:
            body = json.loads(await read_body(request, API_BODY_LIMIT))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body.get(k) for k in ("repository", "pipeline")
        ):
            return _error(400, "give a JSON object with repository and pipeline (and ref, request_id)")
        if self.daemon.repositories.find(body["repository"]) is None:
            return _error(404, f"repository {body['repository']} is not configured in this daemon")
        try:
            params = from_request(body.get("params"))  # their names and types are checked against the pipeline
        except ParamError as e:
            return _error(400, str(e))
        manual = Manual(
            body["repository"],
            body["pipeline"],
            str(body.get("ref") or "HEAD"),
            str(body.get("request_id") or secrets.token_hex(8)),
            str(body.get("sender") or "api"),
            no_cache=body.get("no_cache") is True,
            params=tuple(params.items()),
        )
        handled = await self.daemon.handle(manual, delivery=manual.request_id)
        status = 201 if handled.jobs else 400 if handled.refused else 422
        return JSONResponse({**handled.as_dict(), "note": self.public(handled.note)}, status)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status)
