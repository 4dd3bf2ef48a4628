"""A service manager for edge-agent.service in a throwaway root, for switch-release's tests.

    fake_systemctl.py --root ROOT --state DIR {is-active [--quiet]|start|stop|reset-failed} edge-agent.service

It answers as systemctl does for a Type=notify unit: `start` runs the unit's ExecStart
(from ROOT/etc/systemd/system/edge-agent.service, the program taken from under ROOT)
with a real NOTIFY_SOCKET, returns 0 once the process sends READY=1, and 1 if it exits
first or the unit's TimeoutStartSec passes (the process is then killed). The agent
keeps running after `start` returns, as a service does. The site file is the root's
/etc/edge-agent/site.toml with its data_dir moved under ROOT, since the agent runs on
this host and not in a chroot. Its output goes to DIR/agent.log.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

UNIT = "etc/systemd/system/edge-agent.service"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("verb", choices=["is-active", "start", "stop", "reset-failed"])
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("unit")
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    if args.verb == "is-active":
        return 0 if running(args.state) else 3
    if args.verb == "stop":
        stop(args.state, unit_seconds(args.root, "TimeoutStopSec", 20))
        return 0
    if args.verb == "start":
        return 0 if running(args.state) or start(args.root, args.state) else 1
    return 0  # reset-failed: no start limit here


def start(root: Path, state: Path) -> bool:
    argv = shlex.split(unit_value(root, "ExecStart"))
    argv[0] = str(root) + argv[0]
    argv[argv.index("--config") + 1] = str(host_site_file(root, state))
    notify = state / "notify.sock"
    notify.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        log = open(state / "agent.log", "ab")  # noqa: SIM115 - the service keeps it after we return
        process = subprocess.Popen(argv, env={**os.environ, "NOTIFY_SOCKET": str(notify)}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + unit_seconds(root, "TimeoutStartSec", 90)
        while time.monotonic() < deadline:
            sock.settimeout(0.2)
            try:
                message = sock.recv(4096).decode()
            except TimeoutError:
                message = ""
            if "READY=1" in message.split("\n"):
                (state / "pid").write_text(str(process.pid))
                return True
            if process.poll() is not None:
                print(f"fake systemctl: {argv[0]} exited with {process.returncode} before READY", file=sys.stderr)
                return False
        print(f"fake systemctl: no READY from {argv[0]} in time", file=sys.stderr)
        process.kill()
        process.wait()
        return False


def stop(state: Path, timeout_s: float) -> None:
    pid = read_pid(state)
    if pid is None:
        return
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    (state / "pid").unlink(missing_ok=True)


def running(state: Path) -> bool:
    pid = read_pid(state)
    return pid is not None and alive(pid)


def read_pid(state: Path) -> int | None:
    try:
        return int((state / "pid").read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Running and not a zombie (the agent is nobody's child here once start returned)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def host_site_file(root: Path, state: Path) -> Path:
    site = root / "etc/edge-agent/site.toml"
    text = site.read_text(encoding="utf-8")
    data_dir = tomllib.loads(text).get("site", {}).get("data_dir", "/var/lib/edge-agent")
    text = re.sub(r'(?m)^data_dir\s*=.*$', f'data_dir = "{root}{data_dir}"', text, count=1)
    path = state / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def unit_value(root: Path, key: str, default: str = "") -> str:
    for line in (root / UNIT).read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip()
    return default


def unit_seconds(root: Path, key: str, default: float) -> float:
    value = unit_value(root, key)
    return float(value) if value.isdigit() else default


if __name__ == "__main__":
    sys.exit(main())
