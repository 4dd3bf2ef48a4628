"""What the RAU sends down, through the real core, store, trust store and rules engine:
signed bundles swapped in (or refused, keeping the last good set) and channel raises."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from testkit.outputs import Recorder

from edge_agent.commands import CloseBarrier, ShowSign
from edge_agent.config import parse_config
from edge_agent.core import Core
from edge_agent.core.rau import RauLink
from edge_agent.core.rules_in_force import RulesAssessor, rules_in_force, trust_dir
from edge_agent.lane import Phase
from edge_agent.models import (
    IndicatorBundleReceived,
    Party,
    PlateRead,
    PreArrival,
    PreArrivalReceived,
    RauCommand,
    Tick,
    VehicleDetected,
    VehicleLeft,
    WeightStable,
)
from edge_agent.outputs import OutputBus
from edge_agent.plates.association import PlateIndex
from edge_agent.store import Store
from edge_agent.sync import topics
from edge_agent.sync.bundles import build_full, pack
from edge_agent.sync.trust import TrustStore, generate_key, make_root, sign

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


def site_toml(data_dir: Path) -> str:
    return f"""
[site]
id = "bcp-test"
region = "north"
data_dir = "{data_dir}"
[[lanes]]
id = "L1"
[lanes.timeouts]
trailer_s = 0.5
[policy]
random_share_pct = 0
[rules]
indicator_files = ["{ROOT / 'firmware_config' / 'indicators' / 'demo.json'}"]
"""


def site_config(data_dir: Path):
    return parse_config(site_toml(data_dir))


def plate_set(version: str, plate: str, channel: str = "red", indicator_id: str = "C-PLATE-WATCH") -> dict:
    return {
        "format": "bcp-indicators/1",
        "version": version,
        "indicators": [{
            "id": indicator_id, "version": 1, "level": "central", "title": "Plate on the central watch list",
            "when": {"field": "tractor_plate", "op": "eq", "value": plate},
            "action": {"channel": channel}, "priority": 90,
            "instructions": "Inspect the cabin and the load.", "owner": "RAU", "author": "rau.analyst",
        }],
    }


class Keys:
    def __init__(self) -> None:
        self.root = generate_key()
        self.signers = [generate_key()]

    def root_document(self) -> dict:
        body = make_root(version=1, expires=NOW + timedelta(days=365), root_keys=[self.root[1]],
                         indicator_keys=[k[1] for k in self.signers])
        return sign(body, [self.root[0]])

    def bundle(self, version: int, document: dict, *, keys: list[str] | None = None, days: float = 30) -> bytes:
        body = build_full(document, level="central", scope="central", version=version,
                          expires=NOW + timedelta(days=days), created=NOW)
        return pack(body, keys or [k[0] for k in self.signers])


class Site:
    """A core as the agent builds it (rules in force, the RAU link registered)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.config = site_config(data_dir)
        self.store = Store.open(data_dir / "agent.db")
        self.assessor = RulesAssessor(self.config, rules_in_force(self.config, data_dir))
        self.bus = OutputBus()
        self.recorder = Recorder()
        self.bus.add(self.recorder)
        self.core = Core(self.config, self.store, self.assessor, PlateIndex(), self.bus)
        self.refetched: list[str] = []
        self.link = RauLink(self.core, self.config, data_dir, refetch=self.refetched.append)
        self.link.register()
        self.assessor.floor = self.link.floor
        self.bus.start()

    def close(self) -> None:
        self.bus.stop()
        self.store.close()

    def post(self, *events) -> None:
        """Hand the events to the core and let it finish them, bundles prepared off-thread included."""
        for event in events:
            self.core.post(event)
        self.core.drain()
        deadline = time.monotonic() + 30
        while self.link.busy and time.monotonic() < deadline:
            time.sleep(0.01)
            self.core.drain()
        assert not self.link.busy, "a bundle was not prepared within 30 s"

    def outbox(self, stream: str) -> list[dict]:
        rows = self.store.db.execute("SELECT payload FROM outbox WHERE stream = ? ORDER BY seq", [stream])
        return [json.loads(r[0]) for r in rows]

    def cross(self, plate: str, weight: float = 24100.0):
        self.post(VehicleDetected(lane="L1"), PlateRead(lane="L1", text=plate, raw=plate, confidence=0.95),
                  WeightStable(lane="L1", gross_kg=weight))
        return self.core.lanes["L1"]


