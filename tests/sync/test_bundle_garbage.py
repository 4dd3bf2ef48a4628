"""Garbage in a bundle message is a refusal with a reason, never an exception.

The four shapes that used to raise out of the verifier (a keyid given as an array, a
root whose roles are a list, 100,000 nested arrays, a genuinely signed delta whose patch
is malformed), each through `receive` (the trust store is untouched), through the core
(reported upward as ``bundle_rejected``) and through `edge-agent sync verify` (the
reason printed, exit status 1); then Hypothesis feeds the verifier structured garbage:
valid messages with parts replaced by random JSON, unsigned and re-signed.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_agent.config import parse_config
from edge_agent.core import Core
from edge_agent.core.rau import RauLink
from edge_agent.core.rules_in_force import RulesAssessor, rules_in_force
from edge_agent.models import IndicatorBundleReceived
from edge_agent.outputs import OutputBus
from edge_agent.plates.association import PlateIndex
from edge_agent.store import Store
from edge_agent.sync import topics
from edge_agent.sync.bundles import (
    MAX_DEPTH,
    REASONS,
    Accepted,
    ActiveSetInfo,
    BundleRejected,
    build_delta,
    build_full,
    json_depth,
    pack,
    read_message,
    receive,
    verify_bundle,
)
from edge_agent.sync.cli import sync
from edge_agent.sync.trust import Root, TrustState, TrustStore, canonical, sha256_hex, sign

NOW = datetime.now(UTC)
SITE, REGION = "bcp-test", "north"
TOPIC = topics.INDICATORS_CENTRAL


def indicator_set(version: int, plate: str = "01500AB") -> dict:
    """A set the site's rules engine can run (docs/indicators.md)."""
    return {
        "format": "bcp-indicators/1",
        "version": f"central-{version}",
        "indicators": [{
            "id": "C-PLATE-WATCH", "version": version, "level": "central", "title": "Plate on the watch list",
            "when": {"field": "tractor_plate", "op": "eq", "value": plate},
            "action": {"channel": "red"}, "priority": 90, "instructions": "Inspect.", "owner": "RAU",
            "author": "rau.analyst",
        }],
    }


def central_keys(rau) -> list[str]:
    return [k[0] for k in rau.central]


def delta_with_patch(rau, patch) -> bytes:
    """A delta from v1 to v2 of the set, its patch replaced, correctly signed by the central role."""
    body = build_delta(indicator_set(1), 1, indicator_set(2), level="central", scope="central", version=2,
                       expires=NOW + timedelta(days=3), created=NOW)
    body["patch"] = patch
    return pack(body, central_keys(rau))


def keyid_as_array(rau) -> bytes:
    message = json.loads(rau.bundle(rau.central, 2, indicator_set(2)))
    for entry in message["bundle"]["signatures"]:
        entry["keyid"] = [entry["keyid"]]
    return canonical(message)


def roles_as_list(rau) -> bytes:
    root2 = rau.root_document(2)
    root2["signed"]["roles"] = list(root2["signed"]["roles"].values())
    return rau.bundle(rau.central, 2, indicator_set(2), roots=[root2])


def root_not_a_document(rau) -> bytes:
    """Used to be skipped as "an old root" and the bundle taken: anything in roots must be a root."""
    return rau.bundle(rau.central, 2, indicator_set(2), roots=[[], {"signed": 5}])


def nested_arrays(rau) -> bytes:
    return b'{"bundle":{"signed":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"


MALFORMED_PATCHES = {
    "items_as_list": {"items": {"indicators": []}},
    "set_as_list": {"set": []},
    "upsert_of_numbers": {"items": {"indicators": {"upsert": [5]}}},
    "unhashable_id": {"items": {"indicators": {"upsert": [{"id": ["x"]}]}}},
    "order_of_unknown_ids": {"items": {"indicators": {"order": ["nope"]}}},
    "sub_onto_a_string": {"sub": {"version": {"set": {}}}},
    "del_as_number": {"del": 5},
    "unknown_operation": {"rename": {"a": "b"}},
}

GARBAGE = {
    "keyid_as_array": (keyid_as_array, "bad_signature"),
    "root_roles_as_list": (roles_as_list, "root_rotation_invalid"),
    "root_not_a_document": (root_not_a_document, "root_rotation_invalid"),
    "nested_arrays": (nested_arrays, "malformed"),
    **{f"delta_{name}": ((lambda rau, p=patch: delta_with_patch(rau, p)), "malformed")
       for name, patch in MALFORMED_PATCHES.items()},
}


