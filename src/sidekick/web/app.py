"""The dashboard's aiohttp application: pages, live streams, login, actions, /metrics."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from sidekick import __version__
from sidekick.config import Config
from sidekick.web import live
from sidekick.web.action_requests import (
    ACTIONS,
    DEPLOY,
    PLANS,
    PRODUCTION,
    REQUEUE,
    RESTART,
    ROLLBACK,
    STOP,
)
from sidekick.web.auth import Credential, Session, Sessions, bearer_user, check_login, csrf_matches
from sidekick.web.data import CHART_HEIGHT, CHART_WIDTH, Board, git_change, read_tail
from sidekick.web.metrics import metrics_text

logger = logging.getLogger(__name__)

SESSION_COOKIE = "sidekick_session"
LOGIN_COOKIE = "sidekick_login"
STATIC = Path(__file__).parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BOARD = web.AppKey("board", Board)
HUB = web.AppKey("hub", live.Hub)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSIONS = web.AppKey("sessions", Sessions)
CREDENTIALS = web.AppKey("credentials", list[Credential])
READ_ONLY = web.AppKey("read_only", bool)
USER = web.RequestKey("user", str)
SESSION = web.RequestKey("session", Session)

_PUBLIC = frozenset({"/login"})
_SECURITY_HEADERS = {
    # Everything the pages use comes from this server; agents' output cannot run script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def make_app(
    config: Config,
    credentials: list[Credential],
    *,
    read_only: bool = False,
    sessions: Sessions | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_security_headers, _require_login])
    board = Board(config)
    app[BOARD] = board
    app[TEMPLATES] = page_templates()
    app[SESSIONS] = sessions or Sessions(config.web.session_seconds)
    app[CREDENTIALS] = credentials
    app[READ_ONLY] = read_only
    app[HUB] = live.Hub(board, LiveFragments(app[TEMPLATES], read_only))
    app.on_startup.append(_start_hub)
    app.on_shutdown.append(_stop_hub)
    app.on_cleanup.append(_close_board)
    _routes(app, read_only)
    return app


def _routes(app: web.Application, read_only: bool) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", projects_page)
    app.router.add_get("/project", project_page)
    app.router.add_get("/agents", agents_page)
    app.router.add_get("/costs", costs_page)
    app.router.add_get("/health", health_page)
    app.router.add_get("/events", events)
    app.router.add_get("/output", output)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", STATIC)
    if not read_only:
        # Read-only mode has no action at all: not hidden buttons, absent routes.
        app.router.add_get("/actions/confirm", confirm_page)
        app.router.add_post("/actions", act)


def page_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sidekick.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["usd"] = lambda value: f"${float(value or 0):.2f}"
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = _when
    env.filters["filesize"] = _filesize
    return env


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _filesize(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"


async def _start_hub(app: web.Application) -> None:
    app[HUB].start()


async def _stop_hub(app: web.Application) -> None:
    await app[HUB].stop()


async def _close_board(app: web.Application) -> None:
    app[BOARD].close()


# --- middlewares -----------------------------------------------------------------


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(_SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(_SECURITY_HEADERS)
        # The server's own share of a page's time (bench/bench_dashboard.py reads it).
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
    return response


@web.middleware
async def _require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in _PUBLIC or request.path.startswith("/static/"):
        return await handler(request)
    session = _session(request)
    if session is not None:
        if request.method == "POST":
            form = await request.post()
            if not csrf_matches(session, str(form.get("csrf", ""))):
                raise web.HTTPForbidden(text="refused: the form carries no valid CSRF token")
        request[USER] = session.user
        request[SESSION] = session
        return await handler(request)
    user = _bearer(request)
    if user is not None and request.method == "GET":
        request[USER] = user
        return await handler(request)
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        raise web.HTTPSeeOther("/login")
    raise web.HTTPUnauthorized(text="log in first")


def _session(request: web.Request) -> Session | None:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    return request.app[SESSIONS].get(session_id) if session_id else None


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return bearer_user(request.app[CREDENTIALS], token.strip())


# --- rendering --------------------------------------------------------------------


def _render(request: web.Request, template: str, title: str, page: str, **context: Any) -> str:
    session = request.get(SESSION)
    return (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            title=title,
            page=page,
            user=request.get(USER, ""),
            csrf=session.csrf if session else "",
            read_only=request.app[READ_ONLY],
            asset_version=__version__,
            **context,
        )
    )


def _page(
    request: web.Request, template: str, title: str, page: str, **context: Any
) -> web.Response:
    html = _render(request, template, title, page, **context)
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


class LiveFragments:
    """The projects page's changing parts, rendered by the same templates as the page."""

    def __init__(self, templates: jinja2.Environment, read_only: bool) -> None:
        self._row = templates.get_template("_row.html").module.project_row  # type: ignore[attr-defined]
        self._meta = templates.get_template("_meta.html")
        self._extras = templates.get_template("_extras.html")
        self._read_only = read_only

    def row(self, project: dict[str, Any]) -> str:
        return str(self._row(project, self._read_only))

    def meta(self, data: dict[str, Any]) -> str:
        return self._meta.render(data=data)

    def extras(self, data: dict[str, Any]) -> str:
        return self._extras.render(data=data)


