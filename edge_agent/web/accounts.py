"""Users, passwords, sessions and CSRF tokens for the project's web consoles (the
officers' console at a site, the RAU's console at the hub); each console brings its own
roles (a `StrEnum`) and what each may do.

Passwords are hashed with Argon2id (argon2-cffi's PasswordHasher) at the OWASP Password
Storage Cheat Sheet's minimum (m=19 MiB, t=2, p=1) rather than the library's 64 MiB
default: the officers' console shares a Raspberry Pi's memory with two lanes of OpenCV. They are
never stored or logged in clear; older hashes are upgraded at the next login. A session
is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only its SHA-256, so a copied console.db
does not hand out live sessions. Each session has its own CSRF token, which every form
posts back (synchroniser token pattern, OWASP CSRF Prevention Cheat Sheet).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)


USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class User:
    username: str
    role: StrEnum
    full_name: str = ""
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires: float


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        full_name TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        token_sha256 TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires REAL NOT NULL
    )""",
)


class Accounts:
    """Users and sessions in the console's own SQLite file; safe from any thread.

    `roles` is the console's role enum: a stored role is read back as one of its members."""

    def __init__(self, path: str | Path, roles: type[StrEnum], session_ttl_s: float = 8 * 3600.0) -> None:
        self.path = Path(path)
        self.roles = roles
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session_ttl_s = session_ttl_s
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        with self._lock, self._conn:
            for statement in _SCHEMA:
                self._conn.execute(statement)
        # Verifying against a dummy hash for unknown users keeps login time the same,
        # so the login page does not tell which usernames exist.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    def close(self) -> None:
        self._conn.close()

    # ------------------------------------------------------------------ users

    def add_user(self, username: str, role: str, password: str, full_name: str = "", *,
                 replace: bool = False) -> User:
        """Create (or with replace=True, reset) a user; raises ValueError on a bad name, role or password."""
        problems = user_problems(username, role, password, self.roles)
        if problems:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
        digest = self._hasher.hash(password)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._lock, self._conn:
            try:
                self._conn.execute(
                    f"{verb} INTO users (username, role, full_name, password_hash, disabled, created_at)"
                    " VALUES (?, ?, ?, ?, 0, ?)", [username, role, full_name, digest, time.time()])
            except sqlite3.IntegrityError as err:
                raise ValueError(f"username: {username!r} exists") from err
            if replace:
                self._conn.execute("DELETE FROM sessions WHERE username = ?", [username])
        log.info("console_user_saved user=%s role=%s", username, role)
        return User(username, self.roles(role), full_name)

    def users(self, *, include_disabled: bool = False) -> list[User]:
        where = "" if include_disabled else "WHERE disabled = 0 "
        with self._lock:
            rows = self._conn.execute(
                f"SELECT username, role, full_name, disabled FROM users {where}ORDER BY username").fetchall()
        return [User(r[0], self.roles(r[1]), r[2], bool(r[3])) for r in rows]

    def set_disabled(self, username: str, disabled: bool) -> int:
        """Disable (or enable) a user; disabling ends their sessions. Returns the sessions ended.

        Raises ValueError for an unknown user."""
        with self._lock, self._conn:
            if self._conn.execute("UPDATE users SET disabled = ? WHERE username = ?",
                                  [int(disabled), username]).rowcount == 0:
                raise ValueError(f"no user {username!r}")
            ended = self._conn.execute("DELETE FROM sessions WHERE username = ?", [username]).rowcount \
                if disabled else 0
        log.info("console_user_%s user=%s sessions_ended=%d", "disabled" if disabled else "enabled", username, ended)
        return ended

    def exists(self, username: str) -> bool:
        """Whether this username is an account (disabled or not): the login throttle counts
        real accounts one by one and invented names together."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone() is not None

    def authenticate(self, username: str, password: str) -> User | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT role, full_name, password_hash FROM users WHERE username = ? AND disabled = 0", [username]
            ).fetchone()
        stored = row[2] if row else self._dummy_hash
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._lock, self._conn:
                self._conn.execute("UPDATE users SET password_hash = ? WHERE username = ?",
                                   [self._hasher.hash(password), username])
        return User(username, self.roles(row[0]), row[1])

    # ------------------------------------------------------------------ sessions

    def open_session(self, user: User) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.time() + self.session_ttl_s)
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM sessions WHERE expires < ?", [time.time()])
            self._conn.execute("INSERT INTO sessions (token_sha256, username, csrf, expires) VALUES (?, ?, ?, ?)",
                               [_sha(token), user.username, session.csrf, session.expires])
        return token, session

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT s.csrf, s.expires, u.username, u.role, u.full_name FROM sessions s"
                " JOIN users u ON u.username = s.username WHERE s.token_sha256 = ? AND u.disabled = 0",
                [_sha(token)]).fetchone()
        if row is None or row[1] < time.time():
            return None
        return Session(User(row[2], self.roles(row[3]), row[4]), row[0], row[1])

    def close_session(self, token: str | None) -> None:
        if token:
            with self._lock, self._conn:
                self._conn.execute("DELETE FROM sessions WHERE token_sha256 = ?", [_sha(token)])


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted)


def user_problems(username: str, role: str, password: str, roles: type[StrEnum]) -> dict[str, str]:
    problems = {}
    if not USERNAME.match(username or ""):
        problems["username"] = "2-40 characters: lower-case letters, digits, '.', '_' or '-'"
    if role not in {r.value for r in roles}:
        problems["role"] = f"one of {', '.join(r.value for r in roles)}"
    if len(password or "") < MIN_PASSWORD:
        problems["password"] = f"at least {MIN_PASSWORD} characters"
    return problems


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
