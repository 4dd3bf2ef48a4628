"""Logging in and out: Argon2id-checked passwords, server-side sessions, audited."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from edge_agent.console.auth import csrf_ok
from edge_agent.console.pages import (
    COOKIE,
    client_of,
    console_of,
    over_tls,
    render_page,
    session_of,
)
from edge_agent.web.login import submit_login

log = logging.getLogger(__name__)

async def login_page(request: Request) -> Response:
    return render_page(request, "login.html",
                       {"errors": {}, "username": "", "next": request.query_params.get("next", "/")})


async def login_submit(request: Request) -> Response:
    console = console_of(request)
    return await submit_login(request, console, render=render_page, client=client_of(request), cookie=COOKIE,
                              session_ttl_s=console.config.session_ttl_s,
                              secure=console.config.secure_cookies or over_tls(request), log_name="console")


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
