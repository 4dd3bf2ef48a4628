"""The officers' console's roles and what each may do; accounts, sessions and CSRF
tokens themselves are the shared web room's (edge_agent/web/accounts.py).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from edge_agent.web import accounts
from edge_agent.web.accounts import Session, User, csrf_ok

__all__ = ["PERMISSIONS", "ROLE_LABELS", "Accounts", "Role", "Session", "User", "allowed", "csrf_ok"]


class Role(StrEnum):
    OFFICER = "officer"
    HEAD_OF_OFFICE = "head_of_office"
    LOCAL_RISK_ANALYST = "local_risk_analyst"
    TECHNICIAN = "technician"
    VIEWER = "viewer"


ROLE_LABELS = {
    Role.OFFICER: "Officer",
    Role.HEAD_OF_OFFICE: "Head of office",
    Role.LOCAL_RISK_ANALYST: "Local risk analyst",
    Role.TECHNICIAN: "Technician",
    Role.VIEWER: "Viewer",
}

# Who may do what. Every role may look at the lanes; only these may act.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "plate": frozenset({Role.OFFICER, Role.HEAD_OF_OFFICE}),
    "release": frozenset({Role.OFFICER, Role.HEAD_OF_OFFICE}),
    "control_act": frozenset({Role.OFFICER, Role.HEAD_OF_OFFICE}),
    "rechannel_request": frozenset({Role.OFFICER, Role.HEAD_OF_OFFICE}),
    "rechannel_decide": frozenset({Role.HEAD_OF_OFFICE, Role.LOCAL_RISK_ANALYST}),
    "profiles_edit": frozenset({Role.LOCAL_RISK_ANALYST}),
    "storage_hold": frozenset({Role.HEAD_OF_OFFICE}),
    "audit_view": frozenset({Role.HEAD_OF_OFFICE, Role.TECHNICIAN, Role.LOCAL_RISK_ANALYST}),
}


def allowed(role: str, action: str) -> bool:
    try:
        return Role(role) in PERMISSIONS.get(action, frozenset())
    except ValueError:
        return False


class Accounts(accounts.Accounts):
    """The officers' console's users and sessions (console.db)."""

    def __init__(self, path: str | Path, session_ttl_s: float = 8 * 3600.0) -> None:
        super().__init__(path, Role, session_ttl_s)
