"""The central hub: ingest every site's events, acknowledge what is stored, route SEED,
send alerts.

Threads: paho's network thread only enqueues; one worker takes messages in batches,
commits each batch to the `Ledger` (with the alerts its hits call for, in the same
transaction), then publishes one acknowledgement per site on
``bcp/v1/{site}/down/ack``. Acknowledging after the commit is the whole point: the
broker's PUBACK means only that the broker has the message (mosquitto drops a
persistent client's queued messages past ``max_queued_messages``), the hub's ack means it is
stored at the RAU.

The broker keeps the hub's subscriptions and queue (fixed client id, clean start off), so events
published while it was down wait in the broker, within the broker's queue limit; what
the broker dropped the sites send again because it was never acknowledged.

Several hub processes (workers) may share one PostgreSQL ledger: with `shared_group`
they subscribe through `$share/{group}/...`, so the broker hands each message to one of
them, and each acknowledges what it stored. What must happen once for all of them,
publishing the routed SEED records and the bundles released into the ledger
(`central release`), is done by whichever holds the ledger's "duties" lease (renewed
every second, taken over within `lease_ttl_s` when its holder dies).
A SQLite ledger admits one worker (`LedgerBusy` for a second). The alerts dispatcher
(`alerts.dispatcher`) runs in every worker; deliveries are claimed, so each goes once.

    hub = Hub(Endpoint(port=1883), "central.db")      # or "postgresql://..."
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

from edge_agent.central.alerts.dispatcher import Dispatcher
from edge_agent.central.alerts.message import planner
from edge_agent.central.broker import Endpoint
from edge_agent.central.config import AlertsConfig
from edge_agent.central.evidence_intake import STREAMS as EVIDENCE_STREAMS
from edge_agent.central.evidence_intake import EvidenceIntake
from edge_agent.central.ledger import AlertPlanner, Ledger, describe, is_postgres, sqlite_path
from edge_agent.central.routing import route
from edge_agent.sync import topics
from edge_agent.sync.link import ReconnectPacer

log = logging.getLogger(__name__)

MAX_IDS_PER_ACK = 5000
DUTIES_LEASE = "duties"


class Hub:
    def __init__(
        self,
        endpoint: Endpoint,
        db: str | Path,
        *,
        client_id: str = "rau-hub",
        shared_group: str = "",
        offices: dict[str, str] | None = None,
        sites: frozenset[str] = frozenset(),
        batch_max: int = 1000,
        batch_wait_s: float = 0.02,
        alerts: AlertsConfig | None = None,
        duties_interval_s: float = 1.0,
        lease_ttl_s: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.db = db
        self.client_id = client_id
        self.shared_group = shared_group
        self.offices = dict(offices or {})
        self.sites = sites  # registered sites; empty: every name the broker lets through
        self._unknown_logged: set[str] = set()
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.counters: Counter[str] = Counter()
        self.connected = threading.Event()
        # Every hub worker, like every site, comes back after a broker restart at a drawn
        # time (sync/link.py), not in step with the others.
        self.reconnects = ReconnectPacer(1.0, 30.0, healthy_s=30.0)
        self.connect_failed = 0
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mqtt: Any = None
        self.ledger: Ledger | None = None
        self.alerts = alerts or AlertsConfig()
        self.dispatcher: Dispatcher | None = None
        self.duties_interval_s = duties_interval_s
        self.lease_ttl_s = lease_ttl_s
        self.leading = threading.Event()  # set while this worker holds the duties lease
        self._plan: AlertPlanner | None = planner(self.alerts) if self.alerts.enabled else None
        self._wake_duties = threading.Event()
        self._duties: threading.Thread | None = None
        self._serving: Any = None
        self.evidence = EvidenceIntake(self.counters)

    def start(self) -> None:
        """Open the ledger (refusing a second worker where it must) and start serving."""
        self.ledger = Ledger(self.db)
        self._serving = self.ledger.serving(self.client_id)
        try:
            self._serving.__enter__()
        except BaseException:
            self.ledger.close()
            raise
        client = self.endpoint.client(self.client_id, persistent=True)
        client.max_inflight_messages_set(100)
        self.reconnects.next(client)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
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
        self._duties = threading.Thread(target=self._run_duties, args=(Ledger(self.db),), name="central-duties",
                                        daemon=True)
        self._duties.start()
        if self._plan is not None:
            self.dispatcher = Dispatcher(Ledger(self.db), self.alerts, holder=self.client_id)
            self.dispatcher.start()
        log.info("hub_started broker=%s:%d db=%s group=%s alerts=%s", self.endpoint.host, self.endpoint.port,
                 describe(self.db), self.shared_group or "-", "on" if self._plan else "off")

    def stop(self) -> None:
        self._stop.set()
        self._wake_duties.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._duties is not None:
            self._duties.join(15)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        if self._serving is not None:
            self._serving.__exit__(None, None, None)
        if self.ledger is not None:
            self.ledger.close()
        log.info("hub_stopped stored=%d duplicates=%d", self.counters["stored"], self.counters["duplicates"])

    @property
    def db_path(self) -> Path | None:
        """The SQLite file the hub writes, None on PostgreSQL."""
        return None if is_postgres(self.db) else sqlite_path(self.db)

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
            self.reconnects.connected()
            self.connected.set()
            log.info("hub_connected kept_state=%s", getattr(flags, "session_present", None))
        except Exception:  # noqa: BLE001 - never raise into paho's thread
            log.exception("hub_callback_failed callback=on_connect")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if self.connected.is_set():
            # Leaving on stop() is routine; losing the broker otherwise is worth a warning.
            (log.info if self._stop.is_set() else log.warning)("hub_disconnected reason=%s", reason_code)
        self.connected.clear()
        try:
            self.reconnects.lost(client)
        except Exception:  # noqa: BLE001 - never raise into paho's thread
            log.exception("hub_callback_failed callback=on_disconnect")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        try:
            self.connect_failed += 1
            self.reconnects.next(client)
        except Exception:  # noqa: BLE001
            log.exception("hub_callback_failed callback=on_connect_fail")

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
        evidence: list[tuple[str, str, bytes]] = []
        for topic, payload in batch:
            up = topics.parse_up(topic)
            if up is not None:
                site, stream = up
                if self.sites and site not in self.sites:
                    self._refuse_unknown(site, stream)
                    continue
                if stream == "health":
                    self.ledger.set_health(site, payload.decode("utf-8", "replace"))
                    self.counters["health"] += 1
                elif stream in EVIDENCE_STREAMS:
                    evidence.append((site, stream, payload))  # files, not events: kept apart
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
        if evidence:
            # Evidence on demand: answered with what the hub holds once it is committed.
            for (site, _), ack in self.evidence.take(self.ledger, evidence).items():
                self._mqtt.publish(topics.down(site, "evidence_ack"), json.dumps(ack, separators=(",", ":")), qos=1)
        if not events:
            return
        result = self.ledger.ingest(events, self._plan)
        self.counters["alerts_planned"] += result.alerts
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

    def _refuse_unknown(self, site: str, stream: str) -> None:
        # Not stored and not acknowledged: were it a real site left out of the registry, its
        # outbox keeps the events and sends them again once the RAU registers it.
        self.counters["unknown_site"] += 1
        if site not in self._unknown_logged and len(self._unknown_logged) < 1000:
            self._unknown_logged.add(site)  # one line per name, not one per event
            log.warning("hub_unknown_site site=%r stream=%s: not a registered site, events refused", site[:64], stream)

    def _status(self, site: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state", "")
        except (ValueError, AttributeError):
            state = payload[:20].decode("utf-8", "replace")
        if not payload:
            return  # a cleared retained status
        self.ledger.set_status(site, str(state))
        self.counters[f"status_{state}"] += 1
        if state == "online":
            # A site forgets the RAU's evidence requests when it restarts: asked again, it
            # sends only the chunks this ledger lacks (the request id makes it idempotent).
            again = self.ledger.reopen_evidence_requests(site)
            if again:
                self.counters["evidence_reasked"] += again
                log.info("hub_evidence_reasked site=%s requests=%d", site, again)

    def _route(self, payload: bytes) -> None:
        site, found = route(payload, self.offices)
        if site is None:
            self.counters["route_rejected"] += 1
            log.warning("hub_route_rejected reason=%s", found)
            self.ledger.reject("seed", str(found), payload.decode("utf-8", "replace"))
            return
        record = found
        # Stored now, published by the lease holder: once, whichever worker took it in.
        if self.ledger.record_routed(record.reference, record.version, site, record.model_dump_json()):
            self.counters["route_queued"] += 1
            self._wake_duties.set()
        else:
            self.counters["route_duplicates"] += 1

    # ------------------------------------------------------------------ what one worker does for all

    def _run_duties(self, ledger: Ledger) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._duties_once(ledger)
                except Exception:  # noqa: BLE001 - the lease runs out and another worker takes over
                    self.counters["duties_errors"] += 1
                    log.exception("hub_duties_failed")
                self._wake_duties.wait(self.duties_interval_s)
                self._wake_duties.clear()
        finally:
            if self.leading.is_set():
                try:
                    ledger.release_lease(DUTIES_LEASE, self.client_id)
                except Exception:  # noqa: BLE001 - it runs out by itself
                    log.exception("hub_lease_release_failed")
            ledger.close()

    def _duties_once(self, ledger: Ledger) -> None:
        if not self.connected.is_set():
            return
        held = ledger.take_lease(DUTIES_LEASE, self.client_id, self.lease_ttl_s)
        if held != self.leading.is_set():
            (self.leading.set if held else self.leading.clear)()
            log.info("hub_duties %s worker=%s", "taken" if held else "left to another worker", self.client_id)
        if held:
            self._publish_bundles(ledger)
            self._publish_routed(ledger)
            self._publish_commands(ledger)

    def _publish_bundles(self, ledger: Ledger) -> None:
        # One at a time, in the order released: a delta never goes out before its base.
        for bundle_id, topic, retain, label, payload in ledger.bundles_pending():
            info = self._mqtt.publish(topic, payload, qos=1, retain=retain)
            try:
                info.wait_for_publish(timeout=30)
            except (RuntimeError, ValueError):
                return  # the link went: it stays pending for the next round
            if not info.is_published():
                return
            ledger.mark_bundle_published(bundle_id)
            self.counters["bundles_published"] += 1
            log.info("hub_bundle_published bundle=%r topic=%s retained=%s", label, topic, retain)

    def _publish_commands(self, ledger: Ledger) -> None:
        # The RAU console's channel raises, in the order asked; each goes out once, on its
        # site's down/command topic (docs/sync.md), where the site's core applies it.
        for command_id, site, body in ledger.commands_pending():
            info = self._mqtt.publish(topics.down(site, "command"), body, qos=1)
            try:
                info.wait_for_publish(timeout=10)
            except (RuntimeError, ValueError):
                return  # the link went: it stays pending for the next round
            if not info.is_published():
                return
            ledger.mark_command_published(command_id)
            self.counters["commands_published"] += 1
            log.info("hub_command_published id=%s site=%s", command_id, site)

    def _publish_routed(self, ledger: Ledger) -> None:
        pending = ledger.routed_pending()
        if not pending:
            return
        infos = []
        for reference, version, site, body in pending:
            infos.append((reference, version, site, self._mqtt.publish(topics.down(site, "prearrival"), body, qos=1)))
            self.counters["routed"] += 1  # handed to the broker; marked published once it has it
        published = []
        for reference, version, site, info in infos:
            try:
                info.wait_for_publish(timeout=10)
            except (RuntimeError, ValueError):
                break  # the link went: the rest stays pending for the next round
            if not info.is_published():
                break
            published.append((reference, version))
            log.info("hub_routed reference=%s version=%d site=%s", reference, version, site)
        ledger.mark_routed_published(published)