# --- login ------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    return _login_form(request, failed=False, name="")


def _login_form(request: web.Request, *, failed: bool, name: str) -> web.Response:
    # A login form carries its own token, matched against a cookie (double submit):
    # another site cannot log a person in as someone else.
    token = secrets.token_urlsafe(24)
    html = _render(
        request, "login.html", "Log in", "login", failed=failed, name=name, login_csrf=token
    )
    response = web.Response(text=html, content_type="text/html", status=401 if failed else 200)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return response


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not token or not secrets.compare_digest(token, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="refused: the login form carries no valid CSRF token")
    name, offered = str(form.get("user", "")), str(form.get("secret", ""))
    # A password's hash takes a while on purpose; the loop keeps serving meanwhile.
    user = await asyncio.get_running_loop().run_in_executor(
        None, check_login, request.app[CREDENTIALS], name, offered
    )
    if user is None:
        logger.warning("failed dashboard login for %r from %s", name, request.remote)
        return _login_form(request, failed=True, name=name)
    session_id, _ = request.app[SESSIONS].open(user)
    request.app[BOARD].store.record_event("", "dashboard-login", f"{user} logged in", user=user)
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int(request.app[SESSIONS].lifetime),
    )
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].close(request.cookies.get(SESSION_COOKIE, ""))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- pages ------------------------------------------------------------------------


async def projects_page(request: web.Request) -> web.Response:
    # The live updates keep every row rendered for the daemon's latest report: a page
    # asked for meanwhile is put together from them instead of rendering a thousand rows.
    current = request.app[HUB].current()
    if current is not None:
        cached = dict(zip(("meta", "rows", "extras"), current, strict=True))
        return _page(request, "projects.html", "Projects", "projects", cached=cached)
    data = request.app[BOARD].projects()
    return _page(request, "projects.html", "Projects", "projects", data=data, cached=None)


