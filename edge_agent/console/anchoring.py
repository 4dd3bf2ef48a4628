"""Anchoring the console's audit log where cutting it short would show.

A hash chain shows any entry edited, removed or reordered, except the newest ones:
a log cut after entry N still links up. So every minute, when the log has grown, the
console hands its newest entry's number and hash to the core as an `AuditAnchored`
event. The core keeps the event in the customs database, a separate file, and sends a
copy to the RAU through the outbox; `edge-agent audit verify --config` checks the log
against the newest anchor in the customs database. What happened after the last
anchor can still be cut without a trace, so the interval is the window of doubt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.central.ledger import latest_event
from edge_agent.models import AuditAnchored
from edge_agent.store import StoreView
from edge_agent.web.audit import Anchor, AuditLog

log = logging.getLogger(__name__)


class AuditAnchorer:
    """Posts the audit log's head to the core whenever it has moved; one daemon thread."""

    def __init__(self, audit: AuditLog, post: Callable[[Any], None], interval_s: float,
                 closing: threading.Event) -> None:
        self.audit = audit
        self.post = post
        self.interval_s = interval_s
        self.closing = closing
        self.last: Anchor | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def anchor_now(self) -> Anchor | None:
        """Post the head if it moved since the last post; returns what was posted, if anything."""
        with self._lock:
            head = self.audit.head()
            if head is None or head == self.last:
                return None
            self.post(AuditAnchored(seq=head.seq, hash=head.hash, source="console"))
            self.last = head
        log.info("audit_anchored seq=%d", head.seq)
        return head

    def _run(self) -> None:
        while not self.closing.wait(self.interval_s):
            try:
                self.anchor_now()
            except Exception:  # noqa: BLE001 - the next round tries again; the console stays up
                log.exception("audit_anchor_failed")


def central_anchor(central_db: Path, site: str) -> Anchor | None:
    """The newest anchor the RAU's hub stored for `site` (a copy of its ledger will do)."""
    body = latest_event(central_db, site, "audit_anchor", "seq")
    return Anchor.from_payload(body) if body else None


def latest_anchor(agent_db: Path) -> Anchor | None:
    """The newest anchor the core stored, read-only; None when there is none (yet)."""
    view = StoreView(agent_db)
    try:
        body = view.latest_audit_anchor()
    finally:
        view.close()
    return Anchor.from_payload(body) if body else None
