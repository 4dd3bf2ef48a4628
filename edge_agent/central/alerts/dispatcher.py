"""Sends the delivery log's pending alerts: one thread per hub worker, each claiming a few
due deliveries at a time (`Ledger.claim_deliveries`, a lease: a worker that dies before
it reports leaves them to another once the claim runs out), checking the recipient's
rate limit, sending, and writing the outcome back.

A failed attempt is retried after a random wait in [0, min(cap, base * 2**(n-1))] ("full
jitter": M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015), so
alerts queued behind one outage do not all hit the relay again at the same instant; past
`retry.attempts` it is failed for good, logged and counted. An alert is sent at least
once: a worker killed between sending and writing "sent" leaves it to be sent again.

    dispatcher = Dispatcher(Ledger(url), config.alerts, holder="rau-hub-1")
    dispatcher.start(); ...; dispatcher.stop()
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from typing import Protocol

from edge_agent.backoff import full_jitter_delay_s
from edge_agent.central.alerts import DeliveryFailed
from edge_agent.central.alerts.sms_gateway import SmsGatewaySender
from edge_agent.central.alerts.smtp import SmtpSender
from edge_agent.central.config import AlertsConfig
from edge_agent.central.ledger import DeliveryRow, Ledger

log = logging.getLogger(__name__)

CLAIM_S = 120.0  # longer than one send's timeouts, so a live worker keeps what it claimed
CLAIM_BATCH = 20


class Sender(Protocol):
    channel: str

    def send(self, recipient: str, subject: str, body: str) -> None: ...


def full_jitter_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait before retry number `attempt` (1 for the first retry): the one policy of
    every retry here (edge_agent/backoff.py)."""
    return full_jitter_delay_s(attempt - 1, base_s, cap_s, rng)


class Dispatcher:
    def __init__(self, ledger: Ledger, config: AlertsConfig, *, holder: str,
                 senders: dict[str, Sender] | None = None, rng: random.Random | None = None) -> None:
        self.ledger = ledger
        self.config = config
        self.holder = holder
        self.senders: dict[str, Sender] = senders if senders is not None else default_senders(config)
        self.rng = rng or random.Random()
        self.counters: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-alerts", daemon=True)
        self._thread.start()
        log.info("alerts_started holder=%s channels=%s targets=%d", self.holder, ",".join(sorted(self.senders)),
                 len(self.config.targets))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.ledger.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - the ledger may be away for a while; claims keep the work safe
                self.counters["dispatch_errors"] += 1
                log.exception("alerts_dispatch_failed")
                worked = 0
            if not worked:
                self._stop.wait(self.config.poll_s)

    def run_once(self) -> int:
        """Claim and work one batch of due deliveries; how many were worked."""
        claimed = self.ledger.claim_deliveries(self.holder, CLAIM_BATCH, CLAIM_S)
        for delivery in claimed:
            if self._stop.is_set():
                break  # the claim runs out and the rest goes to whoever works next
            self._deliver(delivery)
        return len(claimed)

    def _deliver(self, d: DeliveryRow) -> None:
        limit = self.config.rate_limit
        if self.ledger.sent_since(d.recipient, limit.window_s) >= limit.per_recipient:
            self.counters["suppressed"] += 1
            log.warning("alert_suppressed id=%d recipient=%s hit=%s reason=rate_limit", d.id, d.recipient, d.hit_id)
            self.ledger.finish_delivery(d.id, "suppressed",
                                        f"rate limit: {limit.per_recipient} per {limit.window_s:g} s to this recipient")
            return
        sender = self.senders.get(d.channel)
        try:
            if sender is None:
                raise DeliveryFailed(f"no sender for channel {d.channel!r}")
            sender.send(d.recipient, d.subject, d.body)
        except DeliveryFailed as err:
            attempt = d.attempts + 1
            if attempt >= self.config.retry.attempts:
                self.counters["failed"] += 1
                log.warning("alert_failed id=%d channel=%s recipient=%s hit=%s attempts=%d error=%s",
                            d.id, d.channel, d.recipient, d.hit_id, attempt, err)
                self.ledger.finish_delivery(d.id, "failed", str(err))
                return
            wait_s = full_jitter_s(attempt, self.config.retry.base_s, self.config.retry.cap_s, self.rng)
            self.counters["retried"] += 1
            log.info("alert_retry id=%d channel=%s recipient=%s attempt=%d wait_s=%.2f error=%s",
                     d.id, d.channel, d.recipient, attempt, wait_s, err)
            self.ledger.finish_delivery(d.id, "pending", str(err), retry_in_s=wait_s)
            return
        self.counters["sent"] += 1
        log.info("alert_sent id=%d channel=%s recipient=%s hit=%s indicator=%s", d.id, d.channel, d.recipient,
                 d.hit_id, d.indicator_id)
        self.ledger.finish_delivery(d.id, "sent")


def default_senders(config: AlertsConfig) -> dict[str, Sender]:
    senders: dict[str, Sender] = {}
    if config.smtp is not None:
        senders["email"] = SmtpSender(config.smtp)
    if config.sms is not None:
        senders["sms"] = SmsGatewaySender(config.sms)
    return senders