@pytest.fixture()
def trust(tmp_path, rau) -> TrustStore:
    """A site that holds central v1 of `indicator_set`."""
    store = TrustStore(tmp_path / "trust")
    store.install_root(rau.root_document())
    accepted = receive(store, rau.bundle(rau.central, 1, indicator_set(1)), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(accepted, Accepted)
    return store


def snapshot(store: TrustStore) -> tuple:
    state = TrustStore(store.dir).load()
    return state.root.version, state.applied, TrustStore(store.dir).active("central:central")


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_is_refused_with_its_reason_and_the_set_stays(trust, rau, name):
    make, reason = GARBAGE[name]
    before = snapshot(trust)
    result = receive(trust, make(rau), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, BundleRejected) and result.reason == reason, result
    assert result.detail
    assert snapshot(trust) == before


def test_a_malformed_signed_patch_falls_back_to_the_full_bundle(trust, rau):
    result = receive(trust, delta_with_patch(rau, {"set": []}), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, BundleRejected) and result.fallback_full
    assert "set must be an object" in result.detail


def test_depth_is_measured_without_parsing():
    assert json_depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth("[" * 100_000 + "]" * 100_000) > MAX_DEPTH
    assert json_depth(r'{"a": "\"[[[["}') == 1
    assert json_depth("[" * MAX_DEPTH + "]" * MAX_DEPTH) == MAX_DEPTH
    deep = ("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()
    rejected = read_message(b'{"bundle": {}, "x": ' + deep + b"}")
    assert isinstance(rejected, BundleRejected) and "nested deeper" in rejected.detail
    assert isinstance(read_message(b'{"bundle": {}, "x": ' + deep[1:-1] + b"}"), dict)
    # Unbalanced, so no depth can be measured: json.loads then finds it out, safely.
    unbalanced = read_message(b"[" * 100_000 + b"}")
    assert isinstance(unbalanced, BundleRejected) and unbalanced.reason == "malformed"


@pytest.mark.parametrize(
    "payload,problem",
    [
        (b'{"bundle": {"signed": NaN}}', "NaN"),
        (b'{"bundle": {"x": Infinity}}', "Infinity"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "no bundle object"),
    ],
)
def test_ambiguous_or_non_json_is_refused(payload, problem):
    rejected = read_message(payload)
    assert isinstance(rejected, BundleRejected) and rejected.reason == "malformed"
    assert problem in rejected.detail


def test_times_beyond_the_calendar_are_refused(trust, rau):
    body = build_full(indicator_set(2), level="central", scope="central", version=2, expires=NOW, created=NOW)
    body["expires"] = "9999-12-31T23:59:59-05:00"  # past year 9999 once in UTC
    result = receive(trust, pack(body, central_keys(rau)), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, BundleRejected) and result.reason == "malformed" and "out of range" in result.detail


def test_a_flood_of_signatures_is_refused_before_any_is_checked(trust, rau):
    message = json.loads(rau.bundle(rau.central, 2, indicator_set(2)))
    message["bundle"]["signatures"] *= 1000
    result = receive(trust, canonical(message), TOPIC, site=SITE, region=REGION, now=NOW)
    assert isinstance(result, BundleRejected) and result.reason == "malformed" and "signatures" in result.detail


# --------------------------------------------------------------------------- the core and the command


def site_config(data_dir: Path):
    return parse_config(f"""
[site]
id = "{SITE}"
region = "{REGION}"
data_dir = "{data_dir}"
[[lanes]]
id = "L1"
[policy]
random_share_pct = 0
random_secret = "a site secret of sixteen"
""")


def test_the_core_reports_every_refusal_upward(tmp_path, rau):
    TrustStore(tmp_path / "trust").install_root(rau.root_document())
    config = site_config(tmp_path)
    store = Store.open(tmp_path / "agent.db")
    bus = OutputBus()
    bus.start()
    try:
        core = Core(config, store, RulesAssessor(config, rules_in_force(config, tmp_path)), PlateIndex(), bus)
        link = RauLink(core, config, tmp_path)
        link.register()

        def post(payload: bytes) -> None:
            core.post(IndicatorBundleReceived(topic=TOPIC, payload=payload, source="sync"))
            core.drain()
            deadline = time.monotonic() + 30
            while link.busy and time.monotonic() < deadline:
                time.sleep(0.01)
                core.drain()
            assert not link.busy

        post(rau.bundle(rau.central, 1, indicator_set(1)))  # the base every delta here builds on
        assert core.counters["bundles_applied"] == 1
        for make, _ in GARBAGE.values():
            post(make(rau))

        rows = store.db.execute("SELECT payload FROM outbox WHERE stream = 'bundle_rejected' ORDER BY seq")
        reports = [json.loads(r[0]) for r in rows]
        assert [r["reason"] for r in reports] == [reason for _, reason in GARBAGE.values()]
        assert all(r["detail"] and r["topic"] == TOPIC and r["site"] == SITE for r in reports)
        assert core.counters["bundles_rejected"] == len(GARBAGE)
        assert TrustStore(tmp_path / "trust").load().applied["central:central"].version == 1
    finally:
        bus.stop()
        store.close()


@pytest.mark.parametrize("name", GARBAGE)
def test_sync_verify_prints_the_reason(tmp_path, rau, name):
    (tmp_path / "site.toml").write_text(f"""
[site]
id = "{SITE}"
region = "{REGION}"
data_dir = "{tmp_path / 'data'}"
[[lanes]]
id = "L1"
[policy]
random_secret = "a site secret of sixteen"
""")
    trust = TrustStore(tmp_path / "data" / "trust")
    trust.install_root(rau.root_document())
    receive(trust, rau.bundle(rau.central, 1, indicator_set(1)), TOPIC, site=SITE, region=REGION, now=NOW)
    make, reason = GARBAGE[name]
    (tmp_path / "bundle.json").write_bytes(make(rau))
    args = ["verify", str(tmp_path / "bundle.json"), "--config", str(tmp_path / "site.toml")]
    result = CliRunner().invoke(sync, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"rejected: {reason}: " in result.output


# --------------------------------------------------------------------------- fuzz

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["central", "region", "site", "full", "delta", "root", "indicators",
                                             "2026-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "nope"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def all_paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every node of a JSON document, as the keys and indexes that lead to it."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += all_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += all_paths(child, (*prefix, index))
    return found


def garbled(value) -> st.SearchStrategy:
    """`value` with one to three of its nodes replaced by random JSON, removed, or given
    a random sibling: structured garbage, close enough to a real message to pass the
    first checks and reach the deeper ones."""
    mutation = st.tuples(st.sampled_from(all_paths(value)), st.sampled_from(["replace", "remove", "add"]), JSON,
                         st.text(max_size=6))
    return st.lists(mutation, min_size=1, max_size=3).map(lambda ms: _mutate(value, ms))


def _mutate(value, mutations):
    result = copy.deepcopy(value)
    for path, how, junk, new_key in mutations:
        if not path:
            result = junk
            continue
        parent = result
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            if how == "replace":
                parent[last] = junk
            elif how == "remove":
                del parent[last]
            elif isinstance(parent, dict):
                parent[new_key] = junk
            else:
                parent.insert(last, junk)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation took this path away
    return result


class FuzzSite:
    """A trust state holding central v1 and valid messages to garble."""

    def __init__(self, rau) -> None:
        self.rau = rau
        base = indicator_set(1)
        accepted = verify_bundle(rau.bundle(rau.central, 1, base), TrustState(root=Root.parse(rau.root_document())),
                                 site=SITE, region=REGION, now=NOW, current=None)
        assert isinstance(accepted, Accepted)
        self.state = accepted.state
        self.current = ActiveSetInfo(1, sha256_hex(base), base, accepted.expires)
        self.full = json.loads(rau.bundle(rau.central, 2, indicator_set(2), roots=[rau.root_document(2)]))
        self.delta = json.loads(pack(build_delta(base, 1, indicator_set(2, "01600AB"), level="central",
                                                 scope="central", version=2, expires=NOW + timedelta(days=3),
                                                 created=NOW), central_keys(rau)))
        self.messages = garbled(self.full) | garbled(self.delta)
        roots = garbled(self.full["roots"]) | st.just(self.full["roots"]) | st.just([])
        self.bodies = st.tuples(garbled(self.full["bundle"]["signed"]) | garbled(self.delta["bundle"]["signed"]), roots)

    def verify(self, payload: bytes):
        before = copy.deepcopy(self.state.applied)
        result = verify_bundle(payload, self.state, site=SITE, region=REGION, now=NOW, current=self.current,
                               expected_slot="central:central")
        assert isinstance(result, Accepted | BundleRejected)
        event(result.reason if isinstance(result, BundleRejected) else "accepted")  # --hypothesis-show-statistics
        if isinstance(result, BundleRejected):
            assert result.reason in REASONS and result.reason != "verifier_fault", result
        assert self.state.applied == before  # pure: the caller's state is never changed
        return result


@pytest.fixture(scope="module")
def fuzz_site(module_rau) -> FuzzSite:
    return FuzzSite(module_rau)


FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=st.data())
def test_fuzz_unsigned_structured_garbage(fuzz_site, data):
    fuzz_site.verify(json.dumps(data.draw(fuzz_site.messages)).encode())


@FUZZ
@given(data=st.data())
def test_fuzz_signed_structured_garbage(fuzz_site, data):
    """Garbage a holder of the central keys signed: past the signatures, into the
    delta, the patch and the hash checks."""
    signed, roots = data.draw(fuzz_site.bodies)
    message = {"bundle": sign(signed, central_keys(fuzz_site.rau)) if isinstance(signed, dict) else signed}
    if roots:
        message["roots"] = roots
    fuzz_site.verify(json.dumps(message).encode())


@FUZZ
@given(st.binary(max_size=300) | st.text(alphabet='[]{}",:\\0aeNI ', max_size=400).map(str.encode))
def test_fuzz_raw_bytes(fuzz_site, payload):
    fuzz_site.verify(payload)
