"""Slowing down password guessing at the console's login, without letting a guesser
elsewhere keep an officer out of the console at the booth.

Every login is counted as a failure *before* its password is checked, in one
transaction that first checks the pauses in force (`admit`): concurrent guesses cannot
all pass the check while the first ones are still being verified. A success then takes
its count back (`settle`). After a few failures on one count, logins on it are refused
for a while without checking the password, and the pause doubles with each further
failure up to a cap (OWASP Authentication Cheat Sheet: throttle rather than lock for
good). Refused attempts skip the Argon2 check and write nothing.

Two counts apply to each attempt, and either can pause it:

- by address (`free_failures_per_client`, higher: booth screens may share a proxy);
- by username, *unless* the attempt comes from an address this user logged in from
  recently (`remember_address_s`) or from one of the site's booth terminals
  (`console.booth_addresses`). From those it is counted per username and address
  instead. A guesser on another machine can pause the username everywhere else, but
  not at the officer's own terminal: to do that they would have to guess from it.

The counts cannot be flushed: they live in the console's database (so a restart keeps
them), a real account's count is never evicted, usernames that are no account share a
fixed number of counts (by a hash of the name, so a spray of invented names cannot grow
the table, and they pause like real ones: the pause does not tell which names exist),
and only the count per address has a cap, which only an attacker with that many
addresses could use to forget their own. Wall-clock time, since counts outlive the
process; a pause is never longer than `max_pause_s`, whatever the clock did.

    throttle = LoginThrottle(db_file, policy, is_account=accounts.exists, booth=networks)
    admission = throttle.admit("olga", "10.1.1.5")
    if admission.admitted:
        pause_s = throttle.settle(admission, ok=password_right)
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.web.forwarded import Network, parse_address, within

log = logging.getLogger(__name__)

# Usernames that are no account share this many counts.
UNKNOWN_USER_BUCKETS = 1024
# Beyond this many addresses with a count, the quietest are forgotten first.
MAX_ADDRESSES = 10_000
# Addresses remembered per user as "logged in from here" (the newest kept).
REMEMBERED_PER_USER = 8

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS login_failures_last_at ON login_failures (last_at)",
    """CREATE TABLE IF NOT EXISTS login_addresses (
        username TEXT NOT NULL,
        address TEXT NOT NULL,
        last_success_at REAL NOT NULL,
        PRIMARY KEY (username, address)
    )""",
)


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 5  # per username (or per username at a remembered address) before the first pause
    free_failures_per_client: int = 20  # per client address
    pause_s: float = 30.0  # the first pause; it doubles with each further failure
    max_pause_s: float = 900.0
    forget_after_s: float = 900.0  # a quiet spell this long clears a count
    remember_address_s: float = 30 * 86400.0  # a user's successful login address stays theirs this long


def pause_after(failures: int, free: int, policy: ThrottlePolicy) -> float:
    """How long to refuse logins after `failures` consecutive ones, when `free` cost nothing."""
    if failures < free:
        return 0.0
    # The exponent is bounded: an address that keeps guessing would otherwise overflow it.
    return min(policy.pause_s * 2.0 ** min(failures - free, 64), policy.max_pause_s)


def address_key(client: str) -> str:
    """The address a count is kept for: IPv6 by its /64 (one host can hold a whole one)."""
    address = parse_address(client)
    if address is None:
        return client[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class Admission:
    """The outcome of `admit`: admitted (counted as a failure until settled) or paused."""

    admitted: bool
    wait_s: float
    username: str
    client: str
    keys: tuple[str, ...] = ()  # the counts this attempt was added to
    known_address: bool = False  # the username is counted per this address


class LoginThrottle:
    """Failed-login counts in the console's database; safe from any thread."""

    def __init__(
        self,
        path: str | Path,
        policy: ThrottlePolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        is_account: Callable[[str], bool] = lambda username: True,
        booth: Sequence[Network] = (),
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock
        self.is_account = is_account
        self.booth = tuple(booth)
        self.max_addresses = max_addresses
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # Each login attempt is a commit; under WAL, NORMAL keeps them consistent and skips
        # the fsync per commit a spray would otherwise turn into wear on the board's card.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    # ------------------------------------------------------------------ the login's two steps

    def admit(self, username: str, client: str) -> Admission:
        """Check the pauses in force and, if none, count this attempt as a failure at once."""
        now = self.clock()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                keys, known = self._keys(username, client, now)
                wait_s = self._wait(keys, now)
                if wait_s > 0:
                    self._conn.execute("ROLLBACK")
                    return Admission(False, wait_s, username, client, tuple(k for k, _ in keys), known)
                self._conn.execute("DELETE FROM login_failures WHERE last_at <= ?", [now - self.policy.forget_after_s])
                for key, _ in keys:
                    self._conn.execute(
                        "INSERT INTO login_failures (key, failures, last_at) VALUES (?, 1, ?)"
                        " ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at",
                        [key, now])
                self._cap_addresses()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return Admission(True, 0.0, username, client, tuple(k for k, _ in keys), known)

    def settle(self, admission: Admission, *, ok: bool) -> float:
        """After the password check: a success takes its count back, clears the username's
        count and remembers the address; a failure stays counted. Returns the pause now in
        force for this username at this address (0 after a success)."""
        if not admission.admitted:
            raise ValueError("only an admitted attempt is settled")
        now = self.clock()
        user_key, addr_key = admission.keys
        with self._lock:
            if not ok:
                keys, _ = self._keys(admission.username, admission.client, now)
                return self._wait(keys, now)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM login_failures WHERE key = ?", [user_key])
                self._conn.execute("UPDATE login_failures SET failures = max(failures - 1, 0) WHERE key = ?",
                                   [addr_key])
                self._remember(admission.username, address_key(admission.client), now)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return 0.0

    # ------------------------------------------------------------------ reading

    def wait_s(self, username: str, client: str) -> float:
        """Seconds until this username may be tried from this client; 0 when it may now."""
        now = self.clock()
        with self._lock:
            keys, _ = self._keys(username, client, now)
            return self._wait(keys, now)

    def failures(self, username: str, client: str) -> int:
        """The count that pauses this username at this client (per address when it is theirs)."""
        now = self.clock()
        with self._lock:
            keys, _ = self._keys(username, client, now)
            return self._count(keys[0][0], now)[0]

    def tracked(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM login_failures").fetchone()[0]

    # ------------------------------------------------------------------ internals

    def _keys(self, username: str, client: str, now: float) -> tuple[list[tuple[str, int]], bool]:
        if self.is_account(username):
            user = f"user:{username}"
        else:
            digest = hashlib.sha256(username.encode("utf-8", "replace")).digest()
            user = f"unknown:{int.from_bytes(digest[:4], 'big') % UNKNOWN_USER_BUCKETS}"
        address = address_key(client)
        known = within(client, self.booth) or self._remembered(username, address, now)
        first = f"{user}@{address}" if known else user
        return [(first, self.policy.free_failures), (f"addr:{address}", self.policy.free_failures_per_client)], known

    def _remembered(self, username: str, address: str, now: float) -> bool:
        row = self._conn.execute("SELECT last_success_at FROM login_addresses WHERE username = ? AND address = ?",
                                 [username, address]).fetchone()
        return row is not None and now - row[0] < self.policy.remember_address_s

    def _remember(self, username: str, address: str, now: float) -> None:
        self._conn.execute(
            "INSERT INTO login_addresses (username, address, last_success_at) VALUES (?, ?, ?)"
            " ON CONFLICT (username, address) DO UPDATE SET last_success_at = excluded.last_success_at",
            [username, address, now])
        self._conn.execute(
            "DELETE FROM login_addresses WHERE username = ? AND address NOT IN (SELECT address FROM login_addresses"
            " WHERE username = ? ORDER BY last_success_at DESC LIMIT ?)", [username, username, REMEMBERED_PER_USER])

    def _count(self, key: str, now: float) -> tuple[int, float]:
        row = self._conn.execute("SELECT failures, last_at FROM login_failures WHERE key = ?", [key]).fetchone()
        if row is None or now - row[1] >= self.policy.forget_after_s:
            return 0, now
        return row[0], row[1]

    def _wait(self, keys: list[tuple[str, int]], now: float) -> float:
        longest = 0.0
        for key, free in keys:
            failures, last = self._count(key, now)
            pause = pause_after(failures, free, self.policy)
            longest = max(longest, min(last + pause - now, pause))
        return max(0.0, longest)

    def _cap_addresses(self) -> None:
        # The key range 'addr:' .. 'addr;' is every address count, read through the primary key.
        extra = self._conn.execute("SELECT count(*) FROM login_failures WHERE key >= 'addr:' AND key < 'addr;'"
                                   ).fetchone()[0] - self.max_addresses
        if extra > 0:
            self._conn.execute(
                "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
                " WHERE key >= 'addr:' AND key < 'addr;' ORDER BY last_at LIMIT ?)", [extra])
            log.warning("console_login_addresses_forgotten count=%d cap=%d", extra, self.max_addresses)
