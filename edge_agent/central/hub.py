"""The central hub: ingest every site's events, acknowledge what is stored, route SEED.

Threads: paho's network thread only enqueues; one worker takes messages in batches,
commits each batch to the `Ledger`, then publishes one acknowledgement per site on
``bcp/v1/{site}/down/ack``. Acknowledging after the commit is the whole point: the
broker's PUBACK means only that the broker has the message (mosquitto drops a
persistent client's queued messages past ``max_queued_messages``), the hub's ack means it is
stored at the RAU.

The broker keeps the hub's subscriptions and queue (fixed client id, clean start off), so events
published while it was down wait in the broker, within the broker's queue limit; what
the broker dropped the sites send again because it was never acknowledged.

    hub = Hub(Endpoint(port=1883), Path("central.db"))
    hub.start(); ...; hub.stop()
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from edge_agent.central.broker import Endpoint
from edge_agent.central.ledger import Ledger
from edge_agent.central.routing import route
from edge_agent.sync import topics

log = logging.getLogger(__name__)

MAX_IDS_PER_ACK = 5000


class Hub:
    def __init__(
        self,
        endpoint: Endpoint,
        db_path: Path,
        *,
        client_id: str = "rau-hub",
        shared_group: str = "",
        offices: dict[str, str] | None = None,
        batch_max: int = 1000,
        batch_wait_s: float = 0.02,
    ) -> None:
        self.endpoint = endpoint
        self.db_path = Path(db_path)
        self.client_id = client_id
        self.shared_group = shared_group
        self.offices = dict(offices or {})
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.counters: Counter[str] = Counter()
        self.connected = threading.Event()
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mqtt: Any = None
        self.ledger: Ledger | None = None

    def start(self) -> None:
        self.ledger = Ledger(self.db_path)
        client = self.endpoint.client(self.client_id, persistent=True)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._mqtt = client
        client.connect_async(
            self.endpoint.host,
            self.endpoint.port,
            self.endpoint.keepalive_s,
            **self.endpoint.connect_kwargs(persistent=True),
        )
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name="central-hub", daemon=True)
        self._thread.start()
        log.info("hub_started broker=%s:%d db=%s", self.endpoint.host, self.endpoint.port, self.db_path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        if self.ledger is not None:
            self.ledger.close()
        log.info("hub_stopped stored=%d duplicates=%d", self.counters["stored"], self.counters["duplicates"])

    def subscriptions(self) -> list[str]:
        ingest = [topics.UP_ALL, topics.SEED_INBOX]
        if self.shared_group:
            # Several hub instances share the load; standard in MQTT 5, supported by
            # mosquitto, EMQX and VerneMQ in 3.1.1 as well.
            ingest = [f"$share/{self.shared_group}/{t}" for t in ingest]
        return [*ingest, topics.STATUS_ALL]

    # ------------------------------------------------------------------ paho callbacks: enqueue only

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        try:
            if reason_code.is_failure:
                log.warning("hub_connect_refused reason=%s", reason_code)
                return
            # Subscribing again is harmless when the broker kept our state, and required when it lost it.
            client.subscribe([(t, 1) for t in self.subscriptions()])
            self.connected.set()
            log.info("hub_connected kept_state=%s", getattr(flags, "session_present", None))
        except Exception:  # noqa: BLE001 - never raise into paho's thread
            log.exception("hub_callback_failed callback=on_connect")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self.connected.is_set():
            # Leaving on stop() is routine; losing the broker otherwise is worth a warning.
            (log.info if self._stop.is_set() else log.warning)("hub_disconnected reason=%s", reason_code)
        self.connected.clear()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._inbox.put((message.topic, bytes(message.payload)))
        except Exception:  # noqa: BLE001
            log.exception("hub_callback_failed callback=on_message")

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(
                        self._inbox.get(timeout=max(0.0, remaining)) if remaining > 0 else self._inbox.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                self._handle(batch)
            except Exception:  # noqa: BLE001 - nothing was acknowledged, so the sites will resend
                self.counters["batch_errors"] += 1
                log.exception("hub_batch_failed size=%d", len(batch))
                time.sleep(1.0)

    def _handle(self, batch: list[tuple[str, bytes]]) -> None:
        assert self.ledger is not None
        events: list[tuple[str, str, bytes]] = []
        for topic, payload in batch:
            up = topics.parse_up(topic)
            if up is not None:
                site, stream = up
                if stream == "health":
                    self.ledger.set_health(site, payload.decode("utf-8", "replace"))
                    self.counters["health"] += 1
                else:
                    events.append((site, stream, payload))
                continue
            site = topics.parse_status(topic)
            if site is not None:
                self._status(site, payload)
                continue
            if topic == topics.SEED_INBOX:
                self._route(payload)
                continue
            self.counters["unexpected_topic"] += 1
        if not events:
            return
        result = self.ledger.ingest(events)
        self.counters["stored"] += result.stored
        self.counters["duplicates"] += result.duplicates
        self.counters["rejected"] += len(result.rejected)
        for source, reason, _ in result.rejected:
            log.warning("hub_event_rejected source=%s reason=%s", source, reason)
        for site, ids in result.acks.items():
            for start in range(0, len(ids), MAX_IDS_PER_ACK):
                body = json.dumps({"ids": ids[start : start + MAX_IDS_PER_ACK]}, separators=(",", ":"))
                self._mqtt.publish(topics.down(site, "ack"), body, qos=1)
        for site, stream, payload in events:
            if stream == "hit":
                log.info("hub_hit site=%s payload=%s", site, payload[:300].decode("utf-8", "replace"))

    def _status(self, site: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state", "")
        except (ValueError, AttributeError):
            state = payload[:20].decode("utf-8", "replace")
        if not payload:
            return  # a cleared retained status
        self.ledger.set_status(site, str(state))
        self.counters[f"status_{state}"] += 1

    def _route(self, payload: bytes) -> None:
        site, found = route(payload, self.offices)
        if site is None:
            self.counters["route_rejected"] += 1
            log.warning("hub_route_rejected reason=%s", found)
            self.ledger.reject("seed", str(found), payload.decode("utf-8", "replace"))
            return
        record = found
        body = record.model_dump_json()
        if self.ledger.record_routed(record.reference, record.version, site, body):
            self._mqtt.publish(topics.down(site, "prearrival"), body, qos=1)
            self.counters["routed"] += 1
            log.info("hub_routed reference=%s version=%d site=%s", record.reference, record.version, site)
        else:
            self.counters["route_duplicates"] += 1
