"""The RAU console's state and how it renders a page and checks a post.

`RauConsole` holds the ledger (one connection, used under a lock: the SQLite and
PostgreSQL back-ends each keep one), the accounts, the audit log, the login throttle
and the counters; every page goes through `render_page`, every action through `guard`
(session, CSRF token, role), each refusal to the audit log and the counters.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from edge_agent.central.config import ConsoleConfig
from edge_agent.central.console.monitoring import SILENT_AFTER_S, age_text
from edge_agent.central.console.roles import PERMISSIONS, ROLE_LABELS, Accounts, allowed
from edge_agent.central.ledger import Ledger, is_postgres, sqlite_path
from edge_agent.config import PolicyConfig
from edge_agent.ids import new_id
from edge_agent.web.accounts import Session, csrf_ok
from edge_agent.web.audit import AuditLog
from edge_agent.web.forwarded import Network, forwarded_https
from edge_agent.web.login_audit import LoginRefusals
from edge_agent.web.requests import client_address_of, record_action, session_in
from edge_agent.web.throttle import LoginThrottle, ThrottlePolicy

HERE = Path(__file__).parent
COOKIE = "rau_console"
T = TypeVar("T")


@dataclass
class RauConsoleSettings:
    ledger: str  # a path, sqlite:///PATH or postgresql://... (the hub's --db)
    users_db: Path  # users, sessions, the audit log, failed logins: SQLite, beside the ledger
    host: str = "127.0.0.1"
    port: int = 8090
    session_ttl_s: float = 8 * 3600.0
    secure_cookies: bool = False  # set behind a TLS-terminating proxy
    trusted_proxies: list[Network] = field(default_factory=list)
    silent_after_s: float = SILENT_AFTER_S
    refresh_s: float = 5.0  # how often the live panels ask again
    # The administration's code list: a raise is checked against it (sites share it).
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # Indicator authoring: each user's signing key, <username>.key (indicators_signing.py).
    keys_dir: Path | None = None
    # The administration's channel mix targets (central.toml's [console]), for effectiveness.
    targets: ConsoleConfig = field(default_factory=ConsoleConfig)


def users_db_beside(ledger: str) -> Path:
    """Where the console keeps its users by default: beside a SQLite ledger's file, or in
    the working directory for a PostgreSQL ledger."""
    if is_postgres(ledger):
        return Path("rau_console.db")
    return sqlite_path(ledger).with_name("rau_console.db")


class RauConsole:
    def __init__(self, settings: RauConsoleSettings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings.ledger)
        self._ledger_lock = threading.Lock()
        self.accounts = Accounts(settings.users_db, settings.session_ttl_s)
        self.audit = AuditLog(settings.users_db)
        self.throttle = LoginThrottle(settings.users_db, ThrottlePolicy(), is_account=self.accounts.exists)
        self.login_refusals = LoginRefusals(self.audit)
        self.counters: Counter[str] = Counter()
        self.closing = threading.Event()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(role_labels=ROLE_LABELS, permissions=PERMISSIONS, allowed=allowed,
                                          channels=[c.code for c in settings.policy.channels],
                                          refresh_s=settings.refresh_s)
        self.templates.env.filters["age"] = age_text

    def close(self) -> None:
        self.closing.set()
        self.login_refusals.flush()
        self.throttle.close()
        self.accounts.close()
        self.audit.close()
        self.ledger.close()

    async def read(self, work: Callable[[Ledger], T]) -> T:
        """Run `work(ledger)` in a worker thread, one at a time (the back-ends keep one connection)."""
        def locked() -> T:
            with self._ledger_lock:
                return work(self.ledger)
        return await run_in_threadpool(locked)

    async def queue_command(self, site: str, session: Session, command: str, fields: dict[str, Any],
                            reason: str, also: Callable[[Ledger, str], None] | None = None) -> str:
        """A downlink command to a site, queued in the ledger (the duties-lease holder
        publishes it once) with `also` run in the same call on its id (the request it
        answers); returns the command's id."""
        command_id = new_id()
        body = json.dumps({"command": command, "id": command_id, **fields, "reason": reason}, separators=(",", ":"))

        def queue(ledger: Ledger) -> None:
            if also is not None:
                also(ledger, command_id)
            ledger.queue_command(command_id, site, body, session.user.username)

        await self.read(queue)
        return command_id

    def record(self, session: Session | None, action: str, outcome: str, reason: str = "",
               details: dict[str, Any] | None = None) -> None:
        record_action(self.counters, self.audit, session, action, outcome, reason, details, event="rau_console_action")


def console_of(request: Request) -> RauConsole:
    return request.app.state.console


def session_of(request: Request) -> Session | None:
    return session_in(request, console_of(request).accounts, COOKIE)


def client_of(request: Request) -> str:
    return client_address_of(request, console_of(request).settings.trusted_proxies)


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS: our own listener, or a trusted proxy's."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else "-"
    trusted = console_of(request).settings.trusted_proxies
    return forwarded_https(peer, request.headers.get("x-forwarded-proto", ""), trusted)


def now() -> datetime:
    return datetime.now(UTC)


def render_page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    console = console_of(request)
    context = {"session": session_of(request), **context}
    return console.templates.TemplateResponse(request, name, context, status_code=status_code)


def to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def refused(request: Request, session: Session | None, action: str, reason: str, status_code: int,
            details: dict[str, Any] | None = None) -> Response:
    console_of(request).record(session, action, "refused", reason, details)
    return render_page(request, "refused.html", {"reason": reason}, status_code=status_code)


async def guard(request: Request, action: str, details: dict[str, Any] | None = None):
    """Session, CSRF and role for a POST; returns (session, form) or a refusal response."""
    session = session_of(request)
    form = await request.form()
    if session is None:
        console_of(request).record(None, action, "refused", "not logged in", details)
        return to_login(request)
    if not csrf_ok(session, form.get("csrf")):
        return refused(request, session, action, "the form's security token is missing or stale; reload the page",
                       403, details)
    if not allowed(session.user.role, action):
        return refused(request, session, action, f"a {ROLE_LABELS[session.user.role].lower()} may not do this",
                       403, details)
    return session, form


def not_found(request: Request, what: str = "no such page") -> Response:
    return render_page(request, "refused.html", {"reason": what}, status_code=404)


def trusted_networks(texts: list[str]) -> list[Network]:
    return [ipaddress.ip_network(t, strict=False) for t in texts]
