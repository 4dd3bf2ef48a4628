"""The root of trust for indicator bundles: keys, roles, thresholds, root rotation.

A minimal version of The Update Framework's rules (TUF specification 1.0, sections
4 "Document formats" and 5.3 "Update the root role"):

- Everything signed is canonical JSON (sorted keys, no spaces, UTF-8), so the bytes a
  signature covers do not depend on who serialised the document.
- A signed document is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}``; a key id
  is the SHA-256 of the raw Ed25519 public key, hex.
- The root document names the keys and, per role (``root``, ``indicators``), which keys
  may sign and how many distinct valid signatures (the threshold) are needed.
- A root is installed at provisioning and replaced only by the next version, signed by a
  threshold of the old root's root keys AND of its own root keys (spec 5.3.4-5.3.5).

Pure functions over values; `TrustStore` is the only part that touches files, and
writes each file by atomic replace so a power cut leaves the old or the new state.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.durable import replace_file

log = logging.getLogger(__name__)

ROLES = ("root", "indicators")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: what signatures are made over and hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


# --------------------------------------------------------------------------- keys


def generate_key() -> tuple[str, str]:
    """A new Ed25519 signing key: (private seed hex, public key hex)."""
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    return bytes(key).hex(), bytes(key.verify_key).hex()


def sign(signed: dict[str, Any], private_keys: list[str]) -> dict[str, Any]:
    """Wrap `signed` with one signature per private key (seed hex)."""
    from nacl.signing import SigningKey

    message = canonical(signed)
    signatures = []
    for private_hex in private_keys:
        key = SigningKey(bytes.fromhex(private_hex))
        signatures.append({"keyid": key_id(bytes(key.verify_key).hex()), "sig": key.sign(message).signature.hex()})
    return {"signed": signed, "signatures": signatures}


def count_valid(document: dict[str, Any], keys: dict[str, str], keyids: list[str]) -> int:
    """How many distinct keys of `keyids` made a valid signature over document["signed"].

    Duplicate signatures by one key count once (TUF 5.3.4: "distinct keys"), so a copied
    signature cannot reach a threshold of two on its own.
    """
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    message = canonical(document["signed"])
    good: set[str] = set()
    for entry in document.get("signatures", []):
        if not isinstance(entry, dict):
            continue
        kid, sig = entry.get("keyid"), entry.get("sig")
        if kid in good or kid not in keyids or kid not in keys or not isinstance(sig, str):
            continue
        try:
            VerifyKey(bytes.fromhex(keys[kid])).verify(message, bytes.fromhex(sig))
        except (BadSignatureError, ValueError, TypeError):
            continue
        good.add(kid)
    return len(good)


# --------------------------------------------------------------------------- root


@dataclass(frozen=True)
class Role:
    keyids: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Root:
    """The validated content of a root document."""

    version: int
    expires: datetime
    keys: dict[str, str]  # keyid -> public key hex
    roles: dict[str, Role]
    document: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, document: Any) -> Root:
        """Check the shape of a root document; raises ValueError naming the problem."""
        if not isinstance(document, dict) or not isinstance(document.get("signed"), dict):
            raise ValueError("root is not a signed document")
        signed = document["signed"]
        if signed.get("type") != "root":
            raise ValueError("document type is not root")
        version = signed.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError("root version must be a positive integer")
        expires = parse_time(signed.get("expires"))
        keys_raw = signed.get("keys")
        if not isinstance(keys_raw, dict):
            raise ValueError("root keys missing")
        keys: dict[str, str] = {}
        for kid, key in keys_raw.items():
            if not isinstance(key, dict) or key.get("keytype") != "ed25519" or not isinstance(key.get("public"), str):
                raise ValueError(f"key {kid}: only ed25519 keys are accepted")
            if key_id(key["public"]) != kid:
                raise ValueError(f"key {kid}: id does not match the key")
            keys[kid] = key["public"]
        roles: dict[str, Role] = {}
        for name in ROLES:
            role = signed.get("roles", {}).get(name)
            if not isinstance(role, dict):
                raise ValueError(f"role {name} missing")
            keyids, threshold = role.get("keyids"), role.get("threshold")
            if not isinstance(keyids, list) or not all(k in keys for k in keyids):
                raise ValueError(f"role {name} names unknown keys")
            if not isinstance(threshold, int) or threshold < 1 or threshold > len(set(keyids)):
                raise ValueError(f"role {name}: threshold must be between 1 and its number of keys")
            roles[name] = Role(tuple(keyids), threshold)
        return cls(version=version, expires=expires, keys=keys, roles=roles, document=document)

    def verifies(self, document: dict[str, Any], role: str) -> bool:
        spec = self.roles[role]
        return count_valid(document, self.keys, list(spec.keyids)) >= spec.threshold


def make_root(
    *,
    version: int,
    expires: datetime,
    root_keys: list[str],
    indicator_keys: list[str],
    root_threshold: int = 1,
    indicator_threshold: int = 1,
) -> dict[str, Any]:
    """The unsigned body of a root document from public keys (hex)."""
    keys = {key_id(k): {"keytype": "ed25519", "public": k} for k in [*root_keys, *indicator_keys]}
    return {
        "type": "root",
        "version": version,
        "expires": format_time(expires),
        "keys": keys,
        "roles": {
            "root": {"keyids": [key_id(k) for k in root_keys], "threshold": root_threshold},
            "indicators": {"keyids": [key_id(k) for k in indicator_keys], "threshold": indicator_threshold},
        },
    }


def rotate(trusted: Root, new_document: Any) -> Root:
    """Accept the next root if both the old and the new root keys sign it (TUF 5.3).

    Raises ValueError with the reason otherwise. Expiry of the intermediate root is not
    checked here: a site offline for a year must still be able to walk the chain.
    """
    new = Root.parse(new_document)
    if new.version != trusted.version + 1:
        raise ValueError(f"root version {new.version} does not follow {trusted.version}")
    if not trusted.verifies(new_document, "root"):
        raise ValueError("new root is not signed by a threshold of the old root keys")
    if not new.verifies(new_document, "root"):
        raise ValueError("new root is not signed by a threshold of its own root keys")
    return new


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Applied:
    """The last accepted bundle of one level and scope."""

    version: int
    sha256: str  # of the canonical indicator document
    expires: datetime


@dataclass(frozen=True)
class TrustState:
    """What verification needs to know: the trusted root and the version floors."""

    root: Root
    applied: dict[str, Applied] = field(default_factory=dict)  # "level:scope" -> last accepted

    def with_root(self, root: Root) -> TrustState:
        # A rotated indicators role wipes the version floors: after a fast-forward attack
        # with a stolen key, rotating that key is the recovery (TUF 5.3.11).
        if root.roles["indicators"] != self.root.roles["indicators"]:
            return TrustState(root=root, applied={})
        return TrustState(root=root, applied=dict(self.applied))

    def with_applied(self, slot: str, applied: Applied) -> TrustState:
        return TrustState(root=self.root, applied={**self.applied, slot: applied})


class TrustStore:
    """The trust state on disk: ``root.json``, ``state.json`` and the active sets.

    The root must be installed at provisioning (`install_root`); after that it changes
    only through `save`, with a root that `rotate` accepted. Every file is written to a
    temporary name, fsynced, then renamed over the old one.
    """

    def __init__(self, dir: Path) -> None:
        self.dir = Path(dir)

    @property
    def installed(self) -> bool:
        return (self.dir / "root.json").exists()

    def install_root(self, document: dict[str, Any]) -> None:
        Root.parse(document)  # shape only: the first root is trusted because of how it got here
        self.dir.mkdir(parents=True, exist_ok=True)
        replace_file(self.dir / "root.json", canonical(document))

    def load(self) -> TrustState:
        root = Root.parse(json.loads((self.dir / "root.json").read_bytes()))
        applied: dict[str, Applied] = {}
        state_path = self.dir / "state.json"
        if state_path.exists():
            for slot, entry in json.loads(state_path.read_bytes()).get("applied", {}).items():
                applied[slot] = Applied(entry["version"], entry["sha256"], parse_time(entry["expires"]))
        return TrustState(root=root, applied=applied)

    def save(self, state: TrustState, *, slot: str | None = None, indicators: dict[str, Any] | None = None) -> None:
        """Persist a new state, and the active indicator document of `slot` if given.

        Order matters for a crash in between: the active document is written first, the
        version floor last, so a restart never holds a floor above the set it has.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if slot is not None and indicators is not None:
            (self.dir / "active").mkdir(exist_ok=True)
            replace_file(self.dir / "active" / f"{_slot_file(slot)}.json", canonical(indicators))
        current_root = self.dir / "root.json"
        if not current_root.exists() or json.loads(current_root.read_bytes()) != state.root.document:
            replace_file(current_root, canonical(state.root.document))
        body = {
            "applied": {
                s: {"version": a.version, "sha256": a.sha256, "expires": format_time(a.expires)}
                for s, a in state.applied.items()
            }
        }
        replace_file(self.dir / "state.json", canonical(body))

    def active(self, slot: str) -> dict[str, Any] | None:
        path = self.dir / "active" / f"{_slot_file(slot)}.json"
        return json.loads(path.read_bytes()) if path.exists() else None


def _slot_file(slot: str) -> str:
    return slot.replace(":", "--").replace("/", "_")



# --------------------------------------------------------------------------- time


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time must be an ISO 8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("time must carry a time zone")
    return parsed.astimezone(UTC)
