"""Files a technician's command makes in the agent's data directory belong to the agent.

Technicians run the set-up commands with sudo (installing the root of trust, adding
console users, importing indicator sets), while the service runs as its own user. A
file root creates there would be root's, and the service could read it but never write
it again: the next bundle could not be recorded, nor the next officer's login. So what
such a command creates takes the owner of the directory it was created in, when that
owner is not root. SQLite's -wal and -shm files go with their database, also when a
command only read it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def new_owner(euid: int, directory_uid: int, directory_gid: int) -> tuple[int, int] | None:
    """The (uid, gid) a created file should be given, or None to leave it as it is."""
    if euid != 0 or directory_uid == 0:
        return None
    return directory_uid, directory_gid


def give_to_directory_owner(path: Path) -> None:
    """Give `path` (with everything under it, or its SQLite sidecars) to its directory's owner."""
    path = Path(path)
    if not path.exists():
        return
    directory = path.parent.stat()
    owner = new_owner(os.geteuid(), directory.st_uid, directory.st_gid)
    if owner is None:
        return
    if path.is_dir():
        targets = [path, *path.rglob("*")]
    else:
        targets = [path, *(p for p in (path.with_name(path.name + s) for s in _SQLITE_SIDECARS) if p.exists())]
    for target in targets:
        os.chown(target, *owner, follow_symlinks=False)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only SQLite connection to a database of the agent's, from a command.

    Even a read-only reader of a WAL database creates its -wal and -shm files when they
    are missing (the service stopped and closed them) and leaves them behind. Made by
    root, they would stop the service opening its own database, so they are handed over.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()
        give_to_directory_owner(Path(path))