def record(reference: str, plate: str) -> PreArrival:
    return PreArrival(reference=reference, tractor_plate=plate, gross_kg=24000.0,
                      consignor=Party(name="Tirana Mobilia SH.A.", country="AL"),
                      consignee=Party(name="Prizren Food LLC", country="XK"),
                      items=[{"hs_code": "940360", "origin": "AL"}])


@pytest.fixture()
def keys(tmp_path):
    keys = Keys()
    TrustStore(tmp_path / "trust").install_root(keys.root_document())
    return keys


@pytest.fixture()
def site(tmp_path, keys):
    site = Site(tmp_path)
    yield site
    site.close()


def bundle_event(payload: bytes) -> IndicatorBundleReceived:
    return IndicatorBundleReceived(topic=topics.INDICATORS_CENTRAL, payload=payload, source="sync")


def test_a_signed_bundle_goes_live_is_reported_and_rescreens_pending_trucks(site, keys):
    site.post(PreArrivalReceived(record=record("XK26EX500", "01 500-AB")),
              PreArrivalReceived(record=record("XK26EX501", "01 501-AB")))
    site.post(bundle_event(keys.bundle(7, plate_set("central-7", "01500AB"))))

    assert site.assessor.rules.get("C-PLATE-WATCH") is not None
    assert site.assessor.rules.get("C-WEIGHT-10") is not None, "the site's own files stay in force"
    assert TrustStore(site.data_dir / "trust").load().applied["central:central"].version == 7
    applied = site.outbox("indicators_applied")
    assert [(a["slot"], a["version"]) for a in applied] == [("central:central", 7)]
    prescreen = site.outbox("prescreen_hit")
    assert [(p["reference"], p["channel"], p["indicators"]) for p in prescreen] == [
        ("XK26EX500", "red", ["C-PLATE-WATCH"])]

    lane = site.cross("01500AB")
    assert lane.channel == "red" and lane.phase is Phase.HELD
    assert [h["indicator_id"] for h in site.store.hits_for(lane.crossing_id)] == ["C-PLATE-WATCH"]


def test_the_accepted_bundle_is_in_force_again_after_a_restart(tmp_path, keys):
    first = Site(tmp_path)
    first.post(PreArrivalReceived(record=record("XK26EX500", "01 500-AB")),
               bundle_event(keys.bundle(3, plate_set("central-3", "01500AB"))))
    first.close()
    again = Site(tmp_path)
    try:
        assert again.assessor.rules.get("C-PLATE-WATCH") is not None
        assert again.cross("01500AB").channel == "red"
    finally:
        again.close()


def test_a_forged_bundle_is_refused_counted_reported_and_the_last_good_set_stays(site, keys):
    site.post(bundle_event(keys.bundle(2, plate_set("central-2", "01500AB"))))
    before = site.assessor.rules
    forger = generate_key()
    site.post(bundle_event(keys.bundle(3, plate_set("central-3", "01999ZZ", indicator_id="C-FORGED"),
                                       keys=[forger[0]])))

    assert site.assessor.rules is before and site.assessor.rules.get("C-FORGED") is None
    assert site.core.counters["bundles_rejected"] == 1
    assert site.core.counters["bundles_rejected_bad_signature"] == 1
    [report] = site.outbox("bundle_rejected")
    assert report["reason"] == "bad_signature" and report["topic"] == topics.INDICATORS_CENTRAL
    assert TrustStore(site.data_dir / "trust").load().applied["central:central"].version == 2


