"""Logging in, the same for both consoles: the attempt counted before the password is
checked, an Argon2id check off the event loop, the refusal audited (capped), the
session opened and its cookie set. Each console brings its page renderer, its cookie,
and whether this request came over TLS."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

log = logging.getLogger(__name__)

Render = Callable[..., Response]


async def submit_login(request: Request, console: Any, *, render: Render, client: str, cookie: str,
                       session_ttl_s: float, secure: bool, log_name: str,
                       details: dict[str, Any] | None = None) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never redirect off the console
    console.login_refusals.tick()
    # Counted as a failure before the password is checked, in the same step as the check
    # of the pauses: concurrent guesses cannot all slip in while the first are verified.
    admission = await run_in_threadpool(console.throttle.admit, username, client)
    if not admission.admitted:
        # Refused before the password is checked: a guess made now says nothing. Not
        # audited: a flood of guesses must not become a flood of writes to the storage.
        wait_s = math.ceil(admission.wait_s)
        console.counters["login:throttled"] += 1
        log.warning("%s_login_throttled user=%s client=%s wait_s=%d", log_name, username[:40], client, wait_s)
        response = render(request, "login.html", {
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
        log.warning("%s_login_refused user=%s client=%s pause_s=%d", log_name, username[:40], client,
                    math.ceil(pause_s))
        return render(request, "login.html", {"errors": {"password": "wrong username or password"},
                                              "username": username, "next": target}, status_code=401)
    token, session = console.accounts.open_session(user)
    console.record(session, "login", "done", details=details)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(cookie, token, max_age=int(session_ttl_s), httponly=True, samesite="strict", secure=secure,
                        path="/")
    return response
