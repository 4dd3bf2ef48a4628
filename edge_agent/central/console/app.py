"""The RAU console as an ASGI application, and serving it.

    app = create_app(RauConsoleSettings(ledger="central.db", users_db=Path("rau_console.db")))
    serve(settings)          # uvicorn in the foreground (`edge-agent central console`)
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge_agent.central.console import indicators
from edge_agent.central.console.cctv import cctv_page, request_snapshot, snapshot_image
from edge_agent.central.console.effectiveness_views import effectiveness_csv, effectiveness_page
from edge_agent.central.console.evidence import evidence_export, evidence_file, evidence_page, request_evidence
from edge_agent.central.console.live import ClosingServer, LiveStreams, hits_events, sites_events
from edge_agent.central.console.pages import HERE, RauConsole, RauConsoleSettings
from edge_agent.central.console.users import add_user, disable_user, enable_user, reset_password, users_page
from edge_agent.central.console.views import (
    audit_page,
    crossing_page,
    crossings_page,
    healthz,
    hits_live,
    hits_page,
    login_page,
    login_submit,
    logout,
    raise_action,
    site_page,
    sites_live,
    sites_page,
)
from edge_agent.central.ledger import describe
from edge_agent.web.headers import SecurityHeaders

log = logging.getLogger(__name__)


def create_app(settings: RauConsoleSettings) -> Starlette:
    """The application; `app.state.console` holds the ledger, accounts and audit log."""
    console = RauConsole(settings)
    routes = [
        Route("/", sites_page),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/sites/live", sites_live),
        # live panels over server-sent events (issue 16, item 1); /sites/live and /hits/live stay, the fallback
        Route("/sites/events", sites_events),
        Route("/hits/events", hits_events),
        Route("/sites/{site}", site_page),
        Route("/sites/{site}/raise", raise_action, methods=["POST"]),
        Route("/hits", hits_page),
        Route("/hits/live", hits_live),
        Route("/crossings", crossings_page),
        Route("/crossings/{site}/{crossing}", crossing_page),
        # evidence on demand (console/evidence.py) and CCTV snapshots on demand (console/cctv.py)
        Route("/crossings/{site}/{crossing}/evidence", evidence_page),
        Route("/crossings/{site}/{crossing}/evidence/request", request_evidence, methods=["POST"]),
        Route("/crossings/{site}/{crossing}/evidence.zip", evidence_export),
        Route("/crossings/{site}/{crossing}/evidence/{sha256}", evidence_file),
        Route("/sites/{site}/cctv", cctv_page),
        Route("/sites/{site}/cctv", request_snapshot, methods=["POST"]),
        Route("/sites/{site}/cctv/{request}.jpg", snapshot_image),
        Route("/audit", audit_page),
        # indicator authoring with two people (console/indicators.py)
        Route("/indicators", indicators.drafts_page),
        Route("/indicators/new", indicators.new_draft, methods=["POST"]),
        Route("/indicators/{draft}", indicators.draft_page),
        Route("/indicators/{draft}/preview", indicators.preview_page),
        Route("/indicators/{draft}/json", indicators.save_json, methods=["POST"]),
        Route("/indicators/{draft}/indicator", indicators.save_indicator, methods=["POST"]),
        Route("/indicators/{draft}/submit", indicators.submit, methods=["POST"]),
        Route("/indicators/{draft}/approve", indicators.approve, methods=["POST"]),
        Route("/healthz", healthz),
        # effectiveness (issue 16, item 4): tables, SVG charts and CSV exports
        Route("/effectiveness", effectiveness_page),
        Route("/effectiveness/{table}.csv", effectiveness_csv),
        # the users page (issue 16, item 7): the administrator keeps the users
        Route("/users", users_page, methods=["GET"]),
        Route("/users", add_user, methods=["POST"]),
        Route("/users/{username}/disable", disable_user, methods=["POST"]),
        Route("/users/{username}/enable", enable_user, methods=["POST"]),
        Route("/users/{username}/password", reset_password, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.console = console
    app.state.live = LiveStreams()
    return app


def server_for(app: Starlette) -> uvicorn.Server:
    # proxy_headers off: only settings.trusted_proxies are believed (edge_agent/web/forwarded.py).
    # ClosingServer ends the live panels' streams first when it stops (console/live.py).
    return ClosingServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                         proxy_headers=False, timeout_graceful_shutdown=2), app.state.live)


def serve(settings: RauConsoleSettings, sock: socket.socket | None = None) -> None:
    """Serve until interrupted (uvicorn's own signal handling stops it)."""
    app = create_app(settings)
    sock = sock or socket.create_server((settings.host, settings.port))
    host, port = sock.getsockname()[:2]
    log.info("rau_console_started url=http://%s:%d ledger=%s", host, port, describe(settings.ledger))
    try:
        server_for(app).run(sockets=[sock])
    finally:
        app.state.console.close()
        log.info("rau_console_stopped")
