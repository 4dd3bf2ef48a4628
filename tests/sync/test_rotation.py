"""Version floors across root rotations (docs/sync.md, "Rotation").

A site has accepted central v5 then v8 and north's regional v3 then v4. The RAU
rotates its root in every way that leaves the old bundles still verifiable (keys listed
in another order, one key of three replaced, the threshold raised), so only the floors
stand between the site and a replay. Each case runs for a root with roles per level and
for a legacy root (one ``indicators`` role for every level), as sites provisioned before
roles per level hold.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.sync import topics
from edge_agent.sync.bundles import Accepted, BundleRejected, build_full, pack, receive
from edge_agent.sync.trust import TrustStore, canonical, generate_key, make_root, sign

NOW = datetime.now(UTC)
SITE, REGION = "bcp-merdare", "north"
CENTRAL, NORTH = topics.INDICATORS_CENTRAL, topics.indicators_region(REGION)


def indicators(n: int) -> dict:
    return {"set": "x", "indicators": [{"id": f"IND-{i}", "channel": "red"} for i in range(n)]}


def reorder(keys: list, threshold: int) -> tuple[list, int]:
    return list(reversed(keys)), threshold


def replace_one(keys: list, threshold: int) -> tuple[list, int]:
    return [*keys[:-1], generate_key()], threshold


def raise_threshold(keys: list, threshold: int) -> tuple[list, int]:
    return keys, threshold + 1


VARIANTS = {"reordered": reorder, "one_key_replaced": replace_one, "threshold_raised": raise_threshold}


class World:
    """The RAU's keys (three per role, threshold 1, old bundles signed by all three) and
    a site's trust store that has accepted central 5 and 8, north 3 and 4."""

    def __init__(self, tmp_path: Path, layout: str) -> None:
        self.layout = layout
        self.root_key = generate_key()
        names = ["central", "region/north"] if layout == "per_level" else ["indicators"]
        self.roles: dict[str, tuple[list, int]] = {name: ([generate_key() for _ in range(3)], 1) for name in names}
        self.store = TrustStore(tmp_path / "trust")
        self.store.install_root(self.root(1, self.roles))
        self.old: dict[tuple[str, int], bytes] = {}
        for slot, version in [("central", 5), ("central", 8), ("region/north", 3), ("region/north", 4)]:
            payload = self.bundle(slot, version)
            self.old[(slot, version)] = payload
            assert isinstance(self.receive(payload), Accepted)

    def role_of(self, slot: str) -> str:
        return slot if self.layout == "per_level" else "indicators"

    def root(self, version: int, roles: dict, *, reset: tuple[str, ...] = (), signers: list | None = None) -> dict:
        public = {name: ([k[1] for k in keys], threshold) for name, (keys, threshold) in roles.items()}
        if self.layout == "legacy":
            keys, threshold = public["indicators"]
            body = make_root(version=version, expires=NOW + timedelta(days=365), root_keys=[self.root_key[1]],
                             indicator_keys=keys, indicator_threshold=threshold)
            if reset:
                body["reset_floors"] = list(reset)
        else:
            body = make_root(version=version, expires=NOW + timedelta(days=365), root_keys=[self.root_key[1]],
                             roles=public, reset_floors=reset)
        return sign(body, signers or [self.root_key[0]])

    def rotated(self, variant: str, slots: tuple[str, ...] = ("central", "region/north")) -> dict:
        """Root v2: the role(s) of `slots` changed by `variant`."""
        roles = dict(self.roles)
        for name in {self.role_of(s) for s in slots}:
            roles[name] = VARIANTS[variant](*roles[name])
        self.roles = roles
        return self.root(2, roles)

    def bundle(self, slot: str, version: int, roots: list | None = None, doc: dict | None = None) -> bytes:
        level, scope = ("central", "central") if slot == "central" else ("region", REGION)
        body = build_full(doc or indicators(version), level=level, scope=scope, version=version,
                          expires=NOW + timedelta(days=30), created=NOW)
        keys, _ = self.roles[self.role_of(slot)]
        return pack(body, [k[0] for k in keys], roots)

    def receive(self, payload: bytes, store: TrustStore | None = None) -> Accepted | BundleRejected:
        topic = CENTRAL if json.loads(payload)["bundle"]["signed"]["level"] == "central" else NORTH
        return receive(store or self.store, payload, topic, site=SITE, region=REGION, now=NOW)

    def floors(self, store: TrustStore | None = None) -> dict[str, int]:
        return {slot: a.version for slot, a in (store or self.store).load().applied.items()}


