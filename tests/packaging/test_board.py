"""The Debian package on a board: installed by dpkg into a throwaway root with no network,
upgraded, rolled back, refused a downgrade, removed and purged.

The service manager is fake_systemctl.py, which runs the installed agent itself with a
real NOTIFY_SOCKET; the maintainer scripts reach it through $EDGE_AGENT_SYSTEMCTL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

from edge_agent.config import parse_config
from edge_agent.site import secret_problems
from edge_agent.store import MIGRATIONS

SCHEMA = len(MIGRATIONS)
RUNNABLE_SITE = """\
# this site's own file: an upgrade must leave it byte for byte
[site]
id = "xk-package"
region = "xk-rs"
data_dir = "/var/lib/edge-agent"
[[lanes]]
id = "L1"
[lanes.gate]
pin_factory = "mock"
[policy]
random_secret = "package-test-secret-0123456789"
[metrics]
enabled = false
"""


def version_of(deb: Path) -> str:
    return deb.name.split("_")[1]


def schema(database: Path) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def sources(database: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT source FROM events WHERE kind = 'marker'")]
    finally:
        conn.close()


def running_release(board) -> str:
    """The release the service's process runs from (its interpreter is releases/V/bin/python)."""
    pid = int((board.state / "pid").read_text())
    interpreter = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    return Path(interpreter).parents[1].name


def test_installs_without_network_then_removes_and_purges(board, amd64_deb, shell_env, make_root, tmp_path):
    root = board.root
    by_hand = root / "opt/edge-agent/venv"  # the board had the agent installed by hand before
    by_hand.mkdir(parents=True)
    (by_hand / "pyvenv.cfg").write_text("home = /usr/bin\n")
    installed = board.dpkg("-i", str(amd64_deb))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = version_of(amd64_deb)
    assert board.installed_version() == f"{version} ii"
    assert board.current_release() == version
    assert (root / "opt/edge-agent/venv.before-package/pyvenv.cfg").read_text() == "home = /usr/bin\n"
    assert "not started (it was not running)" in installed.stdout  # a first installation waits for its site file

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "--net", board.program(), *args], cwd=tmp_path, env=shell_env,
                              capture_output=True, text=True, timeout=120, check=False)

    helped = run("--help")
    assert helped.returncode == 0 and "check-config" in helped.stdout, helped.stderr
    # The service user, directories, unit and udev rules, by `edge-agent install`.
    passwd = (root / "etc/passwd").read_text()
    assert "edge-agent:x:" in passwd and ":/var/lib/edge-agent:/usr/sbin/nologin" in passwd
    assert "ExecStart=/opt/edge-agent/venv/bin/edge-agent run --config /etc/edge-agent/site.toml" in (
        root / "etc/systemd/system/edge-agent.service").read_text()
    assert (root / "etc/systemd/system/multi-user.target.wants/edge-agent.service").is_symlink()
    assert (root / "etc/udev/rules.d/70-edge-agent.rules").is_file()
    assert stat.S_IMODE((root / "var/lib/edge-agent").stat().st_mode) == 0o750
    # check-config on the shipped example, as install wrote it with this site's own secret.
    site = root / "etc/edge-agent/site.toml"
    assert stat.S_IMODE(site.stat().st_mode) == 0o640
    assert secret_problems(parse_config(site.read_text())) == []
    checked = run("check-config", str(site))
    assert checked.returncode == 0 and "ok: site xk-merdare" in checked.stdout, checked.stdout + checked.stderr
    image = make_root(tmp_path / "image")
    laid_out = run("install", "--root", str(image))
    assert laid_out.returncode == 0, laid_out.stdout + laid_out.stderr
    assert (image / "etc/edge-agent/pinmaps/rpi5.toml").is_file()

    removed = board.dpkg("--remove", "edge-agent")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "opt/edge-agent").exists()
    assert not (root / "etc/systemd/system/edge-agent.service").exists()
    assert not (root / "etc/udev/rules.d/70-edge-agent.rules").exists()
    assert site.is_file()  # configuration stays until purge
    purged = board.dpkg("--purge", "edge-agent")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/edge-agent").exists()
    assert (root / "var/lib/edge-agent").is_dir()  # customs records: only a person deletes them
    assert "kept /var/lib/edge-agent" in purged.stderr


