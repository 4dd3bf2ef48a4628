"""Logging in to the RAU console in HTTP tests, and reading its audit log."""

from __future__ import annotations

from typing import Any

from testkit.console_rig import csrf_of


def log_in(client: Any, username: str, password: str, page: str) -> str:
    """Log `username` in afresh (other cookies dropped); the CSRF token `page` carries."""
    client.cookies.clear()
    r = client.post("/login", data={"username": username, "password": password, "next": "/"})
    assert r.status_code == 303, r.text
    return csrf_of(client.get(page).text)


def audit(app: Any, action: str, limit: int = 50) -> list[Any]:
    """The console's newest audit entries for `action`."""
    return app.state.console.audit.entries(limit, action)
