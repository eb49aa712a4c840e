"""The console's pages: the jobs, a job (its DAG live), a task (its log followed), the repositories, the login.

Server-rendered with Jinja2 (autoescaped); the little JavaScript that keeps
a page live is /static/console.js, the only script the CSP allows. Every
page needs the read level (access.py); a refusal is a redirect to the login form or
why this daemon answers its own machine only (403). The data of each page
is views.py's; the buttons are actions.py's.
"""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fasttrack_gitops.core.errors import FastTrackError
from fasttrack_gitops.core.job import JobStatus, JobView
from fasttrack_gitops.core.masking import masked
from fasttrack_gitops.core.render.ansi import to_html
from fasttrack_gitops.core.render.dag_svg import svg
from fasttrack_gitops.daemon.live import TooManyFollowers
from fasttrack_gitops.daemon.web import views
from fasttrack_gitops.daemon.web.access import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Access, Caller
from fasttrack_gitops.daemon.web.sse import EventStream, last_event_id

PAGE = 50  # jobs per page of /jobs
LOG_TAIL = 256 * 1024  # bytes of a log a page shows; the rest by ?offset= (the follow requests) or the CLI
FILTERS = ("repository", "pipeline", "branch", "status", "trigger")


class Console:
    def __init__(self, daemon, access: Access, public):
        self.daemon, self.access, self.public = daemon, access, public
        root = files("fasttrack_gitops.daemon.web")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(root / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.static = StaticFiles(directory=str(root / "static"))
        from fasttrack_gitops.engine.outputs import TaskOutputs

        self.outputs_reader = TaskOutputs(daemon.store, daemon.pool.executor)

    def routes(self) -> list[BaseRoute]:
        from fasttrack_gitops.daemon.web.actions import Actions

        actions = Actions(self)
        return [
            Route("/", self.jobs, methods=["GET"]),
            Route("/jobs", self.jobs, methods=["GET"]),
            Route("/jobs/{job}", self.job, methods=["GET"]),
            Route("/jobs/{job}/tasks/{task}", self.task, methods=["GET"]),
            Route("/jobs/{job}/tasks/{task}/log", self.log, methods=["GET"]),
            Route("/repos", self.repos, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/api/events", self.events, methods=["GET"]),
            *actions.routes(),
            Mount("/static", app=self.static, name="static"),
        ]

    # -- who asks

    def caller(self, request: Request) -> Caller:
        return self.access.caller(request.headers, request.cookies, request.client.host if request.client else None)

    def render(
        self, request: Request, template: str, status: int = 200, since: int | None = None, **context
    ) -> HTMLResponse:
        """The page, with the CSRF token its forms carry (and the cookie it hangs off, set when missing).

        `since`: the last live event before the page's data was read; its script follows the events after it,
        so nothing that happens between the read and the stream's start is lost.
        """
        csrf_cookie = request.cookies.get(CSRF_COOKIE) or self.access.new_csrf_cookie()
        caller = self.caller(request)
        html = self.env.get_template(template).render(
            csrf=self.access.csrf_token(csrf_cookie),
            can_write=self.access.may_write(caller),
            logged_in=caller.level is not None,
            has_tokens=bool(self.daemon.config.api_token or self.daemon.config.read_token),
            path=request.url.path,
            since=self.daemon.live.last_id if since is None else since,
            **context,
        )
        response = HTMLResponse(html, status, headers={"cache-control": "no-store"})
        if request.cookies.get(CSRF_COOKIE) != csrf_cookie:
            set_cookie(response, CSRF_COOKIE, csrf_cookie, SESSION_SECONDS, secure=self.https(request))
        return response

    def https(self, request: Request) -> bool:
        return request.url.scheme == "https" or (self.daemon.config.public_url or "").startswith("https://")

    def refused(self, request: Request) -> Response | None:
        """None when the page may be read; else a redirect to the login form (303) or the loopback notice (403)."""
        caller = self.caller(request)
        if self.access.may_read(caller):
            return None
        status, message = self.access.read_refusal(caller)
        if status == 401:  # to the login form, and back here after it
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", 303)
        return self.render(request, "error.html", status, title="Not served here", message=message)

    def not_found(self, request: Request, message: str) -> HTMLResponse:
        return self.render(request, "error.html", 404, title="Not found", message=self.public(message))

    # -- pages

    async def jobs(self, request: Request) -> Response:
        if (refused := self.refused(request)) is not None:
            return refused
        since = self.daemon.live.last_id
        query = request.query_params
        chosen = {k: query.get(k, "").strip() for k in FILTERS}
        page = int(query["page"]) if _small_number(query.get("page", "")) else 1
        status = None
        if chosen["status"]:
            try:
                status = JobStatus(chosen["status"])
            except ValueError:
                return self.render(request, "error.html", 400, title="Bad filter", message=_bad_status(chosen))
        branch = chosen["branch"]
        ref = (branch if branch.startswith("refs/") else f"refs/heads/{branch}") if branch else None
        found = self.daemon.store.list_jobs(
            pipeline=chosen["pipeline"] or None,
            status=status,
            limit=PAGE + 1,
            offset=(max(page, 1) - 1) * PAGE,
            repository=chosen["repository"] or None,
            ref=ref,
            event=chosen["trigger"] or None,
        )
        rows = [views.job_row(v, self.daemon.shown_status(v)) for v in found[:PAGE]]
        return self.render(
            request,
            "jobs.html",
            since=since,
            rows=rows,
            chosen=chosen,
            page=page,
            more=len(found) > PAGE,
            statuses=[s.value for s in JobStatus],
            repositories=[r.name for r in self.daemon.config.repositories],
            filtered=any(chosen.values()),
            query=urlencode({k: v for k, v in chosen.items() if v}),
        )

    def _job_view(self, request: Request) -> tuple[int, JobView] | Response:
        """The job the path names, and the last live event before it was read (the page follows from there); or
        the answer refusing the request."""
        if (refused := self.refused(request)) is not None:
            return refused
        since = self.daemon.live.last_id
        try:
            return since, self.daemon.store.view(request.path_params["job"])
        except FastTrackError as e:
            return self.not_found(request, str(e))

    async def job(self, request: Request) -> Response:
        found = self._job_view(request)
        if isinstance(found, Response):
            return found
        since, view = found
        job = view.job
        secrets = self.daemon.masks()
        states = {name: str(i.state) for name, i in view.tasks.items()}
        results = self._results(view)
        return self.render(
            request,
            "job.html",
            since=since,
            job=job,
            row=views.job_row(view, self.daemon.shown_status(view)),
            open=views.is_open(view),
            has_failed=view.status == JobStatus.FAILED,
            dag="" if job.invalid else svg(job.pipeline_model(), states, lambda t: views.task_url(job.id, t)),
            tasks=views.task_rows(view, lambda t, n: self._session(job.id, t, n)),
            trigger=json.dumps(dict(job.trigger), indent=2, sort_keys=True),
            spec=masked(json.dumps(dict(job.spec), indent=2), secrets),
            results=results,
            reports=self._reports(job),
        )

    async def task(self, request: Request) -> Response:
        found = self._job_view(request)
        if isinstance(found, Response):
            return found
        since, view = found
        name = request.path_params["task"]
        instance = view.tasks.get(name)
        if instance is None:
            return self.not_found(request, f"job {view.job.id} has no task '{name}'")
        numbers = [a.number for a in instance.attempts]
        wanted = request.query_params.get("attempt", "")
        attempt = int(wanted) if _small_number(wanted) and int(wanted) in numbers else (numbers[-1] if numbers else 0)
        log_html, offset, cut = "", 0, False
        if attempt:
            data, offset, cut = await asyncio.to_thread(self._read_log, view.job.id, name, attempt, None)
            log_html = self._log_html(data)
        outputs, images = await self._outputs(view.job.id, name)
        row = next(r for r in views.task_rows(view, lambda t, n: "") if r["name"] == name)
        return self.render(
            request,
            "task.html",
            since=since,
            job=view.job,
            job_url=views.job_url(view.job.id),
            task=row,
            instance=instance,
            attempts=instance.attempts,
            attempt=attempt,
            session=self._session(view.job.id, name, attempt) if attempt else "",
            log_html=log_html,
            log_offset=offset,
            log_cut=cut,
            follow=bool(attempt) and attempt == numbers[-1] and not row["ended"],
            outputs=outputs,
            images=images,
            results=self._results(view, name),
        )

    async def log(self, request: Request) -> Response:
        """The follow mode's request: the log's whole lines after ?offset=, as HTML, and whether more may come."""
        caller = self.caller(request)
        if not self.access.may_read(caller):
            status, message = self.access.read_refusal(caller)
            return JSONResponse({"error": message}, status)
        try:
            view = self.daemon.store.view(request.path_params["job"])
        except FastTrackError as e:
            return JSONResponse({"error": self.public(str(e))}, 404)
        name, query = request.path_params["task"], request.query_params
        instance = view.tasks.get(name)
        attempt, offset = query.get("attempt", ""), query.get("offset", "")
        if instance is None or not _small_number(attempt) or not _small_number(offset, 15):
            return JSONResponse({"error": "give a task of the job, ?attempt=N and ?offset=BYTES"}, 400)
        ended = instance.ended or int(attempt) < len(instance.attempts)
        data, end, _ = await asyncio.to_thread(self._read_log, view.job.id, name, int(attempt), int(offset), ended)
        return JSONResponse({"html": self._log_html(data), "offset": end, "ended": ended, "state": str(instance.state)})

    async def repos(self, request: Request) -> Response:
        if (refused := self.refused(request)) is not None:
            return refused
        ledger = self.daemon.ledger
        queue = ledger.open_queue()
        repos = []
        for r in self.daemon.config.repositories:
            positions = sorted(ledger.positions(r.name).items())
            repos.append({"name": r.name, "provider": r.provider, "url": r.url, "positions": positions})
        gates = [
            {"repository": g.repository, "number": g.number, "head": g.head_sha[:12], "event": g.event}
            for g in ledger.gates(waiting_only=True)
        ]
        queued = [
            {"id": q.job_id, "url": views.job_url(q.job_id), "started": q.started_at is not None, "group": q.group}
            for q in queue
        ]
        return self.render(request, "repos.html", repos=repos, gates=gates, queued=queued)

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", message="", next=request.query_params.get("next", "/"))

    async def events(self, request: Request) -> Response:
        caller = self.caller(request)
        if not self.access.may_read(caller):
            status, message = self.access.read_refusal(caller)
            return JSONResponse({"error": message}, status)
        job = request.query_params.get("job") or None
        try:
            follower = self.daemon.live.follow(job, last_event_id(request.headers, request.query_params))
        except TooManyFollowers:
            return JSONResponse({"error": "too many live followers now; try again later"}, 503)
        return EventStream(self.daemon.live, follower)

    # -- helpers

    def _results(self, view, task: str | None = None) -> dict | None:
        """The model results for the page (of one task, or all), or None when none are declared or readable."""
        from dataclasses import replace

        from fasttrack_gitops.core.reports.results import PLAIN_COLUMNS, plain_rows
        from fasttrack_gitops.engine.results import base_label, comparison

        try:
            found = comparison(self.daemon.store, view, public_url=self.daemon.config.public_url)
        except FastTrackError:
            return None  # results are a courtesy on a page; `jobs metrics` says what is wrong
        if found is None:
            return None
        label = base_label(view, found)
        if task is not None:
            found = replace(found, rows=tuple(r for r in found.rows if r.task == task))
            if not found.rows:
                return None
        return {
            "base": label,
            "columns": PLAIN_COLUMNS,
            "rows": plain_rows(found),
            "problems": list(found.problems),
            "gates_failed": sum(1 for r in found.rows if r.gate == "fail"),
        }

    def _session(self, job_id: str, task: str, number: int) -> str:
        handle = self.daemon.store.attempt_handle(job_id, task, number) or {}
        return str(handle.get("session_id") or "")

    def _read_log(
        self, job_id: str, task: str, attempt: int, offset: int | None, final: bool = True
    ) -> tuple[bytes, int, bool]:
        """(bytes, the offset after them, whether the start was cut); offset None: the last LOG_TAIL bytes.

        While the attempt runs only whole lines are given, so a line is never split across two answers.
        """
        path = self.daemon.store.log_path(job_id, task, attempt)
        try:
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                start = max(0, size - LOG_TAIL) if offset is None else min(offset, size)
                f.seek(start)
                data = f.read(LOG_TAIL)
        except FileNotFoundError:
            return b"", 0, False
        if offset is not None and not final and len(data) < LOG_TAIL:
            data = data[: data.rfind(b"\n") + 1]
        return data, start + len(data), offset is None and start > 0

    def _log_html(self, data: bytes) -> str:
        return to_html(masked(data.decode("utf-8", "replace"), self.daemon.masks()))

    async def _outputs(self, job_id: str, task: str) -> tuple[list[dict], list[dict]]:
        """The task's output files (links to the outputs API) and which of them are pictures."""
        from fasttrack_gitops.daemon.outputs_http import IMAGES

        try:
            entries = await self.outputs_reader.list(job_id, task)
        except (FastTrackError, OSError):
            return [], []
        base = f"/api/jobs/{quote(job_id, safe='')}/tasks/{quote(task, safe='')}/outputs/"
        files = [{"path": e.path, "size": e.size, "url": base + quote(e.path)} for e in entries if not e.is_dir][:200]
        return files, [f for f in files if str(f["path"]).lower().endswith(IMAGES)][:12]

    def _reports(self, job) -> list[dict]:
        """Where the job was reported (check run, Slack message), as the reporters recorded it."""
        found = []
        for name in self.daemon.reporter_names:
            row = self.daemon.outbox.row(job.id, name)
            if not row or not row.get("state_json"):
                continue
            try:
                state = json.loads(row["state_json"])
            except ValueError:
                continue
            github_api = self.daemon.config.github.api_url if self.daemon.config.github else None
            found.append({"reporter": name, **_report_link(name, job, state, github_api)})
        return found


def _report_link(reporter: str, job, state: dict, github_api: str | None) -> dict:
    """What a reporter sent for the job, and a link to it where its recorded state makes one."""
    url = ""
    if reporter == "github" and state.get("check_run_id"):
        api = (github_api or "https://api.github.com").rstrip("/")
        web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
        url = f"{web}/{quote(job.repository)}/runs/{int(state['check_run_id'])}"
    what = {"github": "check run", "gitlab": "commit status", "slack": "Slack message"}.get(reporter, reporter)
    where = f" in {state['channel']}" if reporter == "slack" and state.get("channel") else ""
    return {"what": what, "url": url if url.startswith("https://") else "", "where": where}


def _small_number(text: str, digits: int = 6) -> bool:
    """ASCII digits only (str.isdigit takes '²'), and few of them (int() of thousands of digits is refused)."""
    return text.isascii() and text.isdigit() and len(text) <= digits


def _bad_status(chosen: dict) -> str:
    return f"status {chosen['status']!r} is not one of: {', '.join(s.value for s in JobStatus)}"


def set_cookie(response: Response, name: str, value: str, max_age: int, *, secure: bool = False) -> None:
    """HttpOnly and SameSite=Strict always; Secure when the console is reached over https (its public_url)."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/", secure=secure)


def login_redirect(target: str) -> RedirectResponse:
    """303 to a path of this daemon only (never to another site named in ?next=)."""
    safe = target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
    return RedirectResponse(safe, 303)


__all__ = ["SESSION_COOKIE", "Console", "login_redirect", "set_cookie"]
