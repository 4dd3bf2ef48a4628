"""Logging in and out: Argon2id-checked passwords, server-side sessions, audited."""

from __future__ import annotations

import logging
import math

from starlette.concurrency import run_in_threadpool
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

log = logging.getLogger(__name__)

async def login_page(request: Request) -> Response:
    return render_page(request, "login.html",
                       {"errors": {}, "username": "", "next": request.query_params.get("next", "/")})


async def login_submit(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never redirect off the console
    client = client_of(request)
    console.login_refusals.tick()
    # Counted as a failure before the password is checked, in the same step as the check
    # of the pauses: concurrent guesses cannot all slip in while the first are verified.
    admission = await run_in_threadpool(console.throttle.admit, username, client)
    if not admission.admitted:
        # Refused before the password is checked: a guess made now says nothing. Not
        # audited: a flood of guesses must not become a flood of writes to the storage.
        wait_s = math.ceil(admission.wait_s)
        console.counters["login:throttled"] += 1
        log.warning("console_login_throttled user=%s client=%s wait_s=%d", username[:40], client, wait_s)
        response = render_page(request, "login.html", {
            "errors": {"password": f"too many wrong passwords: try again in {wait_s} s"},
            "username": username, "next": target}, status_code=429)
        response.headers["Retry-After"] = str(wait_s)
        return response
    user = await run_in_threadpool(console.accounts.authenticate, username, password)
    # A success takes its count back; a failure (or a crash above) stays counted.
    pause_s = await run_in_threadpool(console.throttle.settle, admission, ok=user is not None)
    if user is None:
        console.counters["login:refused"] += 1
        reason = "wrong username or password"
        if pause_s > 0:
            reason += f"; logins paused {math.ceil(pause_s)} s after repeated wrong passwords from {client}"
        console.login_refusals.refused(username[:40], client, reason)
        log.warning("console_login_refused user=%s client=%s pause_s=%d", username[:40], client, math.ceil(pause_s))
        return render_page(request, "login.html", {"errors": {"password": "wrong username or password"},
                                             "username": username, "next": target}, status_code=401)
    token, session = console.accounts.open_session(user)
    console.record(session, "login", "done")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(console.config.session_ttl_s), httponly=True,
                        samesite="strict", secure=console.config.secure_cookies or over_tls(request), path="/")
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
