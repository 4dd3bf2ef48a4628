"""The root of trust for indicator bundles: keys, roles per level, thresholds, rotation.

A minimal version of The Update Framework's rules (TUF specification 1.0, sections
4 "Document formats" and 5.3 "Update the root role"):

- Everything signed is canonical JSON (sorted keys, no spaces, UTF-8), so the bytes a
  signature covers do not depend on who serialised the document.
- A signed document is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}``; a key id
  is the SHA-256 of the raw Ed25519 public key, hex.
- The root document names the keys and the roles: ``root`` (who may sign the next
  root) and one delegated role per level the RAU publishes: ``central``,
  ``region/<region>``, ``site/<site>``, or ``region/*`` / ``site/*`` for every region or
  site without a role of its own. Each role has its own keys and its own threshold (how
  many distinct valid signatures are needed), so a regional desk's key cannot sign the
  central set. A root made before roles per level has one ``indicators`` role that signs
  every level; it is still read (sites installed with it must be able to rotate away
  from it), and never mixed with roles per level.
- A root is installed at provisioning and replaced only by the next version, signed by a
  threshold of the old root's root keys AND of its own root keys (spec 5.3.4-5.3.5).
- The version floors (the last version accepted per slot) survive a rotation. Only the
  new root itself may lower one, by naming its slot in ``reset_floors``, and only when
  the keys of the old role cannot reach the new role's threshold, so the bundles they
  signed cannot be replayed after the reset.

Pure functions over values; `TrustStore` is the only part that touches files, and
writes each file by atomic replace so a power cut leaves the old or the new state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.durable import replace_file

log = logging.getLogger(__name__)

ROOT_ROLE = "root"
LEGACY_ROLE = "indicators"  # before roles per level: one role signed every level
LEVELS = ("central", "region", "site")
MAX_SIGNATURES = 32  # far above any threshold; bounds the work a forged document costs

# central, region/<id>, site/<id>, region/*, site/*; ids as the site file allows them.
_DELEGATED = re.compile(r"central|(region|site)/([A-Za-z0-9][A-Za-z0-9_.-]{0,39}|\*)")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: what signatures are made over and hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def role_name(slot: str) -> str:
    """The role that signs a slot's bundles: ``central:central`` -> ``central``,
    ``region:north`` -> ``region/north``, ``site:bcp-a`` -> ``site/bcp-a``."""
    level, _, scope = slot.partition(":")
    return "central" if level == "central" else f"{level}/{scope}"


def slot_of_role(name: str) -> str:
    """The slot a (non-wildcard) role name signs: the inverse of `role_name`."""
    if name == "central":
        return "central:central"
    level, _, scope = name.partition("/")
    return f"{level}:{scope}"


# --------------------------------------------------------------------------- keys


def generate_key() -> tuple[str, str]:
    """A new Ed25519 signing key: (private seed hex, public key hex)."""
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    return bytes(key).hex(), bytes(key.verify_key).hex()


def public_of(private_hex: str) -> str:
    """The public key (hex) of a private seed (hex)."""
    from nacl.signing import SigningKey

    return bytes(SigningKey(bytes.fromhex(private_hex)).verify_key).hex()


def sign(signed: dict[str, Any], private_keys: list[str]) -> dict[str, Any]:
    """Wrap `signed` with one signature per private key (seed hex)."""
    from nacl.signing import SigningKey

    message = canonical(signed)
    signatures = []
    for private_hex in private_keys:
        key = SigningKey(bytes.fromhex(private_hex))
        signatures.append({"keyid": key_id(bytes(key.verify_key).hex()), "sig": key.sign(message).signature.hex()})
    return {"signed": signed, "signatures": signatures}


def count_valid(document: Any, keys: Mapping[str, str], keyids: Sequence[str]) -> int:
    """How many distinct keys of `keyids` made a valid signature over document["signed"].

    Duplicate signatures by one key count once (TUF 5.3.4: "distinct keys"), so a copied
    signature cannot reach a threshold of two on its own. Anything that is not a
    well-formed signature counts for nothing; this never raises on what a sender wrote.
    """
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        return 0
    message = canonical(document.get("signed"))
    allowed = set(keyids)
    good: set[str] = set()
    for entry in document["signatures"][:MAX_SIGNATURES]:
        if not isinstance(entry, dict):
            continue
        kid, sig = entry.get("keyid"), entry.get("sig")
        if not isinstance(kid, str) or not isinstance(sig, str) or kid in good or kid not in allowed or kid not in keys:
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
    roles: dict[str, Role]  # "root" and the delegated roles (or the legacy "indicators")
    document: dict[str, Any] = field(repr=False, compare=False)
    reset_floors: tuple[str, ...] = ()  # role names whose version floor this root lowers

    @classmethod
    def parse(cls, document: Any) -> Root:
        """Check the shape of a root document; raises ValueError naming the problem."""
        if not isinstance(document, dict) or not isinstance(document.get("signed"), dict):
            raise ValueError("root is not a signed document")
        if not isinstance(document.get("signatures"), list) or len(document["signatures"]) > MAX_SIGNATURES:
            raise ValueError(f"root signatures must be a list of at most {MAX_SIGNATURES}")
        signed = document["signed"]
        if signed.get("type") != "root":
            raise ValueError("document type is not root")
        version = signed.get("version")
        if not _positive_int(version):
            raise ValueError("root version must be a positive integer")
        expires = parse_time(signed.get("expires"))
        keys = _parse_keys(signed.get("keys"))
        roles_raw = signed.get("roles")
        if not isinstance(roles_raw, dict):
            raise ValueError("root roles must be an object")
        if ROOT_ROLE not in roles_raw:
            raise ValueError("role root missing")
        roles = {name: _parse_role(name, role, keys) for name, role in roles_raw.items()}
        signing = [name for name in roles if name != ROOT_ROLE]
        if not signing:
            raise ValueError("the root names no role that signs indicators")
        if LEGACY_ROLE in roles and len(signing) > 1:
            raise ValueError(f"role {LEGACY_ROLE} (every level) cannot be mixed with roles per level")
        reset = signed.get("reset_floors", [])
        if not isinstance(reset, list) or not all(isinstance(n, str) for n in reset) or len(set(reset)) != len(reset):
            raise ValueError("reset_floors must be a list of distinct role names")
        for name in reset:
            if not _DELEGATED.fullmatch(name) or name.endswith("/*"):
                raise ValueError(f"reset_floors: {name!r} is not one level's role (central, region/ID, site/ID)")
        return cls(version=version, expires=expires, keys=keys, roles=roles, document=document,
                   reset_floors=tuple(reset))

    @property
    def legacy(self) -> bool:
        """One role for every level: made before roles per level; rotate away from it."""
        return LEGACY_ROLE in self.roles

    def role_for(self, slot: str) -> tuple[str, Role] | None:
        """The role whose keys must sign `slot`'s bundles: its own role, else its level's
        wildcard (regions and sites only, never central), else the legacy role."""
        name = role_name(slot)
        level = name.split("/", 1)[0]
        for candidate in (name, f"{level}/*" if level != "central" else "", LEGACY_ROLE):
            if candidate in self.roles:
                return candidate, self.roles[candidate]
        return None

    def verifies(self, document: Any, role: str) -> bool:
        spec = self.roles[role]
        return count_valid(document, self.keys, spec.keyids) >= spec.threshold


def make_root(
    *,
    version: int,
    expires: datetime,
    root_keys: Sequence[str],
    root_threshold: int = 1,
    roles: Mapping[str, tuple[Sequence[str], int]] | None = None,
    reset_floors: Sequence[str] = (),
    indicator_keys: Sequence[str] | None = None,
    indicator_threshold: int = 1,
) -> dict[str, Any]:
    """The unsigned body of a root document from public keys (hex).

    `roles` maps each level's role name (``central``, ``region/north``, ``site/*`` ...)
    to its public keys and threshold. `indicator_keys` makes the legacy single
    ``indicators`` role that signs every level (roots made before roles per level, and
    tests of them); it cannot be combined with `roles`.
    """
    delegated: dict[str, tuple[Sequence[str], int]] = dict(roles or {})
    if indicator_keys is not None:
        if delegated:
            raise ValueError("indicator_keys (one role for every level) cannot be mixed with roles per level")
        delegated[LEGACY_ROLE] = (indicator_keys, indicator_threshold)
    all_public = [*root_keys, *(k for keys, _ in delegated.values() for k in keys)]
    body: dict[str, Any] = {
        "type": "root",
        "version": version,
        "expires": format_time(expires),
        "keys": {key_id(k): {"keytype": "ed25519", "public": k} for k in all_public},
        "roles": {
            ROOT_ROLE: {"keyids": [key_id(k) for k in root_keys], "threshold": root_threshold},
            **{name: {"keyids": [key_id(k) for k in keys], "threshold": threshold}
               for name, (keys, threshold) in delegated.items()},
        },
    }
    if reset_floors:
        body["reset_floors"] = list(reset_floors)
    return body


def rotate(trusted: Root, new_document: Any) -> Root:
    """Accept the next root if both the old and the new root keys sign it (TUF 5.3).

    Raises ValueError with the reason otherwise. Expiry of the intermediate root is not
    checked here: a site offline for a year must still be able to walk the chain.
    A floor reset is refused when the keys of the slot's old role could still reach the
    new role's threshold: every bundle they ever signed would be accepted once more.
    """
    new = Root.parse(new_document)
    if new.version != trusted.version + 1:
        raise ValueError(f"root version {new.version} does not follow {trusted.version}")
    if not trusted.verifies(new_document, ROOT_ROLE):
        raise ValueError("new root is not signed by a threshold of the old root keys")
    if not new.verifies(new_document, ROOT_ROLE):
        raise ValueError("new root is not signed by a threshold of its own root keys")
    for name in new.reset_floors:
        slot = slot_of_role(name)
        new_role, old_role = new.role_for(slot), trusted.role_for(slot)
        if new_role is None:
            raise ValueError(f"reset_floors {name}: the new root names no role for it")
        if old_role is not None:
            kept = set(old_role[1].keyids) & set(new_role[1].keyids)
            if len(kept) >= new_role[1].threshold:
                raise ValueError(
                    f"reset_floors {name}: {len(kept)} key(s) of the old role still reach the new threshold of"
                    f" {new_role[1].threshold}, so the bundles they signed could be replayed; replace the keys"
                )
    return new


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _parse_keys(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError("root keys must be an object")
    keys: dict[str, str] = {}
    for kid, key in raw.items():
        if not isinstance(key, dict) or key.get("keytype") != "ed25519":
            raise ValueError(f"key {kid}: only ed25519 keys are accepted")
        public = key.get("public")
        if not isinstance(public, str) or not re.fullmatch(r"[0-9a-f]{64}", public):
            raise ValueError(f"key {kid}: public must be 32 bytes of lower-case hex")
        if key_id(public) != kid:
            raise ValueError(f"key {kid}: id does not match the key")
        keys[kid] = public
    return keys


def _parse_role(name: str, role: Any, keys: dict[str, str]) -> Role:
    if name not in (ROOT_ROLE, LEGACY_ROLE) and not _DELEGATED.fullmatch(name):
        raise ValueError(f"role {name!r}: not root, central, region/ID, site/ID, region/* or site/*")
    if not isinstance(role, dict):
        raise ValueError(f"role {name} must be an object")
    keyids, threshold = role.get("keyids"), role.get("threshold")
    if not isinstance(keyids, list) or not all(isinstance(k, str) and k in keys for k in keyids):
        raise ValueError(f"role {name}: keyids must be a list of the root's key ids")
    if not isinstance(threshold, int) or not _positive_int(threshold) or threshold > len(set(keyids)):
        raise ValueError(f"role {name}: threshold must be between 1 and its number of keys")
    return Role(tuple(keyids), threshold)


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
        """The state after rotating to `root` (which `rotate` accepted).

        The floors stay: a new root, however it lists the roles, is no reason to take an
        older set again. Only the slots the new root names in ``reset_floors`` lose
        theirs: the way out of a fast-forward with a stolen key (TUF 5.3.11), together
        with new keys for that role (`rotate` checks that).
        """
        reset = {slot_of_role(name) for name in root.reset_floors}
        return TrustState(root=root, applied={s: a for s, a in self.applied.items() if s not in reset})

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
        floors_root = root.version
        if state_path.exists():
            body = json.loads(state_path.read_bytes())
            for slot, entry in body.get("applied", {}).items():
                applied[slot] = Applied(entry["version"], entry["sha256"], parse_time(entry["expires"]))
            floors_root = body.get("root_version", root.version)
        if floors_root < root.version:
            # A power cut between the two files of a save: root.json is the rotated root,
            # state.json still holds the floors from before it. Its reset is owed.
            reset = {slot_of_role(name) for name in root.reset_floors}
            applied = {s: a for s, a in applied.items() if s not in reset}
        return TrustState(root=root, applied=applied)

    def save(self, state: TrustState, *, slot: str | None = None, indicators: dict[str, Any] | None = None) -> None:
        """Persist a new state, and the active indicator document of `slot` if given.

        Order matters for a crash in between: the active document is written first, the
        version floor last, so a restart never holds a floor above the set it has. The
        root goes before the floors too: floors lowered by a root's ``reset_floors`` must
        never be on disk while the old root (and its old keys) is still trusted; the
        floors name the root version they belong to, so `load` can finish a reset that a
        crash interrupted.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if slot is not None and indicators is not None:
            (self.dir / "active").mkdir(exist_ok=True)
            replace_file(self.dir / "active" / f"{_slot_file(slot)}.json", canonical(indicators))
        current_root = self.dir / "root.json"
        if not current_root.exists() or json.loads(current_root.read_bytes()) != state.root.document:
            replace_file(current_root, canonical(state.root.document))
        body = {
            "root_version": state.root.version,
            "applied": {
                s: {"version": a.version, "sha256": a.sha256, "expires": format_time(a.expires)}
                for s, a in state.applied.items()
            },
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
    try:
        return parsed.astimezone(UTC)
    except OverflowError as err:  # "9999-12-31T23:00:00-05:00" is past the last UTC year
        raise ValueError(f"time {value!r} is out of range") from err
