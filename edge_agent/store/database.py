"""Opening the agent's database: the one writer, readers, migrations, transactions.

One writer: only the core loop's thread holds a writable `Store` (`Store.open`). Other
threads and commands (the sync publisher, `edge-agent status`) open `Store.reader()`,
which WAL lets them do without blocking the writer; the console and the demo read
through a `StoreView` (view.py), which also serialises its threads.

Durability: customs events are committed with `synchronous=FULL`. WAL with NORMAL may
lose the last commits on power loss, and these boards run on generators; an event is
acted on only after its commit returns, so a lost commit would be an acted-on but
forgotten crossing. The measured cost (see benchmarks/lane_latency.py) is well inside
the lane's budget.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import sqlite_utils

from edge_agent.errors import StoreError
from edge_agent.ownership import give_to_directory_owner
from edge_agent.store.schema import MIGRATIONS

log = logging.getLogger(__name__)


def iso(value: datetime) -> str:
    """Times as the database keeps them: UTC, ISO 8601, milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


class Database:
    """The connection and its life: open, migrate, transactions, close."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.path = path
        self.readonly = readonly

    @classmethod
    def open(cls, path: str | Path) -> Self:
        """The writer: creates the file and migrates it to this agent's schema."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
            # A commit writes every page it touches in full, and a truck makes about a
            # dozen commits: 1 KiB pages instead of SQLite's 4 KiB cut the writes per
            # truck from about 220 KiB to 90 (an SD card wears by what is written).
            # Takes effect on a new file only; an older database keeps its pages.
            conn.execute("PRAGMA page_size=1024")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        store = cls(conn, path, readonly=False)
        store.migrate()
        return store

    @classmethod
    def reader(cls, path: str | Path) -> Self:
        """A read-only connection for another thread or process."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no database at {path}")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=10)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        return cls(conn, path, readonly=True)

    def close(self) -> None:
        self.conn.close()
        if self.readonly:
            give_to_directory_owner(self.path)  # a command's reader must not leave root's -wal/-shm

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} is at schema {current}, newer than this agent "
                f"({len(MIGRATIONS)}): refusing to run an older agent on it"
            )
        for version, migration in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.db.atomic():
                migration(self.db)
                self.conn.execute(f"PRAGMA user_version={version}")
            log.info("store_migrated version=%d path=%s", version, self.path)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: an event and everything written because of it."""
        with self.db.atomic():
            yield

    def _one(self, sql: str, args: list | tuple = ()) -> tuple | None:
        row = self.conn.execute(sql, args).fetchone()
        return tuple(row) if row is not None else None

    def _scalar(self, sql: str, args: list | tuple = ()) -> int:
        row = self.conn.execute(sql, args).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _dicts(self, sql: str, args: list | tuple = ()) -> list[dict]:
        return list(self.db.query(sql, list(args)))
