"""Signed indicator bundles: what the RAU publishes and what a site accepts.

A bundle message (the MQTT payload) is canonical-enough JSON::

    {"roots":  [<root v+1>, <root v+2>, ...],          # optional rotation chain
     "bundle": {"signed": {...}, "signatures": [...]}}

and the signed part of the bundle is::

    {"type": "indicators", "level": "central" | "region" | "site",
     "scope": "central" | <region id> | <site id>,
     "version": 7, "created": "...Z", "expires": "...Z",
     "kind": "full",  "indicators": {...},            # the indicator-set document
     "sha256": <hex of canonical(indicators)>}
  or "kind": "delta", "base_version": 6, "base_sha256": <hex>, "patch": {...}, "sha256": ...

The indicator document is opaque here (its format belongs to local_rules). A delta is a
patch over the base document (`diff_patch`: per key, and per "id" inside lists of
objects), bound to the base's version and the hash of the base and of the result;
on any mismatch the site falls back to the full bundle, which the hub keeps retained on
the same topic (a delta is published without the retain flag, so it does not replace it).

The slot a bundle is for (``level:scope``, from its signed body, and it must be the slot
of the topic it came on) decides which of the root's roles must sign it: ``central``,
``region/<id>`` or ``site/<id>`` (trust.py), each with its own keys and threshold.

`verify_bundle` is a pure function that applies The Update Framework's checks (TUF 1.0
section 5, and its attack list: arbitrary data, rollback, freeze, fast-forward,
mix-and-match, endless data, wrong target, key compromise). It returns `Accepted`, with
the new trust state the caller persists (`TrustStore.save`) in the same step as it
applies the set, or `BundleRejected` with a reason code; it never raises on bad input:
the payload's size is checked before it is decoded, its nesting before it is parsed,
and every field's type before it is used.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.sync.trust import (
    LEVELS,
    MAX_SIGNATURES,
    Applied,
    Root,
    TrustState,
    TrustStore,
    canonical,
    count_valid,
    format_time,
    parse_time,
    rotate,
    sha256_hex,
    sign,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
# An indicator set nests about 40 levels at most (conditions nest 16 deep, two JSON
# levels each); far deeper is garbage, and json.loads would recurse through it.
MAX_DEPTH = 100
MAX_ROOTS = 64  # a chain of rotations shipped in one message

# Reason codes, stable: they are counted, logged and reported upstream.
REASONS = (
    "oversize",
    "malformed",
    "root_rotation_invalid",
    "root_expired",
    "wrong_scope",
    "unsigned",
    "no_role",
    "bad_signature",
    "below_threshold",
    "expired",
    "rollback",
    "not_newer",
    "delta_base_mismatch",
    "hash_mismatch",
    "verifier_fault",  # a bug in this module, caught at the boundary: see the log
)


@dataclass(frozen=True)
class ActiveSetInfo:
    """The set currently in force for one level and scope (what a delta builds on)."""

    version: int
    sha256: str
    indicators: dict[str, Any] = field(repr=False)
    expires: datetime | None = None


@dataclass(frozen=True)
class Accepted:
    slot: str  # "level:scope"
    level: str
    scope: str
    version: int
    sha256: str
    expires: datetime
    kind: str  # full | delta
    indicators: dict[str, Any] = field(repr=False)
    state: TrustState = field(repr=False)  # persist this with TrustStore.save
    rotated_to: int | None = None  # the new root version, when the message rotated it
    role: str = ""  # the root's role whose keys signed it

    @property
    def label(self) -> str:
        return f"{self.slot}@{self.version}"


@dataclass(frozen=True)
class BundleRejected:
    reason: str
    detail: str = ""
    slot: str = ""
    version: int | None = None
    fallback_full: bool = False  # a delta that does not fit: fetch the retained full bundle

    def report(self, topic: str, site: str) -> dict[str, Any]:
        """The payload the core queues upstream (stream "bundle_rejected")."""
        return {
            "site": site,
            "topic": topic,
            "reason": self.reason,
            "detail": self.detail[:300],
            "slot": self.slot,
            "version": self.version,
        }


def verify_bundle(
    payload: bytes,
    trust: TrustState,
    *,
    site: str,
    region: str,
    now: datetime,
    current: ActiveSetInfo | None,
    expected_slot: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Accepted | BundleRejected:
    """Decide whether `payload` may replace the active set of its level and scope.

    `current` is the active set of the slot this bundle is for (the caller knows it from
    the topic, see `slot_for_topic`); it is needed only to apply a delta.
    `expected_slot` is the slot of the topic it came on: a bundle for another slot is
    refused, so what the topic promises and what the signed body says cannot differ.

    Never raises on what a sender wrote: every malformed structure is a `BundleRejected`
    with its reason. Should a bug slip through, it is logged with its traceback and the
    bundle refused as ``verifier_fault``: the last good set stays either way.
    """
    try:
        return _verify(payload, trust, site=site, region=region, now=now, current=current,
                       expected_slot=expected_slot, max_bytes=max_bytes)
    except Exception as err:  # noqa: BLE001 - the boundary: a refusal, never a crash
        log.exception("bundle_verifier_fault error=%s", type(err).__name__)
        return BundleRejected("verifier_fault", f"{type(err).__name__}: {err}")


def read_message(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any] | BundleRejected:
    """The bundle message as JSON, within the size and depth limits, or why not.

    Size is checked before anything is decoded, depth before anything is parsed; NaN
    and Infinity are refused (canonical JSON cannot carry them, so no signature could).
    """
    # Endless data: refuse before parsing, whatever the broker let through.
    if not isinstance(payload, bytes | bytearray):
        return BundleRejected("malformed", "payload is not bytes")
    if len(payload) > max_bytes:
        return BundleRejected("oversize", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as err:
        return BundleRejected("malformed", f"not UTF-8: {err}")
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        return BundleRejected("malformed", f"nested deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        return BundleRejected("malformed", f"not JSON: {err}")
    if not isinstance(message, dict) or not isinstance(message.get("bundle"), dict):
        return BundleRejected("malformed", "no bundle object")
    return message


def bundle_slot(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    """The slot ("level:scope") a bundle says it is for, or None: for callers without a
    topic (`edge-agent sync verify`) that need the active set a delta applies to."""
    message = read_message(payload, max_bytes)
    if isinstance(message, BundleRejected):
        return None
    signed = message["bundle"].get("signed")
    if not isinstance(signed, dict):
        return None
    level, scope = signed.get("level"), signed.get("scope")
    return f"{level}:{scope}" if level in LEVELS and isinstance(scope, str) else None


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in `text`, without parsing it (no recursion),
    counted up to ``MAX_DEPTH + 1``.

    Brackets inside strings do not count. Each pass removes the innermost empty pairs,
    so the number of passes is the depth; all of it runs in the regular-expression
    engine, a few passes over a few hundred thousand brackets for a large set. For text
    that is not JSON the figure may be off, which only refuses or lets through what
    json.loads refuses anyway.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    while brackets and depth <= MAX_DEPTH:
        inner = _EMPTY_PAIR.sub("", brackets)
        if len(inner) == len(brackets):
            break  # unbalanced: not JSON
        brackets, depth = inner, depth + 1
    return depth


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _verify(
    payload: bytes,
    trust: TrustState,
    *,
    site: str,
    region: str,
    now: datetime,
    current: ActiveSetInfo | None,
    expected_slot: str | None,
    max_bytes: int,
) -> Accepted | BundleRejected:
    message = read_message(payload, max_bytes)
    if isinstance(message, BundleRejected):
        return message

    # Roots first: the bundle is judged by the newest root the site can reach.
    state = trust
    rotated_to = None
    roots = message.get("roots", [])
    if not isinstance(roots, list):
        return BundleRejected("malformed", "roots is not a list")
    if len(roots) > MAX_ROOTS:
        return BundleRejected("malformed", f"{len(roots)} roots in one message, at most {MAX_ROOTS}")
    chain: list[tuple[int, int]] = []
    for index, document in enumerate(roots):
        try:
            chain.append((Root.parse(document).version, index))
        except ValueError as err:
            return BundleRejected("root_rotation_invalid", f"roots[{index}]: {err}")
    for root_version, index in sorted(chain):
        if root_version <= state.root.version:
            continue  # already trusted: a chain may start before where this site stands
        try:
            state = state.with_root(rotate(state.root, roots[index]))
        except ValueError as err:
            return BundleRejected("root_rotation_invalid", f"roots[{index}]: {err}")
        rotated_to = state.root.version
    if state.root.expires <= now:
        # Freeze: an expired root means the RAU has not looked after this site's trust.
        return BundleRejected("root_expired", f"root v{state.root.version} expired {format_time(state.root.expires)}")

    document = message["bundle"]
    signed = document.get("signed")
    if not isinstance(signed, dict) or signed.get("type") != "indicators":
        return BundleRejected("malformed", "bundle is not a signed indicators document")
    level, scope, version = signed.get("level"), signed.get("scope"), signed.get("version")
    kind = signed.get("kind", "full")
    if level not in LEVELS or not isinstance(scope, str) or not scope:
        return BundleRejected("malformed", "signed fields: level or scope not recognised")
    if kind not in ("full", "delta"):
        return BundleRejected("malformed", "signed fields: kind must be full or delta")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return BundleRejected("malformed", "signed fields: version must be a positive integer")
    try:
        expires = parse_time(signed.get("expires"))
    except ValueError as err:
        return BundleRejected("malformed", f"signed fields: expires: {err}")
    slot = f"{level}:{scope}"

    # Wrong target: the scope is inside the signed data, so a region's bundle cannot be
    # replayed on another region's topic, nor a central one on a region's.
    expected = {"central": "central", "region": region, "site": site}[level]
    if scope != expected:
        return BundleRejected("wrong_scope", f"bundle for {slot}, this site is {site} in {region}", slot, version)
    if expected_slot is not None and slot != expected_slot:
        return BundleRejected("wrong_scope", f"bundle for {slot} on the topic of {expected_slot}", slot, version)

    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return BundleRejected("unsigned", "no signatures", slot, version)
    if len(signatures) > MAX_SIGNATURES:
        return BundleRejected("malformed", f"{len(signatures)} signatures, at most {MAX_SIGNATURES}", slot, version)
    # Each level has its own role: a regional desk's key cannot sign the central set.
    found = state.root.role_for(slot)
    if found is None:
        return BundleRejected("no_role", f"root v{state.root.version} names no role for {slot}", slot, version)
    role_label, role = found
    valid = count_valid(document, state.root.keys, role.keyids)
    if valid == 0:
        return BundleRejected("bad_signature", f"no valid signature by a key of role {role_label}", slot, version)
    if valid < role.threshold:
        return BundleRejected(
            "below_threshold", f"{valid} of {role.threshold} signatures of role {role_label}", slot, version
        )

    if expires <= now:
        return BundleRejected("expired", f"expired {format_time(expires)}", slot, version)

    floor = state.applied.get(slot)
    if floor is not None and version < floor.version:
        return BundleRejected("rollback", f"version {version} < active {floor.version}", slot, version)
    if floor is not None and version == floor.version:
        return BundleRejected("not_newer", f"version {version} is already active", slot, version)

    indicators: Any
    if kind == "delta":
        base_version, base_sha = signed.get("base_version"), signed.get("base_sha256")
        if (
            current is None
            or floor is None
            or base_version != current.version
            or base_sha != current.sha256
            or current.version != floor.version
        ):
            have = f"{current.version}/{current.sha256[:12]}" if current else "nothing"
            return BundleRejected(
                "delta_base_mismatch", f"delta on {base_version!r}, site has {have}", slot, version, fallback_full=True
            )
        patch = signed.get("patch")
        if not isinstance(patch, dict):
            return BundleRejected("malformed", "delta without a patch object", slot, version)
        try:
            indicators = apply_patch(current.indicators, patch)
        except ValueError as err:
            return BundleRejected("malformed", f"delta patch does not apply: {err}", slot, version, fallback_full=True)
    else:
        indicators = signed.get("indicators")
    if not isinstance(indicators, dict):
        return BundleRejected("malformed", "indicators is not an object", slot, version)
    digest = sha256_hex(indicators)
    if signed.get("sha256") != digest:
        return BundleRejected(
            "hash_mismatch",
            "resulting set does not match the signed hash",
            slot,
            version,
            fallback_full=kind == "delta",
        )
    return Accepted(
        slot=slot,
        level=level,
        scope=scope,
        version=version,
        sha256=digest,
        expires=expires,
        kind=kind,
        indicators=indicators,
        state=state.with_applied(slot, Applied(version, digest, expires)),
        rotated_to=rotated_to,
        role=role_label,
    )


def is_stale(active: ActiveSetInfo | None, now: datetime) -> bool:
    """Past its expiry an active set still decides, but the lane shows STALE."""
    return active is None or (active.expires is not None and active.expires <= now)


def slot_for_topic(topic: str, site: str, region: str) -> str:
    """The slot a topic's bundles are for (what `current` must describe)."""
    if topic.endswith("/indicators/central"):
        return "central:central"
    if "/indicators/region/" in topic:
        return f"region:{topic.rsplit('/', 1)[1]}"
    return f"site:{site}"


