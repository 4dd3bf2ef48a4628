"""Hit statistics, the audit log view, evidence images and /healthz (/metrics is the agent's, edge_agent/metrics)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)

from edge_agent.console.auth import allowed
from edge_agent.console.pages import (
    console_of,
    refused,
    render_page,
    session_of,
    to_login,
)
from edge_agent.console.readouts import health_view
from edge_agent.hit_rates import indicator_stats


async def stats_page(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    stats = indicator_stats(console.store.all_hits(), console.store.all_control_results())
    return render_page(request, "stats.html", {"stats": stats})


async def audit_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    if not allowed(session.user.role, "audit_view"):
        return refused(request, session, "audit_view", "this role may not read the audit log", 403)
    return render_page(request, "audit.html", {"entries": console_of(request).audit.entries(200)})


async def evidence_file(request: Request) -> Response:
    if session_of(request) is None:
        return PlainTextResponse("log in first", status_code=401)
    root = console_of(request).evidence_dir.resolve()
    path = (root / request.path_params["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        return PlainTextResponse("no such snapshot", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


async def healthz(request: Request) -> Response:
    console = console_of(request)
    agent = console.agent
    thread = getattr(agent, "_core_thread", None)
    core_alive = agent.core is not None and (thread is None or thread.is_alive())
    view = health_view(agent, console.backlog())
    body = {"status": "ok" if core_alive else "down", "core": core_alive, "lanes": len(agent.core.lanes),
            "online": view["online"], "outbox_backlog": view["backlog"], "last_ack": view["last_ack"]}
    return JSONResponse(body, status_code=200 if core_alive else 503)
