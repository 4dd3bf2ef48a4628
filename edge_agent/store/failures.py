"""Which errors mean the storage itself failed (the disk is full, the card gives I/O
errors), as opposed to a bug: the core keeps the event and waits for the storage to
come back on the first kind, and records a rejection on the second."""

from __future__ import annotations

import errno
import sqlite3

# SQLite's primary result codes (the low byte of an extended code).
_FULL = {sqlite3.SQLITE_FULL}
_IO = {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL}
_OS_FULL = {errno.ENOSPC, errno.EDQUOT}
_OS_IO = {errno.EIO, errno.EROFS}


def storage_failure(err: BaseException | None) -> str:
    """"disk_full", "io_error", or "" when `err` (or what caused it) is not a storage failure."""
    seen = 0
    while err is not None and seen < 8:
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(err, sqlite3.Error) and code is not None:
            if code & 0xFF in _FULL:
                return "disk_full"
            if code & 0xFF in _IO:
                return "io_error"
        if isinstance(err, OSError) and err.errno is not None:
            if err.errno in _OS_FULL:
                return "disk_full"
            if err.errno in _OS_IO:
                return "io_error"
        err = err.__cause__ or err.__context__
        seen += 1
    return ""
