"""Unique, sortable ids for every record that leaves the site.

48 bits of milliseconds since the epoch then 80 random bits, written in Crockford's
base32 (26 characters, the ULID layout), so the centre can sort by id and drop
duplicates without coordination. Ids made within one millisecond by one process are
kept strictly increasing by incrementing the random part.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def new_id(now_ms: int | None = None) -> str:
    """Return a new 26-character id that sorts after every id made before it here."""
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return encode(ms, rand)


def encode(ms: int, rand: int) -> str:
    value = (ms << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def timestamp_ms(id_: str) -> int:
    """The millisecond timestamp an id was made at."""
    value = 0
    for ch in id_[:10]:
        value = (value << 5) | _ALPHABET.index(ch)
    return value
