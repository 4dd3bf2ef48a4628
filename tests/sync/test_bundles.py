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
from edge_agent.sync.trust import Root, TrustStore, canonical, generate_key, key_id, make_root, sha256_hex, sign

NOW = datetime.now(UTC)
SITE, REGION = "bcp-merdare", "north"
TOPIC = topics.INDICATORS_CENTRAL


def indicators(n: int) -> dict:
    return {
        "set": "central",
        "indicators": [{"id": f"IND-{i}", "channel": "red", "plate": f"AB{i:03d}"} for i in range(n)],
    }


def bundle(
    keys: list[str], version: int, doc: dict, *, level="central", scope="central", expires_days=30.0, roots=None
) -> bytes:
    body = build_full(
        doc, level=level, scope=scope, version=version, expires=NOW + timedelta(days=expires_days), created=NOW
    )
    return pack(body, keys, roots)


@pytest.fixture()
def site(tmp_path: Path, rau):
    store = TrustStore(tmp_path / "trust")
    store.install_root(rau.root_document())
    signers = [k[0] for k in rau.central]
    for version in (4, 5):
        doc = indicators(version) if version == 4 else indicators(40)
        result = receive(store, bundle(signers, version, doc), TOPIC, site=SITE, region=REGION, now=NOW)
        assert isinstance(result, Accepted), result
    return rau, store, signers


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
    rau, store, signers = site
    # A stolen pair of central keys signs an absurd version: indistinguishable from the RAU.
    forward = bundle(signers, 2_000_000_000, {"evil": True})
    assert isinstance(receive(store, forward, TOPIC, site=SITE, region=REGION, now=NOW), Accepted)
    # The RAU's real next version is now refused as a rollback: the site is frozen out.
    real = bundle(signers, 6, indicators(6))
    attack_result = receive(store, real, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(attack_result, BundleRejected) and attack_result.reason == "rollback"
    # Recovery: root v2 names new central keys and says, signed, that the central floor
    # goes; signed by the old root key and the new one.
    new_root_key = generate_key()
    new_central = [generate_key(), generate_key()]
    roles = {**rau.roles(), "central": ([k[1] for k in new_central], 2)}
    root2 = rau.root_document(2, roles=roles, reset_floors=("central",), root_keys=[new_root_key],
                              signers=[rau.root[0][0], new_root_key[0]])
    recovered = bundle([k[0] for k in new_central], 6, indicators(6), roots=[root2])
    result = receive(store, recovered, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, Accepted) and result.rotated_to == 2
    restarted = TrustStore(store.dir)
    assert restarted.load().root.version == 2
    assert restarted.active("central:central") == indicators(6)
    # The attacker's bundle, signed by the retired keys, is now refused, also after restart.
    replay = receive(restarted, forward, TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(replay, BundleRejected) and replay.reason == "bad_signature"


def test_root_rotation_signed_only_by_the_new_key(site):
    rau, store, signers = site
    new_root_key = generate_key()
    rogue = rau.root_document(2, root_keys=[new_root_key], roles={"central": ([generate_key()[1]], 1)})
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


# --------------------------------------------------------------------------- one role per level


def region_topic(region: str = REGION) -> str:
    return topics.indicators_region(region)


def test_a_regional_desk_key_is_refused_for_central(site):
    rau, store, _ = site
    rejected = attack(store, bundle([k[0] for k in rau.north], 6, indicators(6)), "bad_signature")
    assert "role central" in rejected.detail


def test_a_regional_desk_key_and_one_central_key_do_not_make_the_central_threshold(site):
    rau, store, signers = site
    attack(store, bundle([signers[0], rau.north[0][0]], 6, indicators(6)), "below_threshold")


def test_central_keys_cannot_sign_a_region(site):
    _, store, signers = site
    payload = bundle(signers, 1, indicators(3), level="region", scope=REGION)
    attack(store, payload, "bad_signature", topic=region_topic())


def test_another_desk_cannot_sign_this_region(site):
    rau, store, _ = site
    payload = bundle([k[0] for k in rau.south], 1, indicators(3), level="region", scope=REGION)
    attack(store, payload, "bad_signature", topic=region_topic())


def test_each_level_is_signed_by_its_own_role(site):
    rau, store, _ = site
    regional = receive(store, bundle([k[0] for k in rau.north], 1, indicators(3), level="region", scope=REGION),
                       region_topic(), site=SITE, region=REGION, now=NOW)
    assert isinstance(regional, Accepted) and regional.role == "region/north"
    local = receive(store, bundle([k[0] for k in rau.sites], 1, indicators(2), level="site", scope=SITE),
                    topics.down(SITE, "indicators"), site=SITE, region=REGION, now=NOW)
    assert isinstance(local, Accepted) and local.role == "site/*"
    assert TrustStore(store.dir).load().applied["central:central"].version == 5


def test_a_site_role_of_its_own_takes_over_from_the_wildcard(tmp_path, rau):
    own = generate_key()
    store = TrustStore(tmp_path / "trust")
    store.install_root(rau.root_document(roles={**rau.roles(), f"site/{SITE}": ([own[1]], 1)}))
    site_topic = topics.down(SITE, "indicators")
    wildcard = receive(store, bundle([k[0] for k in rau.sites], 1, indicators(2), level="site", scope=SITE),
                       site_topic, site=SITE, region=REGION, now=NOW)
    assert isinstance(wildcard, BundleRejected) and wildcard.reason == "bad_signature"
    mine = receive(store, bundle([own[0]], 1, indicators(2), level="site", scope=SITE), site_topic,
                   site=SITE, region=REGION, now=NOW)
    assert isinstance(mine, Accepted) and mine.role == f"site/{SITE}"


def test_a_level_without_a_role_is_refused(tmp_path, rau):
    store = TrustStore(tmp_path / "trust")
    store.install_root(rau.root_document(roles={"central": rau.roles()["central"]}))
    payload = bundle([k[0] for k in rau.north], 1, indicators(3), level="region", scope=REGION)
    result = receive(store, payload, region_topic(), site=SITE, region=REGION, now=NOW)
    assert isinstance(result, BundleRejected) and result.reason == "no_role"


def test_the_topic_and_the_signed_slot_must_agree(site):
    _, store, signers = site
    # A genuine central bundle, delivered on the region's topic.
    rejected = attack(store, bundle(signers, 6, indicators(6)), "wrong_scope", topic=region_topic())
    assert "on the topic of region:north" in rejected.detail


def test_a_legacy_root_still_signs_every_level_until_rotated_away(tmp_path, rau):
    """Sites provisioned before roles per level hold a root with one indicators role."""
    legacy_key = generate_key()
    store = TrustStore(tmp_path / "trust")
    store.install_root(sign(make_root(version=1, expires=NOW + timedelta(days=365), root_keys=[rau.root[0][1]],
                                      indicator_keys=[legacy_key[1]]), [rau.root[0][0]]))
    assert store.load().root.legacy
    for payload, topic in [(bundle([legacy_key[0]], 3, indicators(3)), TOPIC),
                           (bundle([legacy_key[0]], 3, indicators(3), level="region", scope=REGION), region_topic())]:
        assert isinstance(receive(store, payload, topic, site=SITE, region=REGION, now=NOW), Accepted)
    # Rotating to roles per level: from then on the old key signs nothing, the floors stay.
    root2 = rau.root_document(2)
    north = [k[0] for k in rau.north]
    moved = receive(store, bundle(north, 4, indicators(4), level="region", scope=REGION, roots=[root2]),
                    region_topic(), site=SITE, region=REGION, now=NOW)
    assert isinstance(moved, Accepted) and moved.rotated_to == 2 and moved.role == "region/north"
    old_key = receive(store, bundle([legacy_key[0]], 9, indicators(9)), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(old_key, BundleRejected) and old_key.reason == "bad_signature"
    central = [k[0] for k in rau.central]
    stale = receive(store, bundle(central, 2, indicators(2)), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(stale, BundleRejected) and stale.reason == "rollback"


@pytest.mark.parametrize(
    "roles,problem",
    [
        ({"indicators": "legacy", "central": "k"}, "cannot be mixed"),
        ({"central/north": "k"}, "not root, central"),
        ({"region/north/x": "k"}, "not root, central"),
        ({}, "no role that signs"),
    ],
)
def test_root_shapes_refused(rau, roles, problem):
    body = make_root(version=1, expires=NOW + timedelta(days=9), root_keys=[rau.root[0][1]],
                     roles={"central": rau.roles()["central"]})
    public = rau.central[0][1]
    body["roles"] = {"root": body["roles"]["root"],
                     **{name: {"keyids": [key_id(public)], "threshold": 1} for name in roles}}
    body["keys"][key_id(public)] = {"keytype": "ed25519", "public": public}
    with pytest.raises(ValueError, match=problem):
        Root.parse(sign(body, [rau.root[0][0]]))


def test_a_reset_must_name_one_slot(rau):
    with pytest.raises(ValueError, match="is not one level's role"):
        Root.parse(rau.root_document(2, reset_floors=("region/*",)))
