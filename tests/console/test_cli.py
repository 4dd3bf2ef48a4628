"""The console's commands: adding users and verifying the audit chain."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from edge_agent.console.auth import Accounts
from edge_agent.console.cli import audit, console
from edge_agent.web.audit import AuditLog


def test_adduser_hashes_the_password_and_the_user_can_log_in(tmp_path):
    db = tmp_path / "console.db"
    result = CliRunner().invoke(console, ["adduser", "--db", str(db), "--role", "officer", "--password-stdin", "olga"],
                                input="a long enough secret\n")
    assert result.exit_code == 0, result.output
    accounts = Accounts(db)
    assert accounts.authenticate("olga", "a long enough secret").role == "officer"
    assert accounts.authenticate("olga", "wrong") is None
    accounts.close()
    again = CliRunner().invoke(console, ["adduser", "--db", str(db), "--role", "viewer", "--password-stdin", "olga"],
                               input="another long secret\n")
    assert again.exit_code != 0 and "exists" in again.output
    short = CliRunner().invoke(console, ["adduser", "--db", str(db), "--role", "viewer", "--password-stdin", "vera"],
                               input="short\n")
    assert short.exit_code != 0 and "password" in short.output


def test_audit_verify_passes_an_intact_chain_and_fails_an_edited_one(tmp_path):
    db = tmp_path / "console.db"
    log = AuditLog(db)
    for n in range(5):
        log.append("olga", "officer", "release", "done", f"reason {n}", {"lane": "L1"})
    log.close()
    ok = CliRunner().invoke(audit, ["verify", "--db", str(db), "--local-only"])
    assert ok.exit_code == 0 and "intact, 5 entries" in ok.output
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET user = 'someone' WHERE seq = 3")
    conn.commit()
    conn.close()
    bad = CliRunner().invoke(audit, ["verify", "--db", str(db)])
    assert bad.exit_code == 1 and "entry 3" in bad.output


def test_audit_verify_finds_a_removed_entry(tmp_path):
    db = tmp_path / "console.db"
    log = AuditLog(db)
    for n in range(4):
        log.append("hana", "head_of_office", "rechannel_decide", "done", f"r{n}")
    log.close()
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.commit()
    conn.close()
    bad = CliRunner().invoke(audit, ["verify", "--db", str(db)])
    assert bad.exit_code == 1 and "missing" in bad.output


def test_a_disabled_user_is_logged_out_at_once_and_cannot_log_in_until_enabled(client, app, agent):
    """A user who leaves the service (or lost a badge) is disabled: the open session in
    the booth ends at the next request, not at the end of the shift."""
    from testkit.console_rig import PASSWORD, login

    db = agent.data_dir / "console.db"
    login(client, "olga")
    assert client.get("/lanes/L1").status_code == 200
    result = CliRunner().invoke(console, ["disable", "--db", str(db), "--reason", "left the service", "olga"])
    assert result.exit_code == 0, result.output
    assert "disabled, 1 session(s) ended" in result.output
    assert client.get("/lanes/L1").status_code == 303  # back to the login page
    r = client.post("/login", data={"username": "olga", "password": PASSWORD, "next": "/"})
    assert r.status_code != 303  # refused like a wrong password
    listed = CliRunner().invoke(console, ["users", "--db", str(db)])
    assert "olga" in listed.output and "(disabled)" in listed.output
    enabled = CliRunner().invoke(console, ["enable", "--db", str(db), "--reason", "back from leave", "olga"])
    assert enabled.exit_code == 0, enabled.output
    login(client, "olga")
    assert client.get("/lanes/L1").status_code == 200
    log = AuditLog(db)
    rows = [(e.action, e.reason) for e in reversed(log.entries()) if e.action.startswith("user_")]
    log.close()
    assert rows == [("user_disabled", "left the service"), ("user_enabled", "back from leave")]
    unknown = CliRunner().invoke(console, ["disable", "--db", str(db), "--reason", "x", "nobody"])
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output
