"""The Debian packages, built once per session by packaging/build.py as `make deb` builds
them, and throwaway Debian roots to install them into with the real dpkg.

dpkg runs with `--root` and `--force-script-chrootless`: the maintainer scripts run on
this host with DPKG_ROOT set, the way images are prepared, and the package's
dependencies (python3, passwd, systemd) are this host's (`--force-depends`, since the
throwaway root's own dpkg database is empty). Every dpkg call runs in a new network
namespace with no interface up: what installs, installs without a network.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils

from edge_agent.store import MIGRATIONS

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "packaging" / "build.py"
FAKE_SYSTEMCTL = Path(__file__).with_name("fake_systemctl.py")
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
NEXT_VERSION = f"{VERSION}+2"  # a later Debian version of the same tree, for upgrades



def build_deb(out: Path, arch: str, version: str = VERSION) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, str(BUILD), "deb", "--arch", arch, "--out", str(out), "--no-lintian",
                             "--version", version], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    deb = out / f"edge-agent_{version}_{arch}.deb"
    assert deb.is_file(), result.stdout
    return deb


@pytest.fixture(scope="session")
def amd64_deb(tmp_path_factory) -> Path:
    return build_deb(tmp_path_factory.mktemp("deb-amd64"), "amd64")


@pytest.fixture(scope="session")
def amd64_next_deb(tmp_path_factory) -> Path:
    return build_deb(tmp_path_factory.mktemp("deb-amd64-next"), "amd64", NEXT_VERSION)


@pytest.fixture(scope="session")
def arm64_deb(tmp_path_factory) -> Path:
    return build_deb(tmp_path_factory.mktemp("deb-arm64"), "arm64")


@pytest.fixture(scope="session")
def wheelhouse(amd64_deb, tmp_path_factory) -> Path:
    """The amd64 package's wheels, as the board gets them."""
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(["dpkg-deb", "-x", str(amd64_deb), str(out)], check=True)
    return out / "usr/share/edge-agent/wheelhouse"


def debian_root(root: Path) -> Path:
    """A minimal Debian tree: account files, /etc/debian_version and an empty dpkg database."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "debian_version").write_text("12.7\n")
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o600)
    for path in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"):
        (root / path).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    return root


@dataclass
class Board:
    """A throwaway root with its service manager (fake_systemctl.py) and dpkg."""

    root: Path
    state: Path

    @property
    def systemctl(self) -> list[str]:
        return [sys.executable, str(FAKE_SYSTEMCTL), "--root", str(self.root), "--state", str(self.state)]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "EDGE_AGENT_SYSTEMCTL": shlex.join(self.systemctl)}

    def dpkg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "--net", "dpkg", f"--root={self.root}", "--force-script-chrootless",
                               "--force-depends", *args], capture_output=True, text=True, env=self.env, check=False)

    def service(self, verb: str) -> bool:
        return subprocess.run([*self.systemctl, verb, "edge-agent.service"], check=False).returncode == 0

    def installed_version(self) -> str:
        result = subprocess.run(["dpkg-query", f"--root={self.root}", "-W", "-f=${Version} ${db:Status-Abbrev}",
                                 "edge-agent"], capture_output=True, text=True, check=False)
        return result.stdout.strip()

    def current_release(self) -> str:
        return os.readlink(self.root / "opt/edge-agent/venv").rsplit("/", 1)[-1]

    def program(self) -> str:
        return str(self.root / "opt/edge-agent/venv/bin/edge-agent")


@pytest.fixture
def board(tmp_path):
    board = Board(debian_root(tmp_path / "root"), tmp_path / "service")
    yield board
    board.service("stop")


@pytest.fixture
def make_root():
    """debian_root(path), for a test that needs a bare tree of its own."""
    return debian_root


@pytest.fixture(scope="session")
def shell_env() -> dict[str, str]:
    """The environment of a technician's shell: nothing pointing into this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return env


MARKER = {"id": "01PREVIOUS", "kind": "marker", "lane": "L1", "at": "2026-01-01T00:00:00.000+00:00",
          "source": "previous version", "body": "{}"}


def _database_at_previous_schema(path: Path) -> Path:
    """What the version before this one left: every migration but the last, and a row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    for migration in MIGRATIONS[:-1]:
        migration(db)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) - 1}")
    db.table("events").insert(MARKER)
    db.close()
    return path



@pytest.fixture(scope="session")
def previous_schema_database():
    """database_at_previous_schema(path): the database the version before this one left."""
    return _database_at_previous_schema
