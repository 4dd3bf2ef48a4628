"""The RAU's side for a benchmark: a private mosquitto and `edge-agent central serve` in
another process on its own SQLite ledger, as a site meets them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.central.mosquitto import PrivateBroker  # noqa: E402


class RauRig:
    """`with RauRig(workdir) as rau:` -> rau.port (the broker), rau.stored(stream)."""

    def __init__(self, workdir: Path, max_queued_messages: int = 5000) -> None:
        self.workdir = Path(workdir)
        self.broker = PrivateBroker(self.workdir / "broker", max_queued_messages=max_queued_messages)
        self.hub_db = self.workdir / "central.db"
        self.hub: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return self.broker.port

    def __enter__(self) -> RauRig:
        self.broker.start()
        ready = self.workdir / "hub.ready"
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "central", "serve", "--port", str(self.port),
             "--db", str(self.hub_db), "--ready-file", str(ready)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "hub.log", "wb"),  # noqa: SIM115 - the hub writes to it until it stops
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline or self.hub.poll() is not None:
                self.__exit__()
                raise SystemExit("central serve did not start: " + (self.workdir / "hub.log").read_text()[-500:])
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hub is not None:
            self.hub.terminate()
            self.hub.wait(20)
            self.hub = None
        self.broker.stop()

    def stored(self, stream: str | None = None) -> int:
        """Events the hub's ledger holds (of one stream)."""
        conn = sqlite3.connect(self.hub_db)
        try:
            if stream is None:
                return conn.execute("SELECT count(*) FROM events").fetchone()[0]
            return conn.execute("SELECT count(*) FROM events WHERE stream = ?", [stream]).fetchone()[0]
        finally:
            conn.close()
