"""The officers' lane console: a Starlette application over the running agent.

Server-rendered Jinja2 pages; the lane page keeps itself current with server-sent
events carrying the re-rendered status panel, so there is no front-end build and the
page works with a plain browser in the booth. Every officer action is checked (session,
CSRF token, role, then each field), written to the audit log with its user and reason,
and handed to the core as an event: the console never writes the customs database.

    app = create_app(agent, config.console)      # an ASGI app; start_console() serves it
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge_agent.config import ConsoleConfig
from edge_agent.console.pages import HERE, Console
from edge_agent.console.views.lanes import (
    control_act_action,
    lane_live,
    lane_page,
    overview,
    overview_live,
    plate_action,
    rechannel_action,
    release_action,
)
from edge_agent.console.views.login import login_page, login_submit, logout
from edge_agent.console.views.profiles import profiles_page, profiles_save
from edge_agent.console.views.rechannels import rechannel_decide, rechannels_page
from edge_agent.console.views.reports import audit_page, evidence_file, healthz, stats_page
from edge_agent.console.views.storage import hold_action, storage_page
from edge_agent.web.headers import SecurityHeaders


def create_app(agent: Any, config: ConsoleConfig | None = None) -> Starlette:
    """The ASGI application; `app.state.console` holds accounts and the audit log."""
    console = Console(agent, config or ConsoleConfig())
    routes = [
        Route("/", overview),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/live", overview_live),
        Route("/lanes/{lane}", lane_page),
        Route("/lanes/{lane}/live", lane_live),
        Route("/lanes/{lane}/plate", plate_action, methods=["POST"]),
        Route("/lanes/{lane}/release", release_action, methods=["POST"]),
        Route("/lanes/{lane}/control-act", control_act_action, methods=["POST"]),
        Route("/lanes/{lane}/rechannel", rechannel_action, methods=["POST"]),
        Route("/rechannels", rechannels_page),
        Route("/rechannels/{request_id}/decide", rechannel_decide, methods=["POST"]),
        Route("/profiles", profiles_page, methods=["GET"]),
        Route("/profiles", profiles_save, methods=["POST"]),
        Route("/stats", stats_page),
        Route("/storage", storage_page),
        Route("/storage/holds", hold_action, methods=["POST"]),
        Route("/audit", audit_page),
        Route("/evidence/{path:path}", evidence_file),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.console = console
    return app
