"""The RAU console's pages and actions."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from edge_agent.central.console.forms import raise_form, raise_problem, search_form
from edge_agent.central.console.monitoring import SiteView, site_view
from edge_agent.central.console.pages import (
    COOKIE,
    RauConsole,
    client_of,
    console_of,
    guard,
    not_found,
    now,
    over_tls,
    refused,
    render_page,
    session_of,
    to_login,
)
from edge_agent.central.console.roles import allowed
from edge_agent.central.ledger import CrossingQuery, Ledger
from edge_agent.config import PolicyConfig
from edge_agent.web.accounts import csrf_ok
from edge_agent.web.login import submit_login

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ logging in and out

async def login_page(request: Request) -> Response:
    return render_page(request, "login.html", {"errors": {}, "username": "",
                                               "next": request.query_params.get("next", "/")})


async def login_submit(request: Request) -> Response:
    console = console_of(request)
    client = client_of(request)
    return await submit_login(request, console, render=render_page, client=client, cookie=COOKIE,
                              session_ttl_s=console.settings.session_ttl_s,
                              secure=console.settings.secure_cookies or over_tls(request), log_name="rau_console",
                              details={"client": client})


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


# ------------------------------------------------------------------ monitoring

def _site_views(console: RauConsole, ledger: Ledger) -> list[SiteView]:
    at = now()
    return [site_view(row, ledger.last_event_at(row["site"]), at, console.settings.silent_after_s)
            for row in ledger.sites()]


async def sites_page(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    views = await console.read(lambda ledger: _site_views(console, ledger))
    return render_page(request, "sites.html", {"sites": views})


async def sites_live(request: Request) -> Response:
    """The sites table alone, for the page's short poll (static/rau.js)."""
    if session_of(request) is None:
        return Response(status_code=401)
    console = console_of(request)
    views = await console.read(lambda ledger: _site_views(console, ledger))
    return render_page(request, "_sites.html", {"sites": views})


async def site_page(request: Request, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                    status_code: int = 200) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    console = console_of(request)
    site = request.path_params["site"]

    def gather(ledger: Ledger) -> tuple[SiteView | None, list[dict[str, Any]]]:
        views = [v for v in _site_views(console, ledger) if v.site == site]
        return (views[0] if views else None), ledger.commands(site=site, limit=20)

    view, commands = await console.read(gather)
    if view is None:
        return not_found(request, f"no site {site!r} has reported to the hub")
    return render_page(request, "site.html", {"s": view, "commands": commands, "form": form or {},
                                              "errors": errors or {}}, status_code=status_code)


# ------------------------------------------------------------------ re-routing

def truck_channels(ledger: Ledger, site: str, reference: str, plate: str, policy: PolicyConfig) -> tuple[str, str]:
    """(the strictest channel the truck has at `site` so far: its hits, the raises the site
    recorded and those queued here; the ended crossing of its declaration or '')."""
    events: list[tuple[str, str, dict[str, Any]]] = []
    if reference:
        events += ledger.events_by(reference=reference, limit=200)
    if plate:
        events += ledger.events_by(plate=plate, limit=200)
    channels, ended = [], ""
    for where, stream, body in events:
        if where != site:
            continue
        if stream in ("hit", "rau_raise") and isinstance(body.get("channel"), str):
            channels.append(body["channel"])
        if stream == "crossing" and reference and body.get("reference") == reference:
            ended = str(body.get("crossing") or body.get("id"))
    for command in ledger.commands(site=site, limit=500):
        if (reference and command.get("reference") == reference) or (plate and command.get("plate") == plate):
            channels.append(str(command.get("channel", "")))
    known = {c.code: c.precedence for c in policy.channels}
    return min((c for c in channels if c in known), key=lambda c: known[c], default=""), ended