async def project_page(request: web.Request) -> web.Response:
    name = request.query.get("name", "")
    project = request.app[BOARD].project(name)
    if project is None:
        raise _not_found(request, f"No project named {name!r} in the list or the history.")
    change = await git_change(project["directory"])
    limit = request.app[BOARD].config.web.tail_bytes
    return _page(
        request,
        "project.html",
        name,
        "project",
        p=project,
        change=change,
        tail_kb=max(1, limit // 1024),
        tail_limit=limit * 4,
    )


async def agents_page(request: web.Request) -> web.Response:
    return _page(request, "agents.html", "Agents", "agents", agents=request.app[BOARD].agents())


async def costs_page(request: web.Request) -> web.Response:
    costs = request.app[BOARD].costs()
    return _page(
        request, "costs.html", "Costs", "costs", c=costs, width=CHART_WIDTH, height=CHART_HEIGHT
    )


async def health_page(request: web.Request) -> web.Response:
    return _page(request, "health.html", "Health", "health", h=request.app[BOARD].health())


async def events(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].serve(request)


async def output(request: web.Request) -> web.StreamResponse:
    board = request.app[BOARD]
    name = request.query.get("name", "")
    run = next((r for r in board.store.active_runs().values() if r.project == name), None)
    if run is None or not run.log_path:
        raise web.HTTPNotFound(text=f"no running agent for {name!r}")
    log = Path(run.log_path)
    tail = await asyncio.get_running_loop().run_in_executor(
        None, read_tail, log, board.config.web.tail_bytes
    )

    def still_running() -> bool:
        return any(r.run_id == run.run_id for r in board.store.active_runs().values())

    closing = request.app[HUB].closing
    return await live.follow_output(request, log, tail, still_running, closing)


async def metrics(request: web.Request) -> web.Response:
    body = await asyncio.get_running_loop().run_in_executor(None, metrics_text, request.app[BOARD])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


# --- actions ----------------------------------------------------------------------

_LABELS = {
    STOP: "stop the agent",
    REQUEUE: "re-queue the project",
    RESTART: "restart production",
    DEPLOY: "deploy to production",
    ROLLBACK: "roll production back",
}


def _action_allowed(request: web.Request, action: str, project: str) -> str:
    """Why the action cannot be asked for now, or '' when it can."""
    if action not in ACTIONS:
        return f"unknown action {action!r}"
    row = next(
        (p for p in request.app[BOARD].projects()["projects"] if p["project"] == project), None
    )
    if row is None:
        return f"{project!r} is not in the list"
    if action == STOP and not row["can_stop"]:
        return f"{project} has no running agent"
    if action == REQUEUE and not row["can_requeue"]:
        return f"{project} is {row['status']}, not Failed"
    if action in PRODUCTION and not row["has_production"]:
        return f"{project} has no production block in the configuration"
    return ""


async def confirm_page(request: web.Request) -> web.Response:
    action, project = request.query.get("action", ""), request.query.get("project", "")
    refused = _action_allowed(request, action, project)
    if refused:
        raise _refused(request, refused)
    if action in PRODUCTION:
        # A deploy's plan reads two directory trees: off the event loop.
        plan = await asyncio.get_running_loop().run_in_executor(
            None, request.app[BOARD].production_plan, action, project
        )
        if plan.refused:
            raise _refused(request, plan.refused)
        summary, lines = plan.summary, plan.lines
    else:
        summary, lines = PLANS[action].format(project=project), []
    return _page(
        request,
        "confirm.html",
        "Confirm",
        "confirm",
        action=action,
        project=project,
        plan=summary,
        plan_lines=lines,
        action_label=_LABELS[action],
    )


async def act(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    action, project = str(form.get("action", "")), str(form.get("project", ""))
    refused = _action_allowed(request, action, project)
    if refused:
        raise _refused(request, refused)
    user = request[USER]
    board = request.app[BOARD]
    request_id = board.requests.submit(user, action, project)
    board.store.record_event(
        project,
        "dashboard-request",
        f"{user} asked: {_LABELS[action]}",
        user=user,
        request=request_id,
    )
    logger.info("%s asked to %s %s (request %d)", user, action, project, request_id)
    raise web.HTTPSeeOther(f"/project?name={quote(project, safe='')}")


def _refused(request: web.Request, message: str) -> web.HTTPException:
    html = _render(request, "error.html", "Not possible", "error", message=message)
    return web.HTTPConflict(text=html, content_type="text/html")


def _not_found(request: web.Request, message: str) -> web.HTTPException:
    html = _render(request, "error.html", "Not found", "error", message=message)
    return web.HTTPNotFound(text=html, content_type="text/html")