LAYOUTS = ["per_level", "legacy"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_floors_survive_a_rotation(tmp_path, layout, variant):
    world = World(tmp_path, layout)
    root2 = world.rotated(variant)
    rotated = world.receive(world.bundle("central", 9, roots=[root2]))
    assert isinstance(rotated, Accepted) and rotated.rotated_to == 2
    assert world.floors() == {"central:central": 9, "region:north": 4}
    # Every old bundle still verifies under root v2: only the floors refuse them (north 4
    # is the one in force, so it is not newer; the others are rollbacks).
    for store in (world.store, TrustStore(world.store.dir)):
        for (slot, version), payload in world.old.items():
            result = world.receive(payload, store)
            expected = "not_newer" if (slot, version) == ("region/north", 4) else "rollback"
            assert isinstance(result, BundleRejected) and result.reason == expected, (slot, version, result)
    assert world.floors(TrustStore(world.store.dir)) == {"central:central": 9, "region:north": 4}
    assert TrustStore(world.store.dir).active("region:north") == indicators(4)
    # The RAU's own next regional set still goes in.
    assert isinstance(world.receive(world.bundle("region/north", 5)), Accepted)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_an_old_bundle_carrying_the_new_root_is_a_rollback(tmp_path, layout, variant):
    world = World(tmp_path, layout)
    root2 = world.rotated(variant)
    for slot, version in [("central", 5), ("region/north", 3)]:
        # Roots travel outside the bundle's signature: anyone can attach them to an old bundle.
        message = json.loads(world.old[(slot, version)])
        message["roots"] = [root2]
        result = world.receive(canonical(message))
        assert isinstance(result, BundleRejected) and result.reason == "rollback", result
    restarted = TrustStore(world.store.dir)
    assert restarted.load().root.version == 1  # nothing was saved, not even the root
    assert world.floors(restarted) == {"central:central": 8, "region:north": 4}
    assert restarted.active("central:central") == indicators(8)


def test_a_signed_reset_lowers_only_the_floor_it_names(tmp_path):
    world = World(tmp_path, "per_level")
    # North's desk keys are gone (a fast-forward to v1,000,000 with a stolen key, say).
    new_north = [generate_key() for _ in range(2)]
    world.roles = {**world.roles, "region/north": (new_north, 2)}
    root2 = world.root(2, world.roles, reset=("region/north",))
    fresh = world.receive(world.bundle("region/north", 1, roots=[root2]))
    assert isinstance(fresh, Accepted) and fresh.rotated_to == 2
    assert world.floors(TrustStore(world.store.dir)) == {"central:central": 8, "region:north": 1}
    # The central floor was not named: its old bundles are still rollbacks.
    replay = world.receive(world.old[("central", 5)])
    assert isinstance(replay, BundleRejected) and replay.reason == "rollback"
    # The old desk's bundles no longer verify; the reset happens once, with root v2, not
    # every time root v2 comes by again.
    old_north = world.receive(world.old[("region/north", 4)])
    assert isinstance(old_north, BundleRejected) and old_north.reason == "bad_signature"
    again = world.receive(world.bundle("region/north", 1, roots=[root2], doc={"other": True}))
    assert isinstance(again, BundleRejected) and again.reason == "not_newer"


def test_a_reset_rotation_carrying_another_slot_keeps_that_slot(tmp_path):
    world = World(tmp_path, "per_level")
    world.roles = {**world.roles, "region/north": ([generate_key()], 1)}
    root2 = world.root(2, world.roles, reset=("region/north",))
    result = world.receive(world.bundle("central", 9, roots=[root2]))
    assert isinstance(result, Accepted)
    assert world.floors() == {"central:central": 9}  # north waits for its next set, from its new key
    assert isinstance(world.receive(world.bundle("region/north", 1)), Accepted)


@pytest.mark.parametrize(
    "change",
    [
        lambda keys, t: (keys, t),  # the same keys
        lambda keys, t: ([*keys[:2], generate_key()], t),  # two old keys still reach threshold 1
        lambda keys, t: (list(reversed(keys)), 2),  # all three old keys reach threshold 2
    ],
    ids=["same_keys", "one_key_replaced", "threshold_raised"],
)
def test_a_reset_with_keys_that_signed_the_old_bundles_is_refused(tmp_path, change):
    world = World(tmp_path, "per_level")
    roles = {**world.roles, "region/north": change(*world.roles["region/north"])}
    root2 = world.root(2, roles, reset=("region/north",))
    message = json.loads(world.bundle("central", 9, roots=[root2]))
    result = world.receive(canonical(message))
    assert isinstance(result, BundleRejected) and result.reason == "root_rotation_invalid"
    assert "could be replayed" in result.detail
    assert TrustStore(world.store.dir).load().root.version == 1
    assert world.floors() == {"central:central": 8, "region:north": 4}


def test_a_reset_is_allowed_when_the_kept_keys_cannot_reach_the_new_threshold(tmp_path):
    world = World(tmp_path, "per_level")
    keys, _ = world.roles["region/north"]
    world.roles = {**world.roles, "region/north": ([keys[0], generate_key(), generate_key()], 2)}
    root2 = world.root(2, world.roles, reset=("region/north",))
    assert isinstance(world.receive(world.bundle("region/north", 1, roots=[root2])), Accepted)
    # One old key alone is below the new threshold: the old bundles are refused.
    old = world.receive(world.old[("region/north", 4)])
    assert isinstance(old, BundleRejected) and old.reason == "below_threshold"


def test_root_versions_never_go_back(tmp_path):
    world = World(tmp_path, "per_level")
    root1 = world.root(1, world.roles)
    root2 = world.rotated("reordered")
    assert isinstance(world.receive(world.bundle("central", 9, roots=[root2])), Accepted)
    # An older root in a chain is skipped, not installed; a gap in versions is refused.
    older = world.receive(world.bundle("central", 10, roots=[root1]))
    assert isinstance(older, Accepted) and older.rotated_to is None
    assert TrustStore(world.store.dir).load().root.version == 2
    root4 = world.root(4, world.roles)
    gap = world.receive(world.bundle("central", 11, roots=[root4]))
    assert isinstance(gap, BundleRejected) and gap.reason == "root_rotation_invalid"
    assert TrustStore(world.store.dir).load().root.version == 2


def test_a_reset_interrupted_by_a_power_cut_is_finished_at_load(tmp_path):
    world = World(tmp_path, "per_level")
    world.roles = {**world.roles, "region/north": ([generate_key()], 1)}
    root2 = world.root(2, world.roles, reset=("region/north",))
    # The save got as far as root.json: state.json still has root v1's floors.
    (world.store.dir / "root.json").write_bytes(canonical(root2))
    state = TrustStore(world.store.dir).load()
    assert state.root.version == 2
    assert {s: a.version for s, a in state.applied.items()} == {"central:central": 8}
    assert isinstance(world.receive(world.bundle("region/north", 1)), Accepted)
