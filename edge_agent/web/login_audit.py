"""Failed logins in the audit log, at most `rows_per_window` entries per window.

Every wrong password used to be one audit entry: guesses spread over many usernames and
addresses, each within its free failures, would still become a flood of writes to the
board's storage. Within a window the first failures are written one by one as before;
the rest are counted, and one summary entry says how many there were, for how many
usernames and addresses (a sample of each), when the window ends: at the next login
attempt after it, or when the console stops. The metrics count every one
(`action="login", outcome="refused"`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.web.audit import AuditLog

log = logging.getLogger(__name__)

SAMPLE = 10  # usernames and addresses named in a summary
DISTINCT = 1000  # usernames and addresses counted apart in a window; the rest as "(others)"


class LoginRefusals:
    def __init__(self, audit: AuditLog, rows_per_window: int = 20, window_s: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.audit = audit
        self.rows_per_window = rows_per_window
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._written = 0
        self._users: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()

    def refused(self, username: str, client: str, reason: str) -> None:
        """One wrong password: an audit entry, or a count for the window's summary."""
        with self._lock:
            self._roll(self.clock())
            if self._written < self.rows_per_window:
                self._written += 1
                self.audit.append(username or "-", "-", "login", "refused", reason, {"client": client})
                return
            _count(self._users, username)
            _count(self._clients, client)

    def tick(self) -> None:
        """Write the last window's summary if it has ended (called on each login attempt)."""
        with self._lock:
            self._roll(self.clock())

    def flush(self) -> None:
        """Write the summary of what is counted so far (the console is stopping)."""
        with self._lock:
            self._summarise(self.clock())

    def _roll(self, now: float) -> None:
        if now - self._start >= self.window_s:
            self._summarise(now)
            self._start, self._written = now, 0

    def _summarise(self, now: float) -> None:
        failures = sum(self._users.values())
        if not failures:
            return
        since = datetime.fromtimestamp(self._start, UTC).isoformat(timespec="seconds")
        details = {
            "failures": failures, "since": since,
            "usernames": len(self._users), "top_usernames": dict(self._users.most_common(SAMPLE)),
            "clients": len(self._clients), "top_clients": dict(self._clients.most_common(SAMPLE)),
        }
        self.audit.append("-", "-", "login", "refused",
                          f"{failures} further wrong passwords since {since}, not written one by one", details)
        log.warning("console_login_refusals_summarised failures=%d usernames=%d clients=%d",
                    failures, len(self._users), len(self._clients))
        self._users.clear()
        self._clients.clear()


def _count(counter: Counter[str], key: str) -> None:
    counter[key if key in counter or len(counter) < DISTINCT else "(others)"] += 1
