"""How the console renders a page and checks a post, and the state it serves from.

`Console` holds the agent, the accounts, the audit log and the console's read-only
view of the customs database (store.StoreView); every page goes through `render_page`,
every action through `guard` (session, CSRF token, role), each refusal to the audit log.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from edge_agent.config import ConsoleConfig
from edge_agent.console.anchoring import AuditAnchorer
from edge_agent.console.auth import PERMISSIONS, ROLE_LABELS, Accounts, Session, allowed, csrf_ok
from edge_agent.console.readouts import health_view, lane_view
from edge_agent.metrics.exposition import family
from edge_agent.store import StoreView
from edge_agent.web.audit import AuditLog
from edge_agent.web.forwarded import forwarded_https
from edge_agent.web.login_audit import LoginRefusals
from edge_agent.web.requests import client_address_of, record_action, session_in
from edge_agent.web.throttle import LoginThrottle, ThrottlePolicy

HERE = Path(__file__).parent
COOKIE = "bcp_console"
ACTION_LABELS = {
    "plate": "Plate correction", "release": "Release", "control_act": "Control act",
    "rechannel_request": "Re-channel request", "rechannel_decide": "Re-channel decision",
    "profiles_edit": "Local profile", "audit_view": "Audit log", "login": "Login", "logout": "Logout",
}


class Console:
    """The application's state: the agent it shows, accounts, audit log, counters."""

    def __init__(self, agent: Any, config: ConsoleConfig) -> None:
        self.agent = agent
        self.config = config
        self.data_dir = Path(getattr(agent, "data_dir", None) or agent.config.site.data_dir)
        db_file = config.db_file or self.data_dir / "console.db"
        self.accounts = Accounts(db_file, config.session_ttl_s)
        self.audit = AuditLog(db_file)
        # Counted in the console's database, so neither a restart nor a spray forgets them.
        self.throttle = LoginThrottle(db_file, ThrottlePolicy(
            free_failures=config.login_free_failures, free_failures_per_client=config.login_free_failures_per_client,
            pause_s=config.login_pause_s, max_pause_s=config.login_max_pause_s,
            forget_after_s=max(config.login_max_pause_s, config.login_pause_s),
            remember_address_s=config.login_remember_address_days * 86400.0),
            is_account=self.accounts.exists, booth=config.booth_addresses)
        self.login_refusals = LoginRefusals(self.audit)
        self.evidence_dir = config.evidence_dir or self.data_dir / "evidence"
        self.counters: Counter[str] = Counter()
        self.closing = threading.Event()
        self.anchorer = AuditAnchorer(self.audit, agent.core.post, config.audit_anchor_interval_s, self.closing)
        self.anchorer.start()
        self.store = StoreView(self.data_dir / "agent.db")
        # The agent serves /metrics on its own port; the console adds its requests there.
        if hasattr(agent, "add_metrics_source"):
            agent.add_metrics_source("console", self.metrics_lines)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(role_labels=ROLE_LABELS, permissions=PERMISSIONS, allowed=allowed,
                                          site=agent.config.site, action_labels=ACTION_LABELS)
        self.templates.env.filters["kg"] = lambda v: "-" if v is None else f"{v:,.0f} kg"

    def close(self) -> None:
        self.closing.set()
        self.anchorer.anchor_now()  # what the last shift did is anchored before the console goes
        if hasattr(self.agent, "add_metrics_source"):
            self.agent.add_metrics_source("console", None)
        self.login_refusals.flush()
        self.store.close()
        self.throttle.close()
        self.accounts.close()
        self.audit.close()

    # ------------------------------------------------------------------ reads of the customs database

    def lane_view(self, lane: str) -> dict[str, Any]:
        recent = [r["id"] for r in self.store.crossings(limit=3, lane=lane)]
        return lane_view(self.agent, lane, self.evidence_dir, recent)

    def backlog(self) -> int | None:
        return self.store.outbox_count()

    def metrics_lines(self) -> list[str]:
        return family("edge_agent_console_requests_total", "counter", "Console actions, by action and outcome.",
                      [({"action": k.split(":")[0], "outcome": k.split(":")[1]}, v)
                       for k, v in sorted(self.counters.items()) if ":" in k])

    # ------------------------------------------------------------------ audit

    def record(self, session: Session | None, action: str, outcome: str, reason: str = "",
               details: dict[str, Any] | None = None) -> None:
        record_action(self.counters, self.audit, session, action, outcome, reason, details, event="console_action")


def console_of(request: Request) -> Console:
    return request.app.state.console


def session_of(request: Request) -> Session | None:
    return session_in(request, console_of(request).accounts, COOKIE)


def client_of(request: Request) -> str:
    return client_address_of(request, console_of(request).config.trusted_proxies)


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS: our own listener, or a trusted proxy's."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else "-"
    trusted = console_of(request).config.trusted_proxies
    return forwarded_https(peer, request.headers.get("x-forwarded-proto", ""), trusted)


def render_page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    console = console_of(request)
    context = {"session": session_of(request), "health": health_view(console.agent, console.backlog()),
               "lanes": list(console.agent.core.lanes), **context}
    return console.templates.TemplateResponse(request, name, context, status_code=status_code)


def to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def refused(request: Request, session: Session | None, action: str, reason: str, status_code: int,
             details: dict[str, Any] | None = None) -> Response:
    console_of(request).record(session, action, "refused", reason, details)
    return render_page(request, "refused.html", {"action": action, "reason": reason}, status_code=status_code)


async def guard(request: Request, action: str, details: dict[str, Any] | None = None):
    """Session, CSRF and role for a POST; returns (session, form) or a refusal response."""
    session = session_of(request)
    form = await request.form()
    if session is None:
        console_of(request).record(None, action, "refused", "not logged in", details)
        return to_login(request)
    if not csrf_ok(session, form.get("csrf")):
        return refused(request, session, action, "the form's security token is missing or stale; reload the page", 403,
                       details)
    if not allowed(session.user.role, action):
        return refused(request, session, action,
                        f"a {ROLE_LABELS[session.user.role].lower()} may not do this", 403, details)
    return session, form


def lane_or_none(request: Request) -> str | None:
    lane = request.path_params["lane"]
    return lane if lane in console_of(request).agent.core.lanes else None


def not_found(request: Request) -> Response:
    return render_page(request, "refused.html", {"action": "", "reason": "no such page"}, status_code=404)