async def raise_action(request: Request) -> Response:
    site = request.path_params["site"]
    checked = await guard(request, "raise_channel", {"site": site})
    if isinstance(checked, Response):
        return checked
    session, data = checked
    console = console_of(request)
    policy = console.settings.policy
    known = await console.read(lambda ledger: [r["site"] for r in ledger.sites()])
    if site not in known:
        console.record(session, "raise_channel", "rejected", "unknown site", {"site": site})
        return not_found(request, f"no site {site!r} has reported to the hub")
    form = raise_form(data, policy)
    v = form.values
    details = {"site": site, "reference": v.get("reference", ""), "plate": v.get("plate", ""),
               "channel": v.get("channel", "")}
    if not form.ok:
        console.record(session, "raise_channel", "rejected", "; ".join(f"{k}: {e}" for k, e in form.errors.items()),
                       details)
        return await site_page(request, dict(data), form.errors, status_code=422)
    current, ended = await console.read(lambda ledger: truck_channels(ledger, site, v["reference"], v["plate"], policy))
    problem = raise_problem(current, v["channel"], ended, policy)
    if problem:
        console.record(session, "raise_channel", "rejected", problem, {**details, "current": current})
        return await site_page(request, dict(data), {"channel": problem}, status_code=409)
    expires_at = (now() + timedelta(hours=v["hours"])).isoformat(timespec="seconds")
    command_id = await console.queue_command(
        site, session, "raise_channel",
        {"reference": v["reference"], "plate": v["plate"], "channel": v["channel"], "expires_at": expires_at},
        f"RAU ({session.user.username}): {v['reason']}")
    console.record(session, "raise_channel", "done", v["reason"], {**details, "command": command_id,
                                                                     "from": current, "expires_at": expires_at})
    log.info("rau_raise_queued site=%s command=%s channel=%s user=%s", site, command_id, v["channel"],
             session.user.username)
    return RedirectResponse(f"/sites/{site}", status_code=303)


# ------------------------------------------------------------------ hits and crossings

async def hits_page(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    hits = await console_of(request).read(lambda ledger: ledger.recent_hits(50))
    return render_page(request, "hits.html", {"hits": hits})


async def hits_live(request: Request) -> Response:
    """The hit list alone, for the page's short poll."""
    if session_of(request) is None:
        return Response(status_code=401)
    hits = await console_of(request).read(lambda ledger: ledger.recent_hits(50))
    return render_page(request, "_hits.html", {"hits": hits})


async def crossings_page(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    params = request.query_params
    form = search_form(params, console.settings.policy)
    searched = any(params.get(k) for k in ("plate", "reference", "indicator", "party", "channel", "site", "since",
                                           "until"))
    found: list[tuple[str, dict[str, Any]]] = []
    if not form.ok:
        console.counters["search:rejected"] += 1
        log.warning("rau_console_search_rejected fields=%s", ",".join(sorted(form.errors)))
    elif searched:
        query = CrossingQuery(**form.values, limit=200)
        found = await console.read(lambda ledger: ledger.find_crossings(query))
    return render_page(request, "crossings.html", {"form": dict(params), "errors": form.errors, "found": found,
                                                   "searched": searched},
                       status_code=200 if form.ok else 422)


async def crossing_page(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    site, crossing_id = request.path_params["site"], request.path_params["crossing"]
    console = console_of(request)

    def gather(ledger: Ledger) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any] | None]:
        events = ledger.crossing_events(site, crossing_id)
        ends = [body for stream, body in events if stream == "crossing"]
        reference = str(ends[-1].get("reference") or "") if ends else \
            next((str(b.get("reference")) for _, b in events if b.get("reference")), "")
        return events, (ledger.routed_record(reference) if reference else None)

    events, record = await console.read(gather)
    if not events:
        return not_found(request, f"no crossing {crossing_id!r} of {site!r} in the ledger")
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for stream, body in events:
        by_stream.setdefault(stream, []).append(body)
    end = by_stream.get("crossing", [None])[-1]
    return render_page(request, "crossing.html", {
        "site": site, "crossing_id": crossing_id, "end": end, "record": record,
        "hits": by_stream.get("hit", []), "control_acts": by_stream.get("control_act", []),
        "rechannels": by_stream.get("rechannel", []) + by_stream.get("rau_raise", [])})


# ------------------------------------------------------------------ the audit log, health

async def audit_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    if not allowed(session.user.role, "audit_view"):
        return refused(request, session, "audit_view", "the audit log is for senior analysts and administrators", 403)
    console = console_of(request)
    return render_page(request, "audit.html", {"entries": console.audit.entries(200)})


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "counters": dict(console_of(request).counters)})
