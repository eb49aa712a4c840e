"""The console's buttons and its login: POSTs from its own pages' forms.

    POST /login                 token=...: a session cookie for the token's level (access.py)
    POST /logout                the session cookie removed
    POST /jobs/{id}/cancel      cancel an open job                              (write)
    POST /jobs/{id}/rerun       failed_only=1|0: a new job repeating this one   (write)
    POST /repos/approve         repository=, number=: run a fork's held pull request, as /fasttrack ok-to-test (write)

Each is refused, in this order and before anything is read or changed: a
request from another origin (403), a caller without the write level (401,
or 403 on a daemon that answers its own machine only), a missing or forged
CSRF token (403). The login form needs the CSRF token too (no login CSRF).
Forms are read as application/x-www-form-urlencoded, at most FORM_LIMIT bytes.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import JobView
from fasttrack_gitops.core.webhooks import WebhookError
from fasttrack_gitops.daemon.web import views
from fasttrack_gitops.daemon.web.access import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS
from fasttrack_gitops.daemon.webhooks_http import read_body

FORM_LIMIT = 16 * 1024


class Actions:
    def __init__(self, console):
        self.console = console
        self.daemon = console.daemon
        self.access = console.access

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/jobs/{job}/cancel", self.cancel, methods=["POST"]),
            Route("/jobs/{job}/rerun", self.rerun, methods=["POST"]),
            Route("/repos/approve", self.approve, methods=["POST"]),
        ]

    async def _form(self, request: Request, *, write: bool = True) -> dict[str, str] | Response:
        """The form's fields, or the refusal."""
        if not self.access.same_origin(request.headers, request.url.scheme):
            return self._refuse(request, 403, "this request comes from another site; use the console's own page")
        if write:
            caller = self.console.caller(request)
            if not self.access.may_write(caller):
                if caller.level == "read":
                    return self._refuse(request, 403, "the read token cannot press buttons; log in with the API token")
                if self.daemon.config.api_token is None:
                    return self._refuse(
                        request, 403, "this daemon has no api_token_env: its buttons work on its own machine only"
                    )
                return self._refuse(request, 401, "log in with the API token (api_token_env) to use the buttons")
        try:
            body = await read_body(request, FORM_LIMIT)
        except WebhookError as e:
            return self._refuse(request, e.status, e.message)
        fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not self.access.csrf_ok(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            return self._refuse(
                request, 403, "the form's CSRF token is missing or wrong; reload the page and try again"
            )
        return fields

    def _refuse(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.console.render(request, "error.html", status, title="Refused", message=message)

    # -- login

    async def login(self, request: Request) -> Response:
        from fasttrack_gitops.daemon.web.pages import login_redirect, set_cookie

        fields = await self._form(request, write=False)
        if isinstance(fields, Response):
            return fields
        level = self.access.level_of_token(fields.get("token", "").strip())
        if level is None:
            return self.console.render(
                request,
                "login.html",
                401,
                message="that is not this daemon's read or API token",
                next=fields.get("next", "/"),
            )
        response = login_redirect(fields.get("next", "/"))
        set_cookie(
            response, SESSION_COOKIE, self.access.session(level), SESSION_SECONDS, secure=self.console.https(request)
        )
        return response

    async def logout(self, request: Request) -> Response:
        from fasttrack_gitops.daemon.web.pages import login_redirect

        fields = await self._form(request, write=False)
        if isinstance(fields, Response):
            return fields
        response = login_redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- buttons

    async def cancel(self, request: Request) -> Response:
        from fasttrack_gitops.daemon.web.pages import login_redirect

        posted = await self._posted_job(request)
        if isinstance(posted, Response):
            return posted
        _fields, view = posted
        if not views.is_open(view):
            return self._refuse(
                request, 409, f"job {view.job.id} has ended ({view.status}); there is nothing to cancel"
            )
        self.daemon.cancel_job(view.job.id, self._who(request))
        return login_redirect(views.job_url(view.job.id))

    async def rerun(self, request: Request) -> Response:
        from fasttrack_gitops.daemon.web.pages import login_redirect

        posted = await self._posted_job(request)
        if isinstance(posted, Response):
            return posted
        fields, view = posted
        if views.is_open(view) or view.job.invalid:
            return self._refuse(request, 409, f"job {view.job.id} is {view.status}; re-run it once it has ended")
        request_id = fields.get("request") or secrets.token_hex(8)  # the form's: a double click makes one job
        handled = self.daemon.rerun_job(
            view.job.id, failed_only=fields.get("failed_only") == "1", by=self._who(request), request=request_id[:64]
        )
        return login_redirect(views.job_url(handled.jobs[0]) if handled.jobs else views.job_url(view.job.id))

    async def _posted_job(self, request: Request) -> tuple[dict[str, str], JobView] | Response:
        """A button's form (credential and CSRF checked) and the job it names; or the answer refusing it."""
        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        try:
            return fields, self.daemon.store.view(request.path_params["job"])
        except FastTrackError as e:
            return self.console.not_found(request, str(e))

    async def approve(self, request: Request) -> Response:
        from fasttrack_gitops.daemon.web.pages import login_redirect

        fields = await self._form(request)
        if isinstance(fields, Response):
            return fields
        number = fields.get("number", "")
        if not (number.isascii() and number.isdigit()) or len(number) > 9 or not fields.get("repository"):
            return self._refuse(request, 400, "give the repository and the pull request's number")
        head = fields.get("head", "")  # the head the page showed: the press approves that one only
        if head and not re.fullmatch(r"[0-9a-fA-F]{7,40}", head):
            return self._refuse(request, 400, "the head is not a commit id; reload the page")
        handled = await self.daemon.approve_fork(fields["repository"], int(number), self._who(request), head)
        if not handled.jobs:
            return self._refuse(request, 409, self.console.public(handled.note))
        return login_redirect("/repos")

    def _who(self, request: Request) -> str:
        caller = self.console.caller(request)
        return "the console (API token)" if caller.level == "write" else "the console (its own machine)"
