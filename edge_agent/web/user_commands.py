"""The user-management steps both consoles' commands take (`console adduser|users|disable|
enable` for the officers', `central console ...` for the RAU's): each console brings its
own `Accounts` (its roles) and the role its command acts as; the steps, the audit entries
and the messages are one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edge_agent.web.audit import AuditLog

AccountsFactory = Callable[[Path], Any]


def read_password(from_stdin: bool) -> str:
    """From standard input (scripts) or a hidden, confirmed prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def save_user(accounts_of: AccountsFactory, path: Path, acting_role: str, username: str, role: str,
              password: str, full_name: str, replace: bool, *, saved: Callable[[Path], None] = lambda p: None) -> None:
    accounts = accounts_of(path)
    try:
        accounts.add_user(username, role, password, full_name, replace=replace)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    finally:
        accounts.close()
    _audit(path, acting_role, "user_saved", "", {"username": username, "role": role, "replaced": replace})
    saved(path)
    click.echo(f"user {username} ({role}) saved in {path}")


def list_users(accounts_of: AccountsFactory, path: Path, role_width: int = 20) -> None:
    accounts = accounts_of(path)
    try:
        for user in accounts.users(include_disabled=True):
            mark = "  (disabled)" if user.disabled else ""
            click.echo(f"{user.username:<20} {user.role.value:<{role_width}} {user.full_name}{mark}")
    finally:
        accounts.close()


def set_disabled(accounts_of: AccountsFactory, path: Path, acting_role: str, username: str, disabled: bool,
                 reason: str, *, saved: Callable[[Path], None] = lambda p: None) -> None:
    accounts = accounts_of(path)
    try:
        ended = accounts.set_disabled(username, disabled)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    finally:
        accounts.close()
    _audit(path, acting_role, "user_disabled" if disabled else "user_enabled", reason,
           {"username": username, "sessions_ended": ended})
    saved(path)
    state = f"disabled, {ended} session(s) ended" if disabled else "enabled"
    click.echo(f"user {username} {state}")


def _audit(path: Path, acting_role: str, action: str, reason: str, details: dict[str, Any]) -> None:
    audit = AuditLog(path)
    try:
        audit.append("(cli)", acting_role, action, "done", reason, details)
    finally:
        audit.close()