# --------------------------------------------------------------------------- building


def _header(kind: str, level: str, scope: str, version: int, expires: datetime, created: datetime) -> dict[str, Any]:
    """What every bundle body starts with, full or delta."""
    return {"type": "indicators", "level": level, "scope": scope, "version": version,
            "created": format_time(created), "expires": format_time(expires), "kind": kind}


def build_full(
    indicators: dict[str, Any], *, level: str, scope: str, version: int, expires: datetime, created: datetime
) -> dict[str, Any]:
    return {**_header("full", level, scope, version, expires, created),
            "indicators": indicators, "sha256": sha256_hex(indicators)}


def build_delta(
    base: dict[str, Any],
    base_version: int,
    target: dict[str, Any],
    *,
    level: str,
    scope: str,
    version: int,
    expires: datetime,
    created: datetime,
) -> dict[str, Any]:
    """A delta body: the patch from `base` to `target` (see `diff_patch`)."""
    patch = diff_patch(base, target)
    if canonical(apply_patch(base, patch)) != canonical(target):
        raise ValueError("the delta does not reproduce the target: publish a full bundle")
    return {**_header("delta", level, scope, version, expires, created), "base_version": base_version,
            "base_sha256": sha256_hex(base), "patch": patch, "sha256": sha256_hex(target)}


