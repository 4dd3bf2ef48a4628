"""Signing an approved draft: each person signs with their own key, the bundles go to
the hub's release path (`central.release.release`, as `central release` does).

Keys live in the console's keys directory (`edge-agent central console --keys-dir`), one
file per user named `<username>.key`, the hex seed `edge-agent central keygen` writes;
never in the ledger. The drafter's submission signs the bundle bodies built at that
moment (version, creation and expiry fixed then); the approver's approval adds their
signature to the same bodies. A role with threshold 2 therefore needs two people: the
drafter's key and the approver's key, both of the role (docs/central.md).

A full bundle always goes out (retained: the fallback a site finds on subscribing);
when an earlier version of the slot was approved here, a delta over it goes out first,
not retained (docs/sync.md, "What a site checks").
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.sync.bundles import build_delta, build_full
from edge_agent.sync.trust import canonical, key_id, public_of, sign

EXPIRES_DAYS = 30
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LABEL_VERSION = re.compile(r"^\w+ bundle (\S+) v(\d+)$")


class NoKey(Exception):
    """The user has no readable signing key in the keys directory."""


def user_key(keys_dir: Path | None, username: str) -> str:
    """The user's private key (hex); raises NoKey saying why not."""
    if keys_dir is None:
        raise NoKey("the console has no keys directory (--keys-dir): it cannot sign")
    if not _USER.match(username):
        raise NoKey(f"{username!r} cannot name a key file")
    path = Path(keys_dir) / f"{username}.key"
    try:
        text = path.read_text(encoding="utf-8").strip()
        public_of(text)
    except OSError:
        raise NoKey(f"no signing key for {username} ({path.name} in the keys directory)") from None
    except ValueError:
        raise NoKey(f"{path.name} is not a signing key") from None
    return text


def next_version(slot: str, approved: list[int], released_labels: list[str]) -> int:
    """One above every version of `slot` approved here or released through the hub
    (`central release`: its labels name slot and version, release.py)."""
    versions = list(approved)
    for label in released_labels:
        found = _LABEL_VERSION.match(label)
        if found and found.group(1) == slot:
            versions.append(int(found.group(2)))
    return max(versions, default=0) + 1


def bodies(document: dict[str, Any], *, level: str, scope: str, version: int, now: datetime,
           base: tuple[int, dict[str, Any]] | None) -> dict[str, Any]:
    """The unsigned bundle bodies: {"full": body, "delta": body or None}."""
    expires = now + timedelta(days=EXPIRES_DAYS)
    full = build_full(document, level=level, scope=scope, version=version, expires=expires, created=now)
    delta = None
    if base is not None:
        try:
            delta = build_delta(base[1], base[0], document, level=level, scope=scope, version=version,
                                expires=expires, created=now)
        except ValueError:
            delta = None  # the patch cannot reproduce the set: the full bundle alone
    return {"full": full, "delta": delta}


def add_signature(signed: dict[str, Any], private_key: str) -> dict[str, Any]:
    """Each bundle with one more signature, by `private_key` ({"full": {signed, signatures}, ...})."""
    out: dict[str, Any] = {}
    for kind, document in signed.items():
        if document is None:
            out[kind] = None
            continue
        body = document.get("signed", document)
        mine = sign(body, [private_key])["signatures"]
        out[kind] = {"signed": body, "signatures": [*document.get("signatures", []), *mine]}
    return out


def signers(signed: dict[str, Any]) -> list[str]:
    """The key ids that signed the full bundle."""
    full = signed.get("full") or {}
    return [s.get("keyid", "") for s in full.get("signatures", [])]


def payloads(signed: dict[str, Any]) -> list[bytes]:
    """The MQTT payloads to release, delta first (see the module's docstring)."""
    return [canonical({"bundle": signed[kind]}) for kind in ("delta", "full") if signed.get(kind)]


def keyid_of(private_key: str) -> str:
    return key_id(public_of(private_key))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
