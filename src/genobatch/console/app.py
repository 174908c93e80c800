"""The web console's routes, served by ``genobatch server`` on the API's port.

``GET /`` is the console's front page (``POST /`` stays the JSON services' route); every other page
lives under ``/console/``. Pages are rendered on the server from the same handlers and store
queries the API uses; a small script shipped in ``static/`` keeps them live over server-sent
events. Reading anything needs a session (see :mod:`.session`), except under ``--no-auth``.
Cancel and terminate go through the engine with the API's own ``CancelJob``/``TerminateJob``
handlers, behind a per-session CSRF token and a same-origin check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from genobatch.api import jobs as job_handlers
from genobatch.api.auth import AuthError, verify_request
from genobatch.api.errors import ApiError, error_response, new_request_id
from genobatch.api.job_detail import STATUSES
from genobatch.console import benchmarks, filters, sse
from genobatch.console import jobs as job_views
from genobatch.console import queues as queue_views
from genobatch.console import runs as run_views
from genobatch.console.session import COOKIE_NAME, SESSION_TTL_S, LoginRefused, Session, Sessions
from genobatch.engine import Engine
from genobatch.run import Selector

HERE = Path(__file__).parent
#: Scripts, styles and images only from this server; no inline script; not framed by other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on its own form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 16 * 1024


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    filters.register(env)
    return env


class NotSignedIn(Exception):
    """The request carries no live session."""


class Console:
    """The console bound to one engine and one key store (``secret_for`` None: ``--no-auth``)."""

    def __init__(self, engine: Engine, secret_for: Callable[[str], str | None] | None) -> None:
        self.engine = engine
        self.secret_for = secret_for
        self.sessions = Sessions(secret_for)
        self.templates = _environment()

    # ------------------------------------------------------------------ plumbing

    def routes(self) -> list[BaseRoute]:
        """Routes to mount before the API's (GET / and /console/...)."""
        return [
            Route("/", self.page(self.overview), methods=["GET"]),
            Route("/console/login", self.login_form, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", self.logout, methods=["POST"]),
            Route("/console/open", self.open_link, methods=["GET"]),
            Route("/console/jobs", self.page(self.jobs), methods=["GET"]),
            Route("/console/jobs/{job_id}", self.page(self.job), methods=["GET"]),
            Route("/console/jobs/{job_id}/{action}", self.job_action, methods=["POST"]),
            Route("/console/jobs/{job_id}/log/events", self.log_events, methods=["GET"]),
            Route("/console/runs", self.page(self.runs), methods=["GET"]),
            Route("/console/run", self.page(self.run), methods=["GET"]),
            Route("/console/run/timeline.json", self.timeline, methods=["GET"]),
            Route("/console/run/events", self.run_events, methods=["GET"]),
            Route("/console/benchmarks", self.page(self.benchmarks), methods=["GET"]),
            Route("/console/events", self.events, methods=["GET"]),
            Route("/genobatch/v1/console/login-tokens", self.create_login_token, methods=["POST"]),
            Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
        ]

    def session_of(self, request: Request) -> Session:
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is None:
            raise NotSignedIn
        return session

    def render(self, name: str, request: Request, status: int = 200, **values) -> HTMLResponse:
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        html = self.templates.get_template(name).render(
            request=request, session=session, auth=self.sessions.auth, path=request.url.path, **values
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def page(self, view: Callable) -> Callable:
        """A page that needs a session: without one, the login page (and ``next`` back here)."""

        async def endpoint(request: Request) -> Response:
            try:
                session = self.session_of(request)
            except NotSignedIn:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/console/login?" + urlencode({"next": target}), status_code=303)
            return await view(request, session)

        return endpoint

    def _signed_in_or_401(self, request: Request) -> Response | None:
        try:
            self.session_of(request)
        except NotSignedIn:
            return JSONResponse({"message": "sign in first: /console/login"}, status_code=401, headers=SECURITY_HEADERS)
        return None

    @staticmethod
    def _same_origin(request: Request) -> bool:
        """A form post must come from a page of this server (Origin, else Referer, names this host)."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source:
            return False
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return source == expected or source.startswith(expected + "/")

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return {}
        parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    # ------------------------------------------------------------------ signing in

    async def login_form(self, request: Request) -> Response:
        if not self.sessions.auth:
            return RedirectResponse("/", status_code=303)
        return self.render("login.html", request, next=_safe_next(request.query_params.get("next")), error=None)

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        target = _safe_next(form.get("next"))
        if not self._same_origin(request):
            return self.render(
                "login.html",
                request,
                403,
                next=target,
                error="Sign-in refused: the form was not sent from this server's login page.",
            )
        try:
            session_id = self.sessions.login(form.get("access_key_id", ""), form.get("secret_access_key", ""))
        except LoginRefused as refused:
            # A short pause makes guessing slow without holding a thread (the secrets are 40 random
            # characters, so this is a courtesy, not the defence).
            await asyncio.sleep(0.3)
            return self.render("login.html", request, 401, next=target, error=str(refused))
        return _with_session(RedirectResponse(target, status_code=303), session_id, request)

    async def open_link(self, request: Request) -> Response:
        try:
            session_id = self.sessions.redeem(request.query_params.get("token", ""))
        except LoginRefused as refused:
            return self.render("login.html", request, 401, next="/", error=str(refused))
        return _with_session(RedirectResponse("/", status_code=303), session_id, request)

    async def logout(self, request: Request) -> Response:
        form = await self._form(request)
        session = self.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is None or not self._same_origin(request) or not session.csrf_matches(form.get("csrf")):
            return self.render("error.html", request, 403, message="Sign-out refused: the form's token is not valid.")
        self.sessions.logout(request.cookies.get(COOKIE_NAME))
        response = RedirectResponse("/console/login" if self.sessions.auth else "/", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    async def create_login_token(self, request: Request) -> Response:
        """``POST /genobatch/v1/console/login-tokens`` (SigV4-signed): a one-time login URL."""
        body = await request.body()
        if self.secret_for is None:
            access_key_id = "anonymous"
        else:
            try:
                access_key_id = verify_request(request, body, self.secret_for)
            except AuthError as error:
                # The API's error shape, as for any other refused signature.
                return error_response(ApiError(error.message, status=error.status, code=error.code), new_request_id())
        token, expires = self.sessions.create_login_token(access_key_id)
        base = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return JSONResponse({"loginUrl": f"{base}/console/open?token={quote(token)}", "expiresAt": int(expires)})

    # ------------------------------------------------------------------ pages

    async def overview(self, request: Request, session: Session) -> Response:
        data = await run_in_threadpool(self._overview_data)
        return self.render("queues.html", request, **data)

    def _overview_data(self) -> dict:
        inventory = self.engine.backend.inventory()
        host = (len(inventory.cpus), inventory.memory_mib, len(inventory.gpus))
        with self.engine.database.connect() as conn:
            specs = run_views.billing_specs_safe(conn, self.engine, host)
            return {"environments": queue_views.environments(conn, specs), "queues": queue_views.queues(conn)}

    async def jobs(self, request: Request, session: Session) -> Response:
        query = dict(request.query_params)
        try:
            flt = job_views.JobFilter.from_query(query)
            page = await run_in_threadpool(job_views.list_jobs, self.engine, flt, query.get("page"))
        except job_views.FilterError as error:
            return self.render(
                "jobs.html",
                request,
                400,
                flt=job_views.JobFilter(),
                page=None,
                error=str(error),
                statuses=STATUSES,
                queues=await run_in_threadpool(self._queue_names),
                query=query,
            )
        return self.render(
            "jobs.html",
            request,
            flt=flt,
            page=page,
            error=None,
            statuses=STATUSES,
            queues=await run_in_threadpool(self._queue_names),
            query=query,
        )

    def _queue_names(self) -> list[str]:
        with self.engine.database.connect() as conn:
            return [q.name for q in queue_views.queues(conn)]

    async def job(self, request: Request, session: Session) -> Response:
        job_id = request.path_params["job_id"]
        data = await run_in_threadpool(job_views.job_page, self.engine, job_id)
        if data is None:
            return self.render("error.html", request, 404, message=f"There is no job {job_id}.")
        return self.render("job.html", request, job=data, done=request.query_params.get("done"))

    async def job_action(self, request: Request) -> Response:
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        handler = {"terminate": job_handlers.terminate_job, "cancel": job_handlers.cancel_job}.get(action)
        form = await self._form(request)
        try:
            session = self.session_of(request)
        except NotSignedIn:
            return self.render("error.html", request, 401, message="Sign in first.")
        if handler is None:
            return self.render("error.html", request, 404, message=f"No action {action!r}: cancel or terminate.")
        if not self._same_origin(request) or not session.csrf_matches(form.get("csrf")):
            return self.render(
                "error.html",
                request,
                403,
                message="Refused: the form's CSRF token is missing or wrong (reload the job page and try again).",
            )
        reason = (form.get("reason") or "").strip() or f"{action.capitalize()}d from the console"
        reason = f"{reason} (by {session.access_key_id})"
        try:
            await asyncio.wrap_future(self.engine.call(handler, {"jobId": job_id, "reason": reason}))
        except ApiError as error:
            return self.render("error.html", request, 400, message=f"{action}: {error}")
        return RedirectResponse(f"/console/jobs/{quote(job_id, safe=':')}?done={action}", status_code=303)

    async def runs(self, request: Request, session: Session) -> Response:
        refs = await run_in_threadpool(self._runs)
        return self.render("runs.html", request, runs=refs, kinds=run_views.RUN_KINDS)

    def _runs(self) -> list:
        with self.engine.database.connect() as conn:
            return run_views.list_runs(conn)

    def _selector(self, request: Request) -> Selector:
        params = request.query_params
        return Selector.parse(params.get("run"), params.get("tag"), params.get("queue"))

    async def run(self, request: Request, session: Session) -> Response:
        try:
            selector = self._selector(request)
        except ValueError as error:
            return self.render("error.html", request, 400, message=f"run: {error}")
        data = await run_in_threadpool(run_views.run_page, self.engine, selector)
        return self.render("run.html", request, run=data, selector=selector, query=request.url.query)

    async def timeline(self, request: Request) -> Response:
        refused = self._signed_in_or_401(request)
        if refused:
            return refused
        try:
            selector = self._selector(request)
        except ValueError as error:
            return JSONResponse({"message": f"run: {error}"}, status_code=400)
        data = await run_in_threadpool(run_views.timeline_data, self.engine, selector)
        return JSONResponse(data, headers=SECURITY_HEADERS)

    async def benchmarks(self, request: Request, session: Session) -> Response:
        data = await run_in_threadpool(benchmarks.benchmark_runs, self.engine)
        return self.render("benchmarks.html", request, benchmarks=data)

    # ------------------------------------------------------------------ live streams

    async def events(self, request: Request) -> Response:
        return self._stream(request, lambda: sse.overview(request, self.engine))

    async def run_events(self, request: Request) -> Response:
        try:
            selector = self._selector(request)
        except ValueError as error:
            return JSONResponse({"message": f"run: {error}"}, status_code=400)
        return self._stream(request, lambda: sse.run(request, self.engine, selector))

    async def log_events(self, request: Request) -> Response:
        params = request.query_params
        try:
            attempt = int(params["attempt"]) if params.get("attempt") else None
            offset = int(request.headers.get("last-event-id") or params.get("offset") or 0)
        except ValueError:
            return JSONResponse({"message": "attempt and offset must be integers"}, status_code=400)
        job_id = request.path_params["job_id"]
        return self._stream(request, lambda: sse.job_log(request, self.engine, job_id, attempt, max(0, offset), str))

    def _stream(self, request: Request, make: Callable) -> Response:
        refused = self._signed_in_or_401(request)
        if refused:
            return refused
        # Checked on every tick: signing out (or the session expiring) ends the page's streams.
        session_id = request.cookies.get(COOKIE_NAME)
        request.state.signed_in = lambda: self.sessions.get(session_id) is not None
        return StreamingResponse(make(), media_type="text/event-stream", headers={**SECURITY_HEADERS, **sse.HEADERS})


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//other.host`` or a URL): an open redirect otherwise."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _with_session(response: Response, session_id: str, request: Request) -> Response:
    # Secure when served over HTTPS (e.g. behind a TLS proxy); the loopback default is plain HTTP.
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        COOKIE_NAME, session_id, max_age=SESSION_TTL_S, path="/", httponly=True, samesite="strict", secure=secure
    )
    return response
