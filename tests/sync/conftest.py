"""Real parts for the sync tests: a private mosquitto on a free loopback port with a
configuration the test writes, a TCP proxy that cuts connections on demand, the
central hub (in this process, or as the real `edge-agent central serve`), and the RAU's
signing keys (`rau`): a root key and one role per level, as docs/sync.md's ceremony
makes them; and sites (`make_site`): a store and its SyncClient, with a thread playing
the core's part in acknowledgements."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from testkit.processes import serve_central

from edge_agent.config import SiteConfig, SyncConfig
from edge_agent.models import AcksReceived
from edge_agent.store import Store
from edge_agent.sync.bundles import build_full, pack
from edge_agent.sync.client import SyncClient
from edge_agent.sync.trust import generate_key, make_root, sign

REPO = Path(__file__).resolve().parents[2]


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every open connection at once,
    as a failing radio link or a NAT timeout would; `hold()` refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.refusing = threading.Event()
        self.frozen = threading.Event()
        self.cuts = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            if self.refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.stopped.is_set():
                if self.frozen.is_set():
                    # Half-open: both sockets stay open and nothing goes through, as
                    # when a NAT forgets the connection or the far end loses power.
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if sock is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.cuts += 1

    def freeze(self, frozen: bool = True) -> None:
        """Stop forwarding without closing anything (`freeze(False)` resumes)."""
        if frozen:
            self.frozen.set()
        else:
            self.frozen.clear()

    def hold(self, refusing: bool) -> None:
        if refusing:
            self.refusing.set()
            self.cut()
        else:
            self.refusing.clear()

    def close(self) -> None:
        self.stopped.set()
        self.cut()
        self.listener.close()
        self.thread.join(2)


@pytest.fixture()
def proxy(broker):
    p = TcpProxy(broker.port)
    yield p
    p.close()


@pytest.fixture()
def hub(broker, tmp_path: Path):
    """The central hub in this process (fast); `central_serve` runs the real command."""
    from edge_agent.central.broker import Endpoint
    from edge_agent.central.hub import Hub

    h = Hub(Endpoint(port=broker.port), tmp_path / "central.db", client_id=f"rau-hub-{os.getpid()}")
    h.start()
    assert h.connected.wait(15)
    yield h
    h.stop()


@pytest.fixture()
def central_serve(broker, tmp_path: Path):
    """The real `edge-agent central serve` against the test broker; yields its db path."""
    db = tmp_path / "central-served.db"
    proc = serve_central(broker.port, db, tmp_path)
    yield db
    proc.terminate()


class RauKeys:
    """The RAU's keys in a test: a root key, two central keys (threshold 2), one key for
    each regional desk (north, south) and one for every site's targeted bundles."""

    def __init__(self) -> None:
        self.root = [generate_key()]
        self.central = [generate_key(), generate_key()]
        self.north = [generate_key()]
        self.south = [generate_key()]
        self.sites = [generate_key()]
        self.now = datetime.now(UTC)

    def roles(self) -> dict[str, tuple[list[str], int]]:
        return {
            "central": ([k[1] for k in self.central], 2),
            "region/north": ([k[1] for k in self.north], 1),
            "region/south": ([k[1] for k in self.south], 1),
            "site/*": ([k[1] for k in self.sites], 1),
        }

    def root_document(
        self,
        version: int = 1,
        *,
        roles: dict | None = None,
        reset_floors: tuple[str, ...] = (),
        root_keys: list[tuple[str, str]] | None = None,
        signers: list[str] | None = None,
        expires: datetime | None = None,
    ) -> dict:
        """A signed root; for a rotation pass the new `root_keys` and `signers` (old and new)."""
        root_keys = root_keys or self.root
        body = make_root(version=version, expires=expires or self.now + timedelta(days=365),
                         root_keys=[k[1] for k in root_keys], roles=roles or self.roles(), reset_floors=reset_floors)
        return sign(body, signers or [k[0] for k in root_keys])

    def bundle(self, signers: list[tuple[str, str]] | list[str], version: int, doc: dict, *, level: str = "central",
               scope: str = "central", expires_days: float = 30.0, roots: list[dict] | None = None) -> bytes:
        """A full bundle signed by `signers` (key pairs or private keys)."""
        body = build_full(doc, level=level, scope=scope, version=version,
                          expires=self.now + timedelta(days=expires_days), created=self.now)
        private = [k[0] if isinstance(k, tuple) else k for k in signers]
        return pack(body, private, roots)


@pytest.fixture()
def rau() -> RauKeys:
    return RauKeys()


@pytest.fixture(scope="module")
def module_rau() -> RauKeys:
    """The same keys for a whole module (Hypothesis runs many examples in one test)."""
    return RauKeys()


class Site:
    """A store, its SyncClient, and a thread standing in for the core's ack handling."""

    def __init__(self, tmp_path: Path, port: int, site_id: str = "bcp-a", **sync_kwargs) -> None:
        self.db_path = tmp_path / f"{site_id}.db"
        self.store = Store.open(self.db_path)
        self.lock = threading.Lock()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.posted: list = []
        settings = {
            "enabled": True,
            "broker_port": port,
            "poll_interval_s": 0.02,
            "resend_timeout_s": 3.0,
            "drain_rate_per_s": 0,
            "health_interval_s": 3600,
            **sync_kwargs,
        }
        self.client = SyncClient(
            SiteConfig(id=site_id, region="north", data_dir=tmp_path),
            SyncConfig(**settings),
            self.db_path,
            self.events.put,
        )
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._core, daemon=True)
        self.thread.start()

    def _core(self) -> None:
        while not self.stopped.is_set():
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            self.posted.append(event)
            if isinstance(event, AcksReceived):
                with self.lock, self.store.transaction():
                    self.store.outbox_ack(event.ids)

    def append(self, stream: str, payload: dict) -> str:
        with self.lock, self.store.transaction():
            return self.store.outbox_append(stream, payload, datetime.now(UTC))

    def outbox(self) -> int:
        with self.lock:
            return self.store.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        self.client.stop()
        self.stopped.set()
        self.thread.join(2)
        self.store.close()


@pytest.fixture()
def make_site(tmp_path):
    sites: list[Site] = []

    def make(port: int, **kwargs) -> Site:
        s = Site(tmp_path, port, **kwargs)
        sites.append(s)
        return s

    yield make
    for s in sites:
        s.close()
