"""One test per attack on signed indicator bundles (TUF's attack list).

Each attack runs against a site that has accepted v4 then v5 of the central set. After
the attack the active set must be unchanged, in memory and after a restart (a new
TrustStore over the same directory), and the same attack must still fail after it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.sync import topics
from edge_agent.sync.bundles import (
    Accepted,
    BundleRejected,
    apply_patch,
    build_delta,
    build_full,
    diff_patch,
    pack,
    receive,
    verify_bundle,
)
from edge_agent.sync.trust import TrustStore, canonical, generate_key, make_root, sha256_hex, sign

NOW = datetime.now(UTC)
SITE, REGION = "bcp-merdare", "north"
TOPIC = topics.INDICATORS_CENTRAL


def indicators(n: int) -> dict:
    return {
        "set": "central",
        "indicators": [{"id": f"IND-{i}", "channel": "red", "plate": f"AB{i:03d}"} for i in range(n)],
    }


class Keys:
    def __init__(self) -> None:
        self.root = generate_key()
        self.ind = [generate_key(), generate_key()]

    def root_document(self, version: int = 1, expires: datetime | None = None) -> dict:
        body = make_root(
            version=version,
            expires=expires or NOW + timedelta(days=365),
            root_keys=[self.root[1]],
            indicator_keys=[k[1] for k in self.ind],
            indicator_threshold=2,
        )
        return sign(body, [self.root[0]])


def bundle(
    keys: list[str], version: int, doc: dict, *, level="central", scope="central", expires_days=30.0, roots=None
) -> bytes:
    body = build_full(
        doc, level=level, scope=scope, version=version, expires=NOW + timedelta(days=expires_days), created=NOW
    )
    return pack(body, keys, roots)


@pytest.fixture()
def site(tmp_path: Path):
    keys = Keys()
    store = TrustStore(tmp_path / "trust")
    store.install_root(keys.root_document())
    signers = [k[0] for k in keys.ind]
    for version in (4, 5):
        doc = indicators(version) if version == 4 else indicators(40)
        result = receive(store, bundle(signers, version, doc), TOPIC, site=SITE, region=REGION, now=NOW)
        assert isinstance(result, Accepted), result
    return keys, store, signers


def snapshot(store: TrustStore) -> tuple:
    state = store.load()
    return state.root.version, state.applied, store.active("central:central")


def attack(
    store: TrustStore,
    payload: bytes,
    reason: str,
    topic: str = TOPIC,
    now: datetime = NOW,
    max_bytes: int | None = None,
) -> BundleRejected:
    before = snapshot(store)
    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    result = receive(store, payload, topic, site=SITE, region=REGION, now=now, **kwargs)
    assert isinstance(result, BundleRejected), result
    assert result.reason == reason, result
    assert snapshot(store) == before
    restarted = TrustStore(store.dir)
    assert snapshot(restarted) == before
    again = receive(restarted, payload, topic, site=SITE, region=REGION, now=now, **kwargs)
    assert isinstance(again, BundleRejected) and again.reason == reason
    assert snapshot(TrustStore(store.dir)) == before
    assert snapshot(TrustStore(store.dir))[2] == indicators(40)
    return result


def test_setup_holds_version_5(site):
    _, store, _ = site
    version, applied, active = snapshot(store)
    assert applied["central:central"].version == 5 and active == indicators(40)


def test_unsigned(site):
    _, store, _ = site
    attack(store, bundle([], 6, indicators(6)), "unsigned")


def test_wrong_key(site):
    _, store, _ = site
    strangers = [generate_key()[0], generate_key()[0]]
    attack(store, bundle(strangers, 6, indicators(6)), "bad_signature")


def test_tampered_content_breaks_signatures(site):
    _, store, signers = site
    message = json.loads(bundle(signers, 6, indicators(6)))
    message["bundle"]["signed"]["indicators"]["indicators"][0]["channel"] = "green"
    attack(store, canonical(message), "bad_signature")


def test_below_threshold(site):
    _, store, signers = site
    attack(store, bundle(signers[:1], 6, indicators(6)), "below_threshold")


def test_one_key_signing_twice_is_still_below_threshold(site):
    _, store, signers = site
    attack(store, bundle([signers[0], signers[0]], 6, indicators(6)), "below_threshold")


def test_rollback(site):
    _, store, signers = site
    attack(store, bundle(signers, 3, indicators(3)), "rollback")


def test_equal_version(site):
    _, store, signers = site
    attack(store, bundle(signers, 5, indicators(7)), "not_newer")


def test_expired(site):
    _, store, signers = site
    attack(store, bundle(signers, 6, indicators(6), expires_days=-1), "expired")


def test_oversize(site):
    _, store, signers = site
    big = bundle(signers, 6, {"padding": "x" * 200_000})
    attack(store, big, "oversize", max_bytes=100_000)


def test_wrong_scope_region(site):
    _, store, signers = site
    other = bundle(signers, 6, indicators(6), level="region", scope="south")
    attack(store, other, "wrong_scope", topic=topics.indicators_region(REGION))


def test_wrong_scope_site(site):
    _, store, signers = site
    other = bundle(signers, 6, indicators(6), level="site", scope="bcp-other")
    attack(store, other, "wrong_scope", topic=topics.down(SITE, "indicators"))


def test_truncated(site):
    _, store, signers = site
    payload = bundle(signers, 6, indicators(6))
    attack(store, payload[: len(payload) // 2], "malformed")


def test_replay_of_an_old_valid_bundle(site):
    _, store, signers = site
    old = bundle(signers, 4, indicators(4))  # signed correctly, was once accepted
    attack(store, old, "rollback")


def test_delta_on_the_wrong_base_then_full_bundle(site):
    _, store, signers = site
    body = build_delta(
        indicators(4),
        4,
        indicators(6),
        level="central",
        scope="central",
        version=6,
        expires=NOW + timedelta(days=3),
        created=NOW,
    )
    rejected = attack(store, pack(body, signers), "delta_base_mismatch")
    assert rejected.fallback_full
    full = receive(store, bundle(signers, 6, indicators(6)), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(full, Accepted) and full.version == 6


def test_delta_on_the_right_base_applies(site):
    _, store, signers = site
    target = indicators(40)
    target["indicators"][1]["channel"] = "yellow"
    del target["indicators"][4]
    target["note"] = "tuned"
    body = build_delta(
        indicators(40),
        5,
        target,
        level="central",
        scope="central",
        version=6,
        expires=NOW + timedelta(days=3),
        created=NOW,
    )
    payload = pack(body, signers)
    assert len(payload) < len(bundle(signers, 6, target))
    result = receive(store, payload, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, Accepted) and result.kind == "delta"
    assert TrustStore(store.dir).active("central:central") == target


def test_fast_forward_then_recovery_through_key_rotation(site):
    keys, store, signers = site
    # A stolen indicators key pair signs an absurd version: indistinguishable from the RAU.
    forward = bundle(signers, 2_000_000_000, {"evil": True})
    assert isinstance(receive(store, forward, TOPIC, site=SITE, region=REGION, now=NOW), Accepted)
    # The RAU's real next version is now refused as a rollback: the site is frozen out.
    real = bundle(signers, 6, indicators(6))
    attack_result = receive(store, real, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(attack_result, BundleRejected) and attack_result.reason == "rollback"
    # Recovery: root v2 names new indicator keys, signed by the old root key and the new one.
    new_root_key = generate_key()
    new_ind = [generate_key(), generate_key()]
    body = make_root(
        version=2,
        expires=NOW + timedelta(days=365),
        root_keys=[new_root_key[1]],
        indicator_keys=[k[1] for k in new_ind],
        indicator_threshold=2,
    )
    root2 = sign(body, [keys.root[0], new_root_key[0]])
    recovered = bundle([k[0] for k in new_ind], 6, indicators(6), roots=[root2])
    result = receive(store, recovered, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, Accepted) and result.rotated_to == 2
    restarted = TrustStore(store.dir)
    assert restarted.load().root.version == 2
    assert restarted.active("central:central") == indicators(6)
    # The attacker's bundle, signed by the retired keys, is now refused, also after restart.
    replay = receive(restarted, forward, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(replay, BundleRejected) and replay.reason == "bad_signature"


def test_root_rotation_signed_only_by_the_new_key(site):
    keys, store, signers = site
    new_root_key = generate_key()
    body = make_root(
        version=2, expires=NOW + timedelta(days=365), root_keys=[new_root_key[1]], indicator_keys=[generate_key()[1]]
    )
    rogue = sign(body, [new_root_key[0]])
    attack(store, bundle(signers, 6, indicators(6), roots=[rogue]), "root_rotation_invalid")


def test_expired_root_freezes_updates(site):
    _, store, signers = site
    attack(store, bundle(signers, 6, indicators(6)), "root_expired", now=NOW + timedelta(days=400))


def test_verify_bundle_is_pure(site):
    _, store, signers = site
    state = store.load()
    result = verify_bundle(bundle(signers, 9, indicators(9)), state, site=SITE, region=REGION, now=NOW, current=None)
    assert isinstance(result, Accepted) and result.state.applied["central:central"].version == 9
    assert store.load().applied["central:central"].version == 5
    assert state.applied["central:central"].version == 5


@pytest.mark.parametrize(
    "base,target",
    [
        ({"a": 1, "b": None}, {"a": 2, "c": None}),
        ({"x": {"y": 1, "z": [1, 2]}}, {"x": {"y": 1, "z": [2]}, "w": {}}),
        (
            {"l": [{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "c"}]},
            {"l": [{"id": "c"}, {"id": "a", "v": 9}, {"id": "d"}]},
        ),
        ({"l": [{"id": "a"}, {"id": "b"}]}, {"l": [{"id": "b"}, {"id": "a"}]}),
        ({"l": [1, 2]}, {"l": [{"id": "a"}]}),
        ({}, {"format": "x", "expires_at": None}),
    ],
)
def test_patch_round_trip(base, target):
    assert apply_patch(base, diff_patch(base, target)) == target


def test_patch_of_one_changed_indicator_names_only_it():
    base = indicators(50)
    target = indicators(50)
    target["indicators"][7]["channel"] = "yellow"
    patch = diff_patch(base, target)
    assert patch == {"items": {"indicators": {"upsert": [target["indicators"][7]]}}}


def test_canonical_json_is_stable():
    assert canonical({"b": 1, "a": [1, 2], "é": "x"}) == '{"a":[1,2],"b":1,"é":"x"}'.encode()
    assert sha256_hex({"b": 1, "a": 2}) == sha256_hex({"a": 2, "b": 1})
