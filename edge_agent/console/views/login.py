"""Logging in and out: Argon2id-checked passwords, server-side sessions, audited."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from edge_agent.console.auth import csrf_ok
from edge_agent.console.pages import (
    COOKIE,
    console_of,
    render_page,
    session_of,
)

log = logging.getLogger(__name__)

async def login_page(request: Request) -> Response:
    return render_page(request, "login.html", {"errors": {}, "username": "", "next": request.query_params.get("next", "/")})


async def login_submit(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never redirect off the console
    user = await run_in_threadpool(console.accounts.authenticate, username, password)
    if user is None:
        console.counters["login:refused"] += 1
        console.audit.append(username[:40] or "-", "-", "login", "refused", "wrong username or password")
        log.warning("console_login_refused user=%s", username[:40])
        return render_page(request, "login.html", {"errors": {"password": "wrong username or password"},
                                             "username": username, "next": target}, status_code=401)
    token, session = console.accounts.open_session(user)
    console.record(session, "login", "done")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(console.config.session_ttl_s), httponly=True,
                        samesite="strict", secure=console.config.secure_cookies, path="/")
    return response


async def logout(request: Request) -> Response:
    console = console_of(request)
    session = session_of(request)
    form = await request.form()
    if session is not None and csrf_ok(session, form.get("csrf")):
        console.accounts.close_session(request.cookies.get(COOKIE))
        console.record(session, "logout", "done")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
