"""Slowing down password guessing at the console's login.

After a few failed logins for one username, or many from one client address, further
attempts are refused for a while without checking the password, and the pause doubles
with each further failure up to a cap (OWASP Authentication Cheat Sheet: throttle rather
than lock the account for good, so an attacker cannot keep an officer out all shift).
The address limit is higher because booth screens may reach the console through one
proxy. A success clears the username's count, not the address's: one valid account
must not reset a spray over the others. Refused attempts skip the Argon2 check, so a
flood costs neither the 19 MiB per check nor the CPU the lanes need.

Counts live in memory: a restart forgets them, which costs an attacker a restart of
the agent per batch of guesses, something they cannot cause from the login page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Beyond this many tracked usernames and addresses, the oldest are forgotten first, so
# a spray of random usernames cannot grow the console's memory without bound.
MAX_TRACKED = 10_000


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 5  # per username before the first pause
    free_failures_per_client: int = 20  # per client address
    pause_s: float = 30.0  # the first pause; it doubles with each further failure
    max_pause_s: float = 900.0
    forget_after_s: float = 900.0  # a quiet spell this long clears the count


def pause_after(failures: int, free: int, policy: ThrottlePolicy) -> float:
    """How long to refuse logins after `failures` consecutive ones, when `free` cost nothing."""
    if failures < free:
        return 0.0
    # The exponent is bounded: an address that keeps guessing would otherwise overflow it.
    return min(policy.pause_s * 2.0 ** min(failures - free, 64), policy.max_pause_s)


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Failed-login counts by username and by client address; safe from any thread."""

    def __init__(self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], _Failures] = {}

    def wait_s(self, username: str, client: str) -> float:
        """Seconds until this username may be tried from this client; 0 when it may now."""
        now = self.clock()
        with self._lock:
            return max(self._remaining(("user", username), self.policy.free_failures, now),
                       self._remaining(("client", client), self.policy.free_failures_per_client, now))

    def failed(self, username: str, client: str) -> float:
        """Count a wrong password; returns the pause it starts (0 while attempts are still free)."""
        now = self.clock()
        with self._lock:
            for key in (("user", username), ("client", client)):
                entry = self._current(key, now)
                if entry is None:
                    self._failures[key] = _Failures(1, now)
                else:
                    entry.count, entry.last = entry.count + 1, now
                    self._failures[key] = self._failures.pop(key)  # newest last, for eviction
            while len(self._failures) > MAX_TRACKED:
                del self._failures[next(iter(self._failures))]
            return max(self._remaining(("user", username), self.policy.free_failures, now),
                       self._remaining(("client", client), self.policy.free_failures_per_client, now))

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(("user", username), None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._failures)

    def _current(self, key: tuple[str, str], now: float) -> _Failures | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry.last >= self.policy.forget_after_s:
            del self._failures[key]
            return None
        return entry

    def _remaining(self, key: tuple[str, str], free: int, now: float) -> float:
        entry = self._current(key, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + pause_after(entry.count, free, self.policy) - now)
