"""A private mosquitto on a loopback port: for the demo, the tests and the benchmark.

Writes its own configuration (never the system's /etc/mosquitto), binds 127.0.0.1 only,
and keeps its files in a directory of the caller's. The Debian package installs the
binary as /usr/sbin/mosquitto. Configuration keys: mosquitto.conf(5).

    broker = PrivateBroker(workdir)
    broker.start()          # broker.port is a free port
    ...
    broker.restart()        # same port: a broker restart mid-drain
    broker.stop()
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from edge_agent.errors import AgentError

log = logging.getLogger(__name__)

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


class BrokerUnavailable(AgentError, FileNotFoundError):
    """No mosquitto binary on this host."""


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((c for c in CANDIDATES if Path(c).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen | None) -> None:
    """Ask a broker to end (it saves its state), then make it, if it will not within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class PrivateBroker:
    def __init__(
        self,
        workdir: Path,
        *,
        port: int = 0,
        extra: str = "",
        persistence: bool = False,
        max_queued_messages: int = 1000,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.extra = extra
        self.persistence = persistence
        self.max_queued_messages = max_queued_messages
        self.process: subprocess.Popen | None = None
        self.binary = find_mosquitto()

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            "per_listener_settings false",
            f"max_queued_messages {self.max_queued_messages}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to user "mosquitto", which cannot read a
            # private working directory; this broker is loopback-only and short-lived.
            lines.append("user root")
        if not self.extra or "listener" not in self.extra:
            lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra.replace("{port}", str(self.port)) + "\n")
        return self.config_path

    def start(self, timeout_s: float = 15.0) -> PrivateBroker:
        if self.binary is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.write_config()
        with open(self.workdir / "mosquitto.log", "ab") as log_file:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)], stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    log.info("broker_started port=%d", self.port)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"mosquitto did not listen on {self.port} within {timeout_s}s")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