def test_a_rollback_to_an_older_version_is_refused(site, keys):
    site.post(bundle_event(keys.bundle(5, plate_set("central-5", "01500AB"))))
    site.post(bundle_event(keys.bundle(4, plate_set("central-4", "01400AB", indicator_id="C-OLD"))))
    assert site.assessor.rules.get("C-OLD") is None
    assert [r["reason"] for r in site.outbox("bundle_rejected")] == ["rollback"]


def test_a_signed_bundle_the_site_cannot_run_is_refused_without_raising_the_version_floor(site, keys):
    broken = plate_set("central-9", "01500AB")
    broken["indicators"][0]["when"]["op"] = "no-such-operator"
    site.post(bundle_event(keys.bundle(9, broken)))

    assert site.assessor.rules.get("C-PLATE-WATCH") is None
    [report] = site.outbox("bundle_rejected")
    assert report["reason"] == "invalid_indicators" and "no-such-operator" in report["detail"]
    assert "central:central" not in TrustStore(site.data_dir / "trust").load().applied
    # A corrected bundle of the same version is still accepted: nothing was burnt.
    site.post(bundle_event(keys.bundle(9, plate_set("central-9", "01500AB"))))
    assert site.assessor.rules.get("C-PLATE-WATCH") is not None


def test_a_damaged_trust_store_refuses_the_bundle_with_its_reason_and_keeps_the_set(site, keys):
    site.post(bundle_event(keys.bundle(2, plate_set("central-2", "01500AB"))))
    (site.data_dir / "trust" / "state.json").write_text('{"applied": {"central:central": {"version": ')
    site.post(bundle_event(keys.bundle(3, plate_set("central-3", "01999ZZ", indicator_id="C-NEWER"))))
    [report] = site.outbox("bundle_rejected")
    assert report["reason"] == "trust_store_unreadable" and "JSONDecodeError" in report["detail"]
    assert site.assessor.rules.get("C-PLATE-WATCH") is not None and site.assessor.rules.get("C-NEWER") is None


def test_without_a_root_of_trust_every_bundle_is_refused(tmp_path):
    site = Site(tmp_path)
    try:
        stranger = Keys()
        site.post(bundle_event(stranger.bundle(1, plate_set("central-1", "01500AB"))))
        assert [r["reason"] for r in site.outbox("bundle_rejected")] == ["no_root"]
        assert site.assessor.rules.get("C-PLATE-WATCH") is None
    finally:
        site.close()


def test_a_raise_for_a_declaration_is_a_floor_for_its_truck_and_survives_a_restart(tmp_path, keys):
    site = Site(tmp_path)
    site.post(PreArrivalReceived(record=record("XK26EX600", "01 600-AB")),
              RauCommand(command="raise_channel", reference="XK26EX600", channel="orange", reason="intelligence"))
    assert [r["channel"] for r in site.outbox("rau_raise")] == ["orange"]
    site.close()

    again = Site(tmp_path)
    try:
        lane = again.cross("01600AB")
        assert lane.reference == "XK26EX600"
        assert lane.channel == "orange" and lane.phase is Phase.HELD
        assert any("raised to Scanner by the RAU: intelligence" in i for i in lane.assessment.instructions)
        again.post(VehicleLeft(lane="L1"), PreArrivalReceived(record=record("XK26EX601", "01 601-AB")))
        assert again.cross("01601AB").channel == "green", "a raise names one truck, not the next"
    finally:
        again.close()


def test_a_raise_never_lowers_a_stricter_channel(site):
    site.post(PreArrivalReceived(record=record("XK26EX610", "01 610-AB")),
              RauCommand(command="raise_channel", plate="01 610-AB", channel="blue"))
    lane = site.cross("01610AB", weight=30000.0)  # overweight: red by C-WEIGHT-10
    assert lane.channel == "red"


