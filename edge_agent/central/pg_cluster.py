"""A private PostgreSQL cluster on a Unix socket: for the tests and the fleet benchmark,
as `mosquitto.PrivateBroker` is for the broker.

initdb + pg_ctl in a directory of its own, no TCP listener (`listen_addresses = ''`),
trust authentication on the socket only. PostgreSQL refuses to run as root ("root"
execution of the PostgreSQL server is not permitted): started as root, the cluster runs
as an unprivileged user through `runuser` (`nobody` unless told otherwise) and lives
under /tmp, which that user can reach. Debian installs the server binaries in
/usr/lib/postgresql/<major>/bin, which is not on PATH; they are looked for there first.

    cluster = PrivateCluster().start()
    cluster.create_database("t1")
    Ledger(cluster.url("t1"))
    cluster.stop()          # and the directory is removed
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from edge_agent.errors import AgentError

log = logging.getLogger(__name__)


class ClusterUnavailable(AgentError, FileNotFoundError):
    """No PostgreSQL server binaries on this host, or the cluster would not start."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: Debian's newest, then PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


def _major(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


class PrivateCluster:
    def __init__(self, *, user: str = "nobody", durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self.user = user if os.geteuid() == 0 else ""
        self.durable = durable
        self.settings = dict(settings or {})
        self.root: Path | None = None

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={self.socket_dir}&user=postgres"

    def start(self) -> PrivateCluster:
        if self.bin_dir is None:
            raise ClusterUnavailable(
                "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin nor on PATH"
                " (Debian: apt-get install postgresql; `make test` installs it)")
        self.root = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        data = self.root / "data"
        self.socket_dir.mkdir()
        os.chmod(self.root, 0o755)
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  *([] if self.durable else ["--no-sync"]))
        options = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "shared_buffers": "128MB",
            **({} if self.durable else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(f"{k} = {v}" for k, v in options.items()) + "\n")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        log.info("postgres_started socket=%s durable=%s", self.socket_dir, self.durable)
        return self

    def create_database(self, name: str, template: str = "template1") -> str:
        """A new database (from `template`, which nobody may be connected to); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log_tail(self) -> str:
        path = self.root / "server.log" if self.root else None
        return path.read_text(errors="replace")[-2000:] if path and path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/", timeout=120)
        if done.returncode != 0:
            raise ClusterUnavailable(f"{program} failed: {done.stderr.strip()[-800:]} {self.log_tail()}")

    def __enter__(self) -> PrivateCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