def pack(signed: dict[str, Any], private_keys: list[str], roots: list[dict[str, Any]] | None = None) -> bytes:
    """Sign and wrap a bundle body into the MQTT payload."""
    message: dict[str, Any] = {"bundle": sign(signed, private_keys)}
    if roots:
        message["roots"] = roots
    return canonical(message)


def apply_patch(base: Any, patch: Any) -> dict[str, Any]:
    """Apply a delta patch (see `diff_patch`) to a JSON object; returns a new object.

    A patch that does not fit its base, or is not shaped as `diff_patch` makes them,
    raises ValueError naming what is wrong (and nothing else: the patch comes off the
    wire, signed or not).
    """
    if not isinstance(base, dict) or not isinstance(patch, dict):
        raise ValueError("a patch applies to an object")
    unknown = set(patch) - _PATCH_OPS
    if unknown:
        raise ValueError(f"unknown patch operations {sorted(unknown)}")
    result = dict(base)
    for key in _list_of(patch.get("del", []), str, "del"):
        result.pop(key, None)
    for key, value in _object(patch.get("set", {}), "set").items():
        result[key] = value
    for key, sub in _object(patch.get("sub", {}), "sub").items():
        result[key] = apply_patch(result.get(key, {}), sub)
    for key, items in _object(patch.get("items", {}), "items").items():
        result[key] = _apply_items(result.get(key, []), _object(items, f"items.{key}"), key)
    return result