def test_a_raise_for_a_truck_released_in_the_lane_stops_it(site):
    site.post(PreArrivalReceived(record=record("XK26EX620", "01 620-AB")))
    lane = site.cross("01620AB")
    assert lane.phase is Phase.RELEASED and lane.channel == "green"
    site.post(RauCommand(command="raise_channel", plate="01620AB", channel="orange", reason="tip-off"))
    site.bus.stop()
    lane = site.core.lanes["L1"]
    assert lane.phase is Phase.HELD and lane.channel == "orange"
    crossing = lane.crossing_id
    assert CloseBarrier(lane="L1", crossing_id=crossing) in site.recorder.commands
    assert ShowSign(lane="L1", crossing_id=crossing, sign="scanner") in site.recorder.commands
    assert site.store.crossings()[0]["channel"] == "orange"


def test_a_raise_to_an_unknown_channel_or_for_nothing_is_refused(site):
    site.post(RauCommand(command="raise_channel", reference="XK26EX630", channel="purple"),
              RauCommand(command="raise_channel", channel="red"))
    assert site.core.counters["rau_raise_refused"] == 2
    assert site.outbox("rau_raise") == []
    assert site.store.db.execute("SELECT count(*) FROM rau_raises").fetchone()[0] == 0


def test_a_raise_ends_with_the_crossing_it_raised_and_the_next_truck_is_free(site):
    site.post(RauCommand(command="raise_channel", plate="01 640-AB", channel="orange", reason="tip-off"))
    lane = site.cross("01640AB")
    assert lane.channel == "orange"
    site.post(VehicleLeft(lane="L1"))  # held at the scanner, then gone
    assert site.store.rau_raises() == {} and site.link.raises == {}
    (ended,) = site.outbox("rau_raise_ended")
    assert ended["keys"] == ["plate:01640AB"] and ended["reason"] == f"crossing {lane.crossing_id} left_unreleased"
    assert site.cross("01640AB").channel == "yellow"  # no record: documents, the raise is over


def test_a_raise_ends_at_its_expiry_even_if_no_truck_came(site):
    past = datetime.now(UTC) - timedelta(seconds=1)
    site.post(RauCommand(command="raise_channel", plate="01650AB", channel="red", reason="until noon",
                         expires_at=past),
              PreArrivalReceived(record=record("XK26EX650", "01 650-AB")))
    assert site.cross("01650AB").channel == "green"  # expired: no floor, even before a tick
    site.post(Tick())
    assert site.store.rau_raises() == {}
    assert [e["reason"] for e in site.outbox("rau_raise_ended")] == ["expired"]


def test_an_analyst_can_withdraw_a_raise(site):
    site.post(RauCommand(command="raise_channel", reference="XK26EX660", channel="red", reason="doubt"),
              RauCommand(command="withdraw_raise", reference="XK26EX660", reason="documents checked at exit"),
              RauCommand(command="withdraw_raise", reference="XK26EX999"),
              PreArrivalReceived(record=record("XK26EX660", "01 660-AB")))
    assert site.store.rau_raises() == {}
    assert [e["reason"] for e in site.outbox("rau_raise_ended")] == ["withdrawn by the RAU: documents checked at exit"]
    assert site.core.counters["rau_withdraw_unknown"] == 1
    assert site.cross("01660AB").channel == "green"


def test_the_trust_directory_defaults_to_the_data_directory(tmp_path):
    assert trust_dir(site_config(tmp_path), tmp_path) == tmp_path / "trust"


