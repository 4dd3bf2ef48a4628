"""`edge-agent console ...` and `edge-agent audit verify`.

    edge-agent console adduser --config SITE.toml --role officer olga     (asks for the password)
    edge-agent console users --config SITE.toml
    edge-agent console serve --config SITE.toml                           (the agent with its console)
    edge-agent audit verify --config SITE.toml --central-db central.db    (exit 1 broken, 3 local-only)
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError
from edge_agent.ownership import give_to_directory_owner

ROLES = ("officer", "head_of_office", "local_risk_analyst", "technician", "viewer")


def _config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        raise click.ClickException(f"{err.source}: configuration refused: " + "; ".join(err.problems)) from err


def _db_file(config_path: Path | None, db_path: Path | None) -> Path:
    if db_path is not None:
        return db_path
    if config_path is None:
        raise click.UsageError("give --config SITE.toml or --db PATH")
    config = _config(config_path)
    return config.console.db_file or Path(config.site.data_dir) / "console.db"


_config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                              help="The site file (gives the data directory).")
_db_option = click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
                          help="The console's database (default <data_dir>/console.db).")


@click.group()
def console() -> None:
    """The officers' lane console: users and the web server."""


@console.command("adduser")
@_config_option
@_db_option
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "full_name", default="", help="Full name, shown in the audit log view.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--replace", is_flag=True, help="Reset an existing user's role and password (ends their sessions).")
@click.argument("username")
def adduser(config_path, db_path, role, full_name, password_stdin, replace, username) -> None:
    """Create a console user; the password is hashed with Argon2id."""
    from edge_agent.console.auth import Accounts
    from edge_agent.web.user_commands import read_password, save_user

    path = _db_file(config_path, db_path)
    save_user(Accounts, path, "technician", username, role, read_password(password_stdin), full_name, replace,
              saved=give_to_directory_owner)


@console.command("users")
@_config_option
@_db_option
def users(config_path, db_path) -> None:
    """List the console's users and roles (disabled ones marked)."""
    from edge_agent.console.auth import Accounts
    from edge_agent.web.user_commands import list_users

    list_users(Accounts, _db_file(config_path, db_path))


@console.command("disable")
@_config_option
@_db_option
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.argument("username")
def disable(config_path, db_path, reason, username) -> None:
    """Disable a user: no more logins, and their open sessions end at once."""
    _set_disabled(_db_file(config_path, db_path), username, True, reason)


@console.command("enable")
@_config_option
@_db_option
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.argument("username")
def enable(config_path, db_path, reason, username) -> None:
    """Enable a disabled user again (they log in anew)."""
    _set_disabled(_db_file(config_path, db_path), username, False, reason)


def _set_disabled(path: Path, username: str, disabled: bool, reason: str) -> None:
    from edge_agent.console.auth import Accounts
    from edge_agent.web.user_commands import set_disabled

    set_disabled(Accounts, path, "technician", username, disabled, reason, saved=give_to_directory_owner)


@console.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", help="Bind address (default: the site file's, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: the site file's, 8080).")
def serve(config_path, host, port) -> None:
    """Run the agent with its console until SIGTERM or Ctrl-C."""
    from edge_agent.agent import Agent
    from edge_agent.console import start_console

    config = _config(config_path)
    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    console_config = config.console.model_copy(update=updates)
    agent = Agent(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    try:
        handle = start_console(agent, console_config)
        click.echo(f"console at {handle.url}")
        try:
            while not stop.wait(1.0):
                pass
        finally:
            handle.stop()
    finally:
        agent.stop()


AUDIT_LOCAL_ONLY = ("LOCAL-ONLY: not checked against the anchors at the RAU. Whoever rewrote this log and the"
                    " site's own anchors would pass. Give --central-db (the hub's central.db, or a copy) or"
                    " --local-only to accept this.")


@click.group()
def audit() -> None:
    """The console's hash-chained audit log."""


@audit.command("verify")
@_config_option
@_db_option
@click.option("--central-db", "central_db", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Check against the anchors the RAU's hub stored (its central.db) instead of this site's own.")
@click.option("--site", "site_id", help="The site's id in --central-db (default: the site file's).")
@click.option("--local-only", is_flag=True,
              help="Accept a result not checked against the RAU's anchors (no --central-db): exit 0 if it holds.")
def verify_command(config_path, db_path, central_db, site_id, local_only) -> None:
    """Check every link of the audit chain, and that the log still reaches the newest
    entry anchored at the RAU's hub (with --central-db) or, locally, in the customs
    database (with --config); exit 1 at the first problem.

    Only the hub's anchors are out of a forger's reach: one who rewrote the log and the
    site's own anchors passes every local check. Without --central-db the result is
    LOCAL-ONLY and exits 3 unless --local-only accepts it."""
    from edge_agent.console.anchoring import central_anchor, latest_anchor
    from edge_agent.web.audit import verify

    path = _db_file(config_path, db_path)
    anchor, source = None, ""
    if central_db is not None:
        site_id = site_id or (_config(config_path).site.id if config_path is not None else None)
        if not site_id:
            raise click.UsageError("--central-db needs --site ID (or --config SITE.toml)")
        anchor, source = central_anchor(central_db, site_id), f"the hub's {central_db}"
    elif config_path is not None:
        anchor, source = latest_anchor(Path(_config(config_path).site.data_dir) / "agent.db"), "the customs database"
    result = verify(path, anchor)
    if result.ok:
        if anchor is not None:
            checked = f"; reaches entry {anchor.seq}, anchored at {anchor.at} in {source}"
        elif not source:
            checked = "; not checked against an anchor (give --config or --central-db)"
        else:
            checked = f"; no anchor in {source} yet"
        click.echo(f"{path}: audit log intact, {result.entries} entries{checked}")
        if central_db is None or anchor is None:  # the hub holding no anchor proves nothing either
            click.echo(AUDIT_LOCAL_ONLY, err=True)
            if not local_only:
                sys.exit(3)
        return
    where = f"entry {result.bad_seq}: " if result.bad_seq is not None else ""
    click.echo(f"{path}: audit log BROKEN after {result.entries} good entries: {where}{result.problem}", err=True)
    sys.exit(1)