_PATCH_OPS = frozenset({"del", "set", "sub", "items"})
_ITEM_OPS = frozenset({"upsert", "remove", "order"})


def _apply_items(current: Any, items: dict[str, Any], key: str) -> list[Any]:
    """One list of objects with unique "id"s, patched element by element."""
    if set(items) - _ITEM_OPS:
        raise ValueError(f"items.{key}: unknown operations {sorted(set(items) - _ITEM_OPS)}")
    existing = _list_of(current, dict, key)
    if not all(isinstance(item.get("id"), str) for item in existing):
        raise ValueError(f"{key}: not every element has a string id")
    removed = set(_list_of(items.get("remove", []), str, f"items.{key}.remove"))
    upserts: dict[str, Any] = {}
    for item in _list_of(items.get("upsert", []), dict, f"items.{key}.upsert"):
        if not isinstance(item.get("id"), str):
            raise ValueError(f"items.{key}.upsert: an element without a string id")
        upserts[item["id"]] = item
    merged = [upserts.pop(item["id"], item) for item in existing if item["id"] not in removed]
    merged += list(upserts.values())
    if "order" in items:
        by_id = {item["id"]: item for item in merged}
        order = _list_of(items["order"], str, f"items.{key}.order")
        missing = [i for i in order if i not in by_id]
        if missing:
            raise ValueError(f"items.{key}.order names unknown ids {missing[:5]}")
        merged = [by_id[i] for i in order]
    return merged


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object")
    return value


