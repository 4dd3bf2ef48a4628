"""What both consoles' handlers ask of a request, and how they record an action.

The officers' console and the RAU's console each keep their accounts, audit log and
counters; these functions are the few lines of handling they would otherwise each
write: whose session a request carries, which client sent it, and what an action
leaves behind (a count, an audit entry, and a warning when it was not done).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.requests import Request

from edge_agent.web.accounts import Session
from edge_agent.web.audit import AuditLog
from edge_agent.web.forwarded import Network, client_address

log = logging.getLogger(__name__)


class SessionKeeper(Protocol):
    def session(self, token: str | None) -> Session | None: ...


def session_in(request: Request, accounts: SessionKeeper, cookie: str) -> Session | None:
    """The live session the request's cookie names, if any."""
    return accounts.session(request.cookies.get(cookie))


def client_address_of(request: Request, trusted_proxies: Sequence[Network]) -> str:
    """The client's address: the TCP peer, or what a configured trusted proxy forwarded."""
    peer = request.client.host if request.client else "-"
    return client_address(peer, request.headers.get("x-forwarded-for", ""), trusted_proxies)


def record_action(counters: Counter[str], audit: AuditLog, session: Session | None, action: str, outcome: str,
                  reason: str = "", details: dict[str, Any] | None = None, *, event: str) -> None:
    """An action's outcome counted by "action:outcome", appended to the audit log, and
    logged as `<event>_<outcome>` when it was not done."""
    user = session.user.username if session else "-"
    role = session.user.role.value if session else "-"
    counters[f"{action}:{outcome}"] += 1
    audit.append(user, role, action, outcome, reason, details)
    if outcome != "done":
        log.warning("%s_%s action=%s user=%s reason=%s", event, outcome, action, user, reason)