def test_an_upgrade_keeps_site_and_data_migrates_and_restarts(board, amd64_deb, amd64_next_deb,
                                                              previous_schema_database):
    assert board.dpkg("-i", str(amd64_deb)).returncode == 0
    site = board.root / "etc/edge-agent/site.toml"
    site.write_text(RUNNABLE_SITE)
    data = board.root / "var/lib/edge-agent"
    database = previous_schema_database(data / "agent.db")
    (data / "evidence").mkdir()
    (data / "evidence/crossing.jpg").write_bytes(b"\xff\xd8 a picture")
    # The installed agent starts on the previous version's database: migrated before READY.
    assert board.service("start"), (board.state / "agent.log").read_text()
    assert schema(database) == SCHEMA and sources(database) == ["previous version"]
    before = int((board.state / "pid").read_text())

    upgraded = board.dpkg("-i", str(amd64_next_deb))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    new = version_of(amd64_next_deb)
    assert f"edge-agent {new} is running" in upgraded.stdout
    assert board.installed_version() == f"{new} ii"
    assert board.current_release() == new and board.service("is-active")
    assert int((board.state / "pid").read_text()) != before and running_release(board) == new
    assert site.read_text() == RUNNABLE_SITE
    assert sources(database) == ["previous version"] and schema(database) == SCHEMA
    assert (data / "evidence/crossing.jpg").read_bytes() == b"\xff\xd8 a picture"
    # the previous release stays, to go back to
    assert sorted(p.name for p in (board.root / "opt/edge-agent/releases").iterdir()) == sorted(
        [version_of(amd64_deb), new])


def broken_release(board, name: str, working: str, database: Path) -> None:
    """A release whose agent migrates the database to a schema of its own, then dies
    before READY; its `install` is the working release's."""
    release = board.root / "opt/edge-agent/releases" / name
    (release / "bin").mkdir(parents=True)
    program = release / "bin/edge-agent"
    program.write_text(f"""#!/bin/sh
if [ "$1" = install ]; then exec {board.root}/opt/edge-agent/releases/{working}/bin/edge-agent "$@"; fi
/usr/bin/python3 -c 'import sqlite3; c = sqlite3.connect("{database}"); c.execute("PRAGMA user_version={SCHEMA + 1}")'
echo "Traceback: the new version cannot start" >&2
exit 1
""")
    program.chmod(0o755)
    (release / "edge-agent-release.json").write_text(json.dumps({"version": name, "schema": SCHEMA + 1}))


def test_a_version_that_does_not_reach_ready_is_rolled_back_with_its_database(board, amd64_deb,
                                                                               previous_schema_database):
    assert board.dpkg("-i", str(amd64_deb)).returncode == 0
    working = version_of(amd64_deb)
    (board.root / "etc/edge-agent/site.toml").write_text(RUNNABLE_SITE)
    database = previous_schema_database(board.root / "var/lib/edge-agent/agent.db")
    assert board.service("start")
    broken_release(board, "9.9.9", working, database)

    switched = subprocess.run(["/usr/bin/python3", str(board.root / "usr/lib/edge-agent/switch-release"), "9.9.9"],
                              env={**board.env, "DPKG_ROOT": str(board.root)}, capture_output=True, text=True,
                              timeout=300, check=False)
    assert switched.returncode == 1, switched.stdout + switched.stderr
    assert "edge-agent 9.9.9 did not report READY within its start timeout" in switched.stdout
    assert f"went back to {working}, which is running again" in switched.stderr
    assert board.current_release() == working
    assert board.service("is-active") and running_release(board) == working
    # The copy taken before the switch is back: the schema the working version knows, the rows.
    assert schema(database) == SCHEMA and sources(database) == ["previous version"]
    assert "the new version cannot start" in (board.state / "agent.log").read_text()


def test_a_downgrade_refuses_a_database_with_a_newer_schema(board, amd64_deb, amd64_next_deb):
    assert board.dpkg("-i", str(amd64_next_deb)).returncode == 0
    database = board.root / "var/lib/edge-agent/agent.db"
    conn = sqlite3.connect(database)
    conn.execute(f"PRAGMA user_version={SCHEMA + 1}")  # as a later version's migration left it
    conn.close()
    before = database.read_bytes()

    refused = board.dpkg("-i", str(amd64_deb))
    assert refused.returncode != 0
    older, newer = version_of(amd64_deb), version_of(amd64_next_deb)
    assert (f"edge-agent {older} knows database schema {SCHEMA}, but /" in refused.stderr
            and f"agent.db is at schema {SCHEMA + 1}, written by a newer version: refusing to install "
                "an older agent on it" in refused.stderr), refused.stderr
    assert board.installed_version() == f"{newer} ii"
    assert board.current_release() == newer
    assert not (board.root / "opt/edge-agent/releases" / older).exists()
    assert database.read_bytes() == before
    assert os.listdir(database.parent) == ["agent.db"]