def test_indicators_list_shows_what_the_agent_runs_with_bundles_included(site, keys):
    from click.testing import CliRunner

    from edge_agent.cli import main

    site.post(bundle_event(keys.bundle(4, plate_set("central-4", "01500AB"))))
    path = site.data_dir / "site.toml"
    path.write_text(site_toml(site.data_dir))
    result = CliRunner().invoke(main, ["indicators", "list", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    ids = {row["id"] for row in json.loads(result.output)["indicators"]}
    assert {"C-PLATE-WATCH", "C-WEIGHT-10", "L-TOBACCO-24"} <= ids


def big_set(version: str, n: int, plate: str) -> dict:
    doc = plate_set(version, plate)
    template = doc["indicators"][0]
    doc["indicators"] += [
        {**template, "id": f"C-BULK-{i}", "when": {"field": "tractor_plate", "op": "eq", "value": f"ZZ{i:06d}"}}
        for i in range(n)
    ]
    return doc


def test_the_lanes_keep_deciding_while_a_large_bundle_is_prepared(site, keys, monkeypatch):
    # The preparation is held at its start until the truck has been decided: on a slow
    # disk the bundle event's own commit can outlast a whole preparation, and the test
    # is about the order of things, not about which thread happens to be quicker.
    truck_decided = threading.Event()

    def held_rules_in_force(*args, **kwargs):
        assert truck_decided.wait(30), "the test never let the preparation go on"
        return rules_in_force(*args, **kwargs)

    monkeypatch.setattr("edge_agent.core.rau.rules_in_force", held_rules_in_force)
    site.post(PreArrivalReceived(record=record("XK26EX700", "01 700-AB")))
    site.core.post(bundle_event(keys.bundle(8, big_set("central-8", 20_000, "01700AB"))))
    site.core.drain()
    assert site.link.busy, "the set is composed and indexed off the core thread"
    for event in (VehicleDetected(lane="L1"), PlateRead(lane="L1", text="01700AB", confidence=0.95),
                  WeightStable(lane="L1", gross_kg=24100.0)):
        site.core.post(event)
    site.core.drain()
    # Queued behind the truck, the prepared set came in after its decision: the truck was
    # decided by the set in force (green), not held until the new one (red for its plate).
    lane = site.core.lanes["L1"]
    assert lane.phase is Phase.RELEASED and lane.channel == "green"
    truck_decided.set()
    site.post()  # let the preparation finish
    assert site.assessor.rules.get("C-BULK-19999") is not None
    assert TrustStore(site.data_dir / "trust").load().applied["central:central"].version == 8


def test_bundles_are_taken_one_at_a_time_so_a_rollback_behind_a_newer_one_is_refused(site, keys):
    site.core.post(bundle_event(keys.bundle(5, big_set("central-5", 5_000, "01500AB"))))
    site.core.post(bundle_event(keys.bundle(4, plate_set("central-4", "01400AB", indicator_id="C-OLD"))))
    site.core.post(bundle_event(keys.bundle(6, plate_set("central-6", "01600AB", indicator_id="C-NEW"))))
    site.post()
    assert [r["reason"] for r in site.outbox("bundle_rejected")] == ["rollback"]
    assert [a["version"] for a in site.outbox("indicators_applied")] == [5, 6]
    assert site.assessor.rules.get("C-NEW") is not None and site.assessor.rules.get("C-OLD") is None


def test_the_rau_holds_and_releases_a_crossings_data(site):
    site.post(PreArrivalReceived(record=record("XK26EX661", "01 661-AB")))
    crossing = site.cross("01661AB").crossing_id
    site.post(RauCommand(command="hold", crossing_id=crossing, reason="case RAU-2026-88"),
              RauCommand(command="hold", crossing_id="", reason="no crossing named"),
              RauCommand(command="hold", crossing_id="01NOSUCHCROSSING", reason="not on this site"))
    assert site.store.on_hold(crossing)
    assert site.store.hold_of(crossing)["placed_by"] == "rau"
    assert site.core.counters["refused_rau_command"] == 1
    assert site.core.counters["refused_hold_changed"] == 1
    site.post(RauCommand(command="release_hold", crossing_id=crossing, reason="case closed"))
    assert not site.store.on_hold(crossing)
