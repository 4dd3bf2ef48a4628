"""The MQTT side of the site: publishes the outbox, turns downward messages into events.

Threads: paho's network thread (``loop_start``) runs the callbacks, which only put
messages on a queue and wake the sender (paho-mqtt's README: an exception in a callback
can end its network loop). The sender thread, started here, owns every decision: it
decodes downward messages and posts events to the core, reads new outbox rows through
its own read-only connection (`Store.reader`), publishes them at QoS 1, and resends what
the hub has not acknowledged. It never writes the agent's database: acknowledgements are
posted as `AcksReceived` and the core deletes the rows.

Delivery rule (docs/sync.md): a row is delivered when the central hub says it stored it
on ``bcp/v1/{site}/down/ack``, not when the broker answers PUBACK. paho keeps messages in
flight in memory (its README, "Known limitations"), so on every (re)connect and at start the whole
outbox counts as unsent; the hub drops the duplicates by id.

    client = SyncClient(config.site, config.sync, data_dir / "agent.db", core.post)
    client.start()
    ...
    client.health()   # {"connected": True, "backlog": 12, "last_ack_at": "...", ...}
    client.stop()
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.config import SiteConfig, SyncConfig
from edge_agent.errors import StoreError
from edge_agent.ids import new_id
from edge_agent.models import AcksReceived, RauCommand, Rejected
from edge_agent.store import OutboxRow, Store
from edge_agent.sync import topics
from edge_agent.sync.downlink import EvidenceRequest, decode, evidence_request
from edge_agent.sync.link import ReconnectPacer, bound_socket_timeout
from edge_agent.sync.outbox import DrainSchedule, Inflight, Pacer

log = logging.getLogger(__name__)

ACKED_MEMORY_S = 120.0  # how long an acknowledged id is kept from resending while the core deletes it
LIVE_BATCH = 1000
SENDER_SILENCE_S = 60.0  # one cycle reads the outbox and publishes a batch; far less than this
STATE_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps this site's subscriptions and queue through long outages


class SyncClient:
    def __init__(
        self,
        site: SiteConfig,
        sync: SyncConfig,
        store_path: Path,
        post: Callable[[object], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        site_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.site = site
        self.site_health = site_health
        self.sync = sync
        self.store_path = Path(store_path)
        self.post = post
        self.clock = clock
        # The site id is the certificate's CN, which the shipped broker makes the client id
        # (use_username_as_clientid): asking for the same keeps the session under one name.
        self.client_id = sync.client_id or site.id
        self.schedule = DrainSchedule()
        self.inflight = Inflight()
        self.pacer = Pacer(sync.drain_rate_per_s, burst=max(1, min(sync.max_inflight, 200)), clock=clock)
        self.counters: Counter[str] = Counter()
        self.connected = False
        self.last_ack_at: datetime | None = None
        self.last_connect_at: datetime | None = None
        self._acked_recent: dict[str, float] = {}
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reader: Store | None = None
        self._backlog = 0
        self._next_health = 0.0
        self._next_purge = 0.0
        self._next_count = 0.0
        self._mqtt: Any = None
        self.reconnects = ReconnectPacer(sync.reconnect_base_s, sync.reconnect_cap_s,
                                         healthy_s=max(30.0, 3.0 * sync.keepalive_s), clock=clock)
        # Set by the agent to the service watchdog's beat: called with the thread's name.
        self.heartbeat: Callable[[str], None] | None = None
        # Set by the agent: evidence on demand (sync/evidence_upload.py), fed from this thread.
        self.uploader: Any = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        import paho.mqtt.client as mqtt

        v5 = self.sync.protocol == "5"
        kwargs: dict[str, Any] = {
            "callback_api_version": mqtt.CallbackAPIVersion.VERSION2,
            "client_id": self.client_id,
            "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        }
        if not v5:
            kwargs["clean_session"] = False  # the broker queues our downward QoS 1 messages while we are away
        client = mqtt.Client(**kwargs)
        client.will_set(topics.status(self.site.id), self._status("offline", clean=False), qos=1, retain=True)
        if self.sync.tls_ca:
            client.tls_set(
                ca_certs=str(self.sync.tls_ca),
                certfile=str(self.sync.tls_cert) if self.sync.tls_cert else None,
                keyfile=str(self.sync.tls_key) if self.sync.tls_key else None,
            )
        self.reconnects.next(client)
        client.max_inflight_messages_set(min(self.sync.max_inflight, 100))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._mqtt = client
        connect_kwargs: dict[str, Any] = {}
        if v5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = STATE_EXPIRY_S
            connect_kwargs = {"clean_start": False, "properties": props}
        client.connect_async(self.sync.broker_host, self.sync.broker_port, self.sync.keepalive_s, **connect_kwargs)
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        log.info("sync_started site=%s broker=%s:%d", self.site.id, self.sync.broker_host, self.sync.broker_port)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        client = self._mqtt
        if client is not None:
            if self.connected:
                # A clean goodbye, so the hub can tell a shutdown from a lost link.
                info = client.publish(
                    topics.status(self.site.id), self._status("offline", clean=True), qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=min(timeout_s, 2.0))
            self.connected = False  # a chosen disconnect: not worth a warning
            client.disconnect()
            client.loop_stop()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        log.info("sync_stopped site=%s", self.site.id)

    def health(self) -> dict[str, Any]:
        with self._lock:
            counters = dict(self.counters)
        return {
            "site": self.site.id,
            "connected": self.connected,
            "backlog": self._backlog,
            "inflight": len(self.inflight),
            "draining": self.schedule.draining,
            "last_ack_at": self.last_ack_at.isoformat(timespec="milliseconds") if self.last_ack_at else None,
            "last_connect_at": self.last_connect_at.isoformat(timespec="milliseconds")
            if self.last_connect_at
            else None,
            "sent": counters.get("sent", 0),
            "resent": counters.get("resent", 0),
            "acked": counters.get("acked", 0),
            "connect_failed": counters.get("connect_failed", 0),
            "last_reconnect_delay_s": round(self.reconnects.last_delay_s, 3),
            "rejected": {k[len("rejected_") :]: v for k, v in counters.items() if k.startswith("rejected_")},
            "received": {k[len("received_") :]: v for k, v in counters.items() if k.startswith("received_")},
        }

    def refetch(self, topic: str) -> None:
        """Ask the broker again for a topic's retained message (the full bundle after a
        delta did not fit): a new subscription is always sent the retained message."""
        if self._mqtt is not None and self.connected:
            self._mqtt.unsubscribe(topic)
            self._mqtt.subscribe(topic, qos=1)

    # ------------------------------------------------------------------ paho callbacks: enqueue only

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        try:
            if reason_code.is_failure:
                self.counters["connect_refused"] += 1
                log.warning("sync_connect_refused site=%s reason=%s", self.site.id, reason_code)
                return
            bound_socket_timeout(client.socket(), self.sync.keepalive_s)
            client.publish(topics.status(self.site.id), self._status("online"), qos=1, retain=True)
            client.subscribe([(t, 1) for t in topics.site_subscriptions(self.site.id, self.site.region)])
            self.reconnects.connected()
            self.connected = True
            self.last_connect_at = datetime.now(UTC)
            self._restart.set()
            self._wake.set()
            log.info("sync_connected site=%s kept_state=%s", self.site.id, getattr(flags, "session_present", None))
        except Exception:  # noqa: BLE001 - a raise here would end paho's network thread
            log.exception("sync_callback_failed callback=on_connect")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        try:
            if self.connected:
                log.warning("sync_disconnected site=%s reason=%s", self.site.id, reason_code)
            self.connected = False
            self.reconnects.lost(client)
            self._wake.set()
        except Exception:  # noqa: BLE001
            log.exception("sync_callback_failed callback=on_disconnect")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        try:
            self.counters["connect_failed"] += 1
            self.reconnects.next(client)
        except Exception:  # noqa: BLE001
            log.exception("sync_callback_failed callback=on_connect_fail")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._inbox.put((message.topic, bytes(message.payload)))
            self._wake.set()
        except Exception:  # noqa: BLE001
            log.exception("sync_callback_failed callback=on_message")

    # ------------------------------------------------------------------ the sender thread

    def watched(self) -> dict[str, float]:
        """The sender thread, for the service watchdog: it turns at least every poll interval."""
        return {self.thread_name: SENDER_SILENCE_S}

    @property
    def thread_name(self) -> str:
        return f"sync-{self.site.id}"

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat(self.thread_name)
            try:
                self._cycle()
            except StoreError as err:
                self.counters["store_unavailable"] += 1
                if self.counters["store_unavailable"] == 1:
                    log.warning("sync_store_unavailable path=%s error=%s", self.store_path, err)
                self._stop.wait(1.0)
            except Exception:  # noqa: BLE001 - the link must outlive any one bad cycle
                self.counters["cycle_errors"] += 1
                log.exception("sync_cycle_failed site=%s", self.site.id)
                self._stop.wait(1.0)
            self._wake.wait(self.sync.poll_interval_s)
            self._wake.clear()

    def _cycle(self) -> None:
        self._drain_inbox()
        reader = self._open_reader()
        now = self.clock()
        if not self.connected:
            if now >= self._next_count:  # the backlog figure for health(), without a scan every poll
                self._next_count = now + 1.0
                self._backlog = reader.outbox_count()
            return
        if self._restart.is_set():
            self._restart.clear()
            self.inflight.clear()
            self.schedule.restart(reader.outbox_max_seq())
            self._backlog = reader.outbox_count()
            self.pacer = Pacer(self.sync.drain_rate_per_s, self.pacer.burst, clock=self.clock)
            self._next_health = 0.0
        # Live rows first, hits before the rest, unpaced: they must not wait behind an outage.
        live = self.schedule.take_live(reader.outbox_after(self.schedule.live_pos, limit=LIVE_BATCH))
        self._publish(live, now)
        # Then what the hub has not acknowledged in time.
        due = self.inflight.due(now, self.sync.resend_timeout_s, limit=self.sync.max_inflight)
        if due:
            rows = reader.outbox_by_ids(due)
            found = {r.id for r in rows}
            self.inflight.forget(i for i in due if i not in found)  # acknowledged and deleted meanwhile
            self._publish(rows, now, resend=True)
        # Then the backlog, paced and within the unacknowledged window.
        room = min(self.sync.max_inflight - len(self.inflight), self.pacer.allowance())
        if self.schedule.draining and room > 0:
            rows = self.schedule.take_backlog(
                reader.outbox_after(self.schedule.backlog_pos, upto=self.schedule.backlog_end, limit=room), room
            )
            sent = self._publish(rows, now)
            self.pacer.spend(sent)
            if not self.schedule.draining:
                self._backlog = reader.outbox_count()
        if now >= self._next_health:
            self._next_health = now + self.sync.health_interval_s
            self._backlog = reader.outbox_count()
            self._publish_health()
        if now >= self._next_purge:
            self._next_purge = now + 10.0
            cutoff = now - ACKED_MEMORY_S
            self._acked_recent = {i: t for i, t in self._acked_recent.items() if t >= cutoff}

    def _publish(self, rows: list[OutboxRow], now: float, resend: bool = False) -> int:
        sent = 0
        for row in rows:
            if not resend and (row.id in self.inflight or row.id in self._acked_recent):
                continue
            if row.id in self._acked_recent:
                self.inflight.forget([row.id])
                continue
            info = self._mqtt.publish(topics.up(self.site.id, row.stream), row.payload, qos=1)
            if info.rc != 0:
                # Not connected any more, or paho's queue is full: the schedule has moved past
                # rows that did not go, so rewind it (duplicates are dropped by the hub).
                self.counters["publish_failed"] += 1
                self._restart.set()
                break
            attempts = self.inflight.mark(row.id, now)
            self.counters["resent" if attempts > 1 else "sent"] += 1
            sent += 1
        return sent

    def outbox_idle(self) -> bool:
        """Nothing of the outbox waits: connected, no backlog drained, nothing unacknowledged.
        The evidence uploader sends only then, so live traffic always goes first."""
        return self.connected and not self.schedule.draining and len(self.inflight) == 0

    def publish_raw(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 1 beside the outbox (the evidence uploader's chunks); False when paho refused it."""
        client = self._mqtt
        return client is not None and self.connected and client.publish(topic, payload, qos=1).rc == 0

    def _drain_inbox(self) -> None:
        now_utc = datetime.now(UTC)
        while True:
            try:
                topic, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if topics.down_kind(topic, self.site.id, self.site.region) == "evidence_ack":
                # The hub's answer to the uploader, not an event for the core.
                self.counters["received_evidence_ack"] += 1
                if self.uploader is not None:
                    self.uploader.acked(payload)
                continue
            asked = evidence_request(topic, payload, site=self.site.id, region=self.site.region, now=now_utc)
            if isinstance(asked, EvidenceRequest):
                self.counters["received_evidence_request"] += 1
                if self.uploader is not None and asked.command == "cctv_snapshot":
                    self.uploader.snapshot(asked.id, asked.lane)
                elif self.uploader is not None:
                    self.uploader.request(asked.id, asked.crossing_id)
                continue
            if isinstance(asked, Rejected):
                self.counters["rejected_command"] += 1
                log.warning("sync_downlink_rejected topic=%s reason=%s", topic, asked.reason)
                self.post(asked)
                continue
            event = decode(
                topic,
                payload,
                site=self.site.id,
                region=self.site.region,
                now=now_utc,
                prearrival_ttl_s=self.sync.prearrival_ttl_h * 3600,
                office_codes=frozenset(self.sync.office_codes),
                max_bundle_bytes=int(self.sync.max_bundle_mb * 1024 * 1024),
            )
            if isinstance(event, Rejected):
                self.counters[f"rejected_{event.source.removeprefix('sync:')}"] += 1
                log.warning("sync_downlink_rejected topic=%s reason=%s", topic, event.reason)
                self.post(event)
                continue
            self.counters[f"received_{event.kind}"] += 1
            if isinstance(event, AcksReceived):
                mono = self.clock()
                for event_id in event.ids:
                    self._acked_recent[event_id] = mono
                self.counters["acked"] += self.inflight.acked(event.ids)
                self.last_ack_at = now_utc
            elif isinstance(event, RauCommand):
                if event.command == "resend":
                    self._restart.set()  # everything unacknowledged goes again, from the start
                elif event.command == "ping":
                    self._next_health = 0.0  # the answer is an immediate health event
            self.post(event)

    def _open_reader(self) -> Store:
        if self._reader is None:
            self._reader = Store.reader(self.store_path)
        return self._reader

    def _publish_health(self) -> None:
        body = {"id": new_id(), "stream": "health", "at": datetime.now(UTC).isoformat(), **self.health()}
        if self.site_health is not None:
            try:
                body["lanes"] = self.site_health()
            except Exception:  # noqa: BLE001 - the link's own health still goes out
                log.exception("site_health_failed")
        self._mqtt.publish(topics.up(self.site.id, "health"), json.dumps(body, separators=(",", ":")), qos=0)

    def _status(self, state: str, clean: bool = True) -> str:
        return json.dumps(
            {"site": self.site.id, "state": state, "clean": clean, "at": datetime.now(UTC).isoformat()},
            separators=(",", ":"),
        )
