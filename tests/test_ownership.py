"""What a technician's sudo command creates in the data directory stays writable by the
service's user: the console's users, the root of trust, imported indicator sets."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.console.cli import audit, console
from edge_agent.local_rules.cli import indicators
from edge_agent.ownership import new_owner
from edge_agent.store import Store
from edge_agent.sync.cli import sync
from edge_agent.sync.trust import generate_key, make_root, sign
from edge_agent.web.audit import AuditLog

ROOT = Path(__file__).resolve().parents[1]
SERVICE = (65534, 65534)  # nobody:nogroup, standing in for the edge-agent user


@pytest.mark.parametrize(("euid", "directory", "owner"), [
    (0, (999, 998), (999, 998)),  # root made it where the service lives: the service's
    (0, (0, 0), None),  # root made it in a root directory: leave it
    (1000, (999, 998), None),  # not root: the file is already its maker's, who owns it rightly
])
def test_who_gets_a_created_file(euid, directory, owner):
    assert new_owner(euid, *directory) == owner


def test_set_up_commands_leave_the_service_owning_what_they_create(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    # As root (a technician with sudo) the files must go to the directory's owner; as
    # anyone else they are simply the maker's, as the directory is.
    service = SERVICE if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(data, *service)
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "xk-own"\nregion = "xk-rs"\ndata_dir = "{data}"\n[[lanes]]\nid = "L1"\n')

    added = CliRunner().invoke(console, ["adduser", "--config", str(site), "--role", "officer", "--password-stdin",
                                         "olga"], input="a long enough secret\n")
    assert added.exit_code == 0, added.output
    root_key, root_public = generate_key()
    _, indicator_public = generate_key()
    root_doc = sign(make_root(version=1, expires=datetime.now(UTC) + timedelta(days=30), root_keys=[root_public],
                              indicator_keys=[indicator_public]), [root_key])
    (tmp_path / "root.json").write_text(json.dumps(root_doc))
    installed = CliRunner().invoke(sync, ["install-root", str(tmp_path / "root.json"), "--config", str(site)])
    assert installed.exit_code == 0, installed.output
    imported = CliRunner().invoke(indicators, ["import", str(ROOT / "firmware_config" / "indicators" / "demo.json"),
                                               "--config", str(site)])
    assert imported.exit_code == 0, imported.output

    created = [p for p in data.rglob("*")]
    assert {p.name for p in created} >= {"console.db", "trust", "root.json", "indicators", "demo.json"}
    wrong = [str(p) for p in created if (p.stat().st_uid, p.stat().st_gid) != service]
    assert wrong == [], f"not the service's: {wrong}"


def test_reading_commands_leave_no_sidecar_files_the_service_cannot_open(tmp_path):
    """A WAL database read while the service is stopped gets -wal and -shm files; made by
    root they would keep the service from opening its own database when it starts."""
    data = tmp_path / "data"
    data.mkdir()
    service = SERVICE if os.geteuid() == 0 else (os.getuid(), os.getgid())
    Store.open(data / "agent.db").close()
    log = AuditLog(data / "console.db")
    log.append("olga", "officer", "release", "done", "r")
    log.close()
    for path in (data, *data.iterdir()):
        os.chown(path, *service)
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "xk-own"\nregion = "xk-rs"\ndata_dir = "{data}"\n[[lanes]]\nid = "L1"\n')

    status = CliRunner().invoke(main, ["status", "--config", str(site)])
    assert status.exit_code == 0, status.output
    verified = CliRunner().invoke(audit, ["verify", "--config", str(site), "--local-only"])
    assert verified.exit_code == 0, verified.output

    sidecars = {p.name for p in data.iterdir()} - {"agent.db", "console.db"}
    assert sidecars >= {"agent.db-wal", "agent.db-shm", "console.db-wal", "console.db-shm"}, "read as WAL"
    wrong = [p.name for p in data.iterdir() if (p.stat().st_uid, p.stat().st_gid) != service]
    assert wrong == [], f"not the service's: {wrong}"
