"""The RAU console's roles and what each may do (issue 16): analysts re-route trucks, the
monitoring office only watches, the administrator keeps the users and reads the audit log.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from edge_agent.web import accounts


class Role(StrEnum):
    ANALYST = "analyst"
    SENIOR_ANALYST = "senior_analyst"
    MONITORING = "monitoring"
    ADMINISTRATOR = "administrator"


ROLE_LABELS = {
    Role.ANALYST: "RAU analyst",
    Role.SENIOR_ANALYST: "Senior analyst",
    Role.MONITORING: "Monitoring office",
    Role.ADMINISTRATOR: "Administrator",
}

# Every role may look; only these may act.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "raise_channel": frozenset({Role.ANALYST, Role.SENIOR_ANALYST}),
    "audit_view": frozenset({Role.SENIOR_ANALYST, Role.ADMINISTRATOR}),
    # indicator authoring: analysts draft and submit, a senior analyst (another person) approves
    "indicator_draft": frozenset({Role.ANALYST, Role.SENIOR_ANALYST}),
    "indicator_submit": frozenset({Role.ANALYST, Role.SENIOR_ANALYST}),
    "indicator_approve": frozenset({Role.SENIOR_ANALYST}),
    # the users page (issue 16, item 7)
    "users_view": frozenset({Role.ADMINISTRATOR}),
    "user_add": frozenset({Role.ADMINISTRATOR}),
    "user_disable": frozenset({Role.ADMINISTRATOR}),
    "user_enable": frozenset({Role.ADMINISTRATOR}),
    "user_password": frozenset({Role.ADMINISTRATOR}),
    # evidence on demand (console/evidence.py)
    "evidence_request": frozenset({Role.ANALYST, Role.SENIOR_ANALYST}),
    "evidence_view": frozenset({Role.ANALYST, Role.SENIOR_ANALYST, Role.MONITORING}),
    "evidence_export": frozenset({Role.ANALYST, Role.SENIOR_ANALYST}),
    # CCTV snapshots on demand (console/cctv.py): watching is the Monitoring Office's work too
    "cctv_snapshot": frozenset({Role.ANALYST, Role.SENIOR_ANALYST, Role.MONITORING}),
}


def allowed(role: str, action: str) -> bool:
    try:
        return Role(role) in PERMISSIONS.get(action, frozenset())
    except ValueError:
        return False


class Accounts(accounts.Accounts):
    """The RAU console's users and sessions (rau_console.db)."""

    def __init__(self, path: str | Path, session_ttl_s: float = 8 * 3600.0) -> None:
        super().__init__(path, Role, session_ttl_s)
