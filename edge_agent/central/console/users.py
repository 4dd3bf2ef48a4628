"""The administrator's users page (issue 16, item 7): add a user, disable or enable one,
reset a password, all through the shared `Accounts` (edge_agent/web/accounts.py), the
same steps the `central console adduser|disable|enable` commands take. Disabling ends
the user's sessions at once (their next request goes to the login page). Every action,
and every refusal, goes to the audit log and the counters.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge_agent.central.console.pages import console_of, guard, not_found, refused, render_page, session_of, to_login
from edge_agent.central.console.roles import ROLE_LABELS, Role, allowed
from edge_agent.web.accounts import user_problems

log = logging.getLogger(__name__)

MAX_REASON = 400


async def users_page(request: Request, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                     status_code: int = 200) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    if not allowed(session.user.role, "users_view"):
        return refused(request, session, "users_view", "the users are kept by the administrator", 403)
    users = console_of(request).accounts.users(include_disabled=True)
    return render_page(request, "users.html", {"users": users, "roles": list(Role), "role_labels": ROLE_LABELS,
                                               "form": form or {}, "errors": errors or {}}, status_code=status_code)


def _text(data: Any, name: str, max_len: int = 200) -> str:
    value = data.get(name, "")
    return value.strip()[:max_len] if isinstance(value, str) else ""


async def add_user(request: Request) -> Response:
    checked = await guard(request, "user_add")
    if isinstance(checked, Response):
        return checked
    session, data = checked
    console = console_of(request)
    username, role, full_name = _text(data, "username", 41), _text(data, "role", 40), _text(data, "full_name")
    password = data.get("password", "") if isinstance(data.get("password", ""), str) else ""
    details = {"username": username, "role": role}
    problems = user_problems(username, role, password, Role)
    if not problems and console.accounts.exists(username):
        problems = {"username": f"{username!r} exists: disable, enable or reset it below"}
    if problems:
        console.record(session, "user_add", "rejected", "; ".join(f"{k}: {e}" for k, e in problems.items()), details)
        form = {"username": username, "role": role, "full_name": full_name}
        return await users_page(request, form, problems, status_code=409 if "exists" in problems.get(
            "username", "") else 422)
    console.accounts.add_user(username, role, password, full_name)
    console.record(session, "user_add", "done", "", {**details, "full_name": full_name})
    return RedirectResponse("/users", status_code=303)


async def set_disabled(request: Request, disabled: bool) -> Response:
    action = "user_disable" if disabled else "user_enable"
    username = request.path_params["username"]
    checked = await guard(request, action, {"username": username})
    if isinstance(checked, Response):
        return checked
    session, data = checked
    console = console_of(request)
    reason = _text(data, "reason", MAX_REASON)
    if not console.accounts.exists(username):
        console.record(session, action, "rejected", "no such user", {"username": username})
        return not_found(request, f"no user {username!r}")
    if disabled and username == session.user.username:
        console.record(session, action, "rejected", "an administrator may not disable themself",
                       {"username": username})
        return await users_page(request, errors={"users": "you cannot disable yourself: ask another administrator"},
                                status_code=409)
    ended = console.accounts.set_disabled(username, disabled)
    console.record(session, action, "done", reason, {"username": username, "sessions_ended": ended})
    return RedirectResponse("/users", status_code=303)


async def disable_user(request: Request) -> Response:
    return await set_disabled(request, True)


async def enable_user(request: Request) -> Response:
    return await set_disabled(request, False)


async def reset_password(request: Request) -> Response:
    username = request.path_params["username"]
    checked = await guard(request, "user_password", {"username": username})
    if isinstance(checked, Response):
        return checked
    session, data = checked
    console = console_of(request)
    user = next((u for u in console.accounts.users(include_disabled=True) if u.username == username), None)
    if user is None:
        console.record(session, "user_password", "rejected", "no such user", {"username": username})
        return not_found(request, f"no user {username!r}")
    password = data.get("password", "") if isinstance(data.get("password", ""), str) else ""
    problems = user_problems(username, user.role.value, password, Role)
    if problems:
        console.record(session, "user_password", "rejected", "; ".join(problems.values()), {"username": username})
        return await users_page(request, errors={f"password-{username}": problems["password"]}, status_code=422)
    # Saving the user again (the `adduser --replace` step) sets the hash and ends their
    # sessions; it also enables the account, so a disabled user stays disabled here.
    console.accounts.add_user(username, user.role.value, password, user.full_name, replace=True)
    if user.disabled:
        console.accounts.set_disabled(username, True)
    console.record(session, "user_password", "done", "", {"username": username, "disabled": user.disabled})
    return RedirectResponse("/users", status_code=303)