def _list_of(value: Any, kind: type, where: str) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise ValueError(f"{where} must be a list of {kind.__name__}")
    return value


def diff_patch(base: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The patch that turns `base` into `target`.

    Objects are patched key by key ("set", "del", "sub"); a list whose elements are all
    objects with a unique string "id" (indicators, list entries) is patched element by
    element ("items": upsert, remove, and the order when it changed); any other value is
    replaced whole. So a delta that retunes one indicator of a thousand is one indicator.
    """
    patch: dict[str, Any] = {}
    removed = [k for k in base if k not in target]
    if removed:
        patch["del"] = removed
    for key, value in target.items():
        old = base.get(key, _MISSING)
        if old is not _MISSING and _same(old, value):
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            patch.setdefault("sub", {})[key] = diff_patch(old, value)
        elif _keyed(old) and _keyed(value):
            old_by_id = {item["id"]: item for item in old}
            new_ids = [item["id"] for item in value]
            items: dict[str, Any] = {}
            upsert = [item for item in value if not _same(old_by_id.get(item["id"], _MISSING), item)]
            gone = [i for i in old_by_id if i not in set(new_ids)]
            if upsert:
                items["upsert"] = upsert
            if gone:
                items["remove"] = gone
            naive = [i for i in old_by_id if i not in set(gone)] + [i["id"] for i in upsert if i["id"] not in old_by_id]
            if naive != new_ids:
                items["order"] = new_ids
            patch.setdefault("items", {})[key] = items
        else:
            patch.setdefault("set", {})[key] = value
    return patch


def _same(a: Any, b: Any) -> bool:
    return a is not _MISSING and canonical(a) == canonical(b)


def _keyed(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    ids = [item.get("id") if isinstance(item, dict) else None for item in value]
    return all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)


_MISSING = object()


__all__ = [
    "Accepted",
    "ActiveSetInfo",
    "BundleRejected",
    "DEFAULT_MAX_BYTES",
    "REASONS",
    "Root",
    "bundle_slot",
    "build_delta",
    "build_full",
    "is_stale",
    "apply_patch",
    "diff_patch",
    "pack",
    "read_message",
    "slot_for_topic",
    "verify_bundle",
]


def active_set(store: TrustStore, state: TrustState, slot: str) -> ActiveSetInfo | None:
    """The persisted active set of `slot`, as `verify_bundle` wants it for a delta."""
    applied = state.applied.get(slot)
    document = store.active(slot)
    if applied is None or document is None or sha256_hex(document) != applied.sha256:
        return None
    return ActiveSetInfo(applied.version, applied.sha256, document, applied.expires)


def receive(
    store: TrustStore,
    payload: bytes,
    topic: str,
    *,
    site: str,
    region: str,
    now: datetime,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Accepted | BundleRejected:
    """Verify a bundle against the persisted trust state and, if accepted, persist it.

    For a core that keeps indicators only in the trust directory. A core that also
    writes the set into its database should call `verify_bundle`, apply the set in one
    transaction, then `store.save(accepted.state, slot=..., indicators=...)`: a crash in
    between then only means the same bundle is accepted again after the restart.
    """
    state = store.load()
    slot = slot_for_topic(topic, site, region)
    result = verify_bundle(
        payload, state, site=site, region=region, now=now, current=active_set(store, state, slot),
        expected_slot=slot, max_bytes=max_bytes,
    )
    if isinstance(result, Accepted):
        store.save(result.state, slot=result.slot, indicators=result.indicators)
    return result
