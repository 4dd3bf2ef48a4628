"""assess() on the demo set: the trucks the demo plants, the clean truck, and the policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from testkit import rule_builders as b

from edge_agent.config import ChannelConfig
from edge_agent.local_rules import Verdict, assess, load_indicator_set
from edge_agent.models import Item, Party

DEMO = load_indicator_set(b.DEMO_SET)


def run(record, seen=None, rules=DEMO, policy=None, now=b.NOW) -> Verdict:
    return assess(record, seen or b.make_seen(), rules, policy or b.quiet_policy(), now=now)


def test_a_normal_truck_gets_no_hit_and_green():
    record = b.make_record(items=[Item(hs_code="8471"), Item(hs_code="9403"), Item(hs_code="0702")])
    verdict = run(record, b.make_seen(24000 * 1.029))
    assert verdict.hits == [] and verdict.channel == "green" and not verdict.random_selected
    assert verdict.deviation_kg == pytest.approx(696.0)
    assert verdict.deviation_pct == pytest.approx(2.9)
    assert verdict.indicator_set == "demo-2026.1" and not verdict.stale


@pytest.mark.parametrize(("measured", "hit"), [(26401, True), (21599, True), (26399, False), (25000, False)])
def test_weight_deviation_both_ways_over_10_pct_and_1000_kg(measured, hit):
    verdict = run(b.make_record(), b.make_seen(measured))
    assert (["C-WEIGHT-10"] if hit else []) == [h.indicator_id for h in verdict.hits]
    assert verdict.channel == ("red" if hit else "green")


def test_small_trucks_need_more_than_1000_kg_as_well():
    verdict = run(b.make_record(gross_kg=5000), b.make_seen(5900))  # 18 % but 900 kg
    assert verdict.hits == []


@pytest.mark.parametrize("name", ["DRINI TRADE SHPK", "Trgovina Ekspres d.o.o.", "Balkan Logistik D.O.O."])
def test_watch_listed_consignees_go_orange(name):
    verdict = run(b.make_record(consignee=Party(name=name, country="XK")))
    assert [h.indicator_id for h in verdict.hits] == ["R-CONSIGNEE-WATCH"]
    assert verdict.channel == "orange"
    assert verdict.instructions == ["Scan the truck and compare the image with the manifest."]


def test_tobacco_and_weight_together_merge_instructions_strongest_first():
    record = b.make_record(items=[Item(hs_code="2402200000"), Item(hs_code="9403")],
                           consignee=Party(name="Drini Trade"))
    verdict = run(record, b.make_seen(30000))
    ids = [h.indicator_id for h in verdict.hits]
    assert ids == ["C-WEIGHT-10", "L-TOBACCO-24", "R-CONSIGNEE-WATCH"]  # red (by priority), then orange
    assert verdict.channel == "red"
    assert len(verdict.instructions) == 3
    tob = verdict.hits[1]
    assert (tob.level, tob.version, tob.channel) == ("local", 1, "red")
    assert tob.matched == {"items.hs_code": {"value": "2402200000", "list": "tobacco_hs"}}


def test_no_record_gives_the_policy_channel_and_indicators_may_raise_it():
    verdict = run(None, b.make_seen(15000, plate="PR999ZZ"))
    assert verdict.channel == "yellow" and [h.indicator_id for h in verdict.hits] == ["C-NO-RECORD"]
    assert verdict.deviation_kg is None and verdict.deviation_pct is None
    empty = load_indicator_set({"version": "e", "indicators": []})
    assert run(None, rules=empty).channel == "yellow"
    assert run(None, rules=empty, policy=b.quiet_policy(no_prearrival_channel="red")).channel == "red"


def test_declared_empty_but_loaded():
    record = b.make_record(declared_empty=True, gross_kg=14500, items=[])
    assert run(record, b.make_seen(14800)).hits == []
    verdict = run(record, b.make_seen(20500))
    assert "C-EMPTY-LOADED" in [h.indicator_id for h in verdict.hits] and verdict.channel == "red"


def test_an_expired_set_is_stale_and_floors_the_channel():
    rules = load_indicator_set({"version": "old", "expires_at": "2026-05-01T00:00:00Z", "indicators": []})
    verdict = run(b.make_record(), rules=rules)
    assert verdict.stale and verdict.channel == "yellow"
    assert not run(b.make_record(), rules=rules, now=b.NOW - timedelta(days=5)).stale
    red_floor = b.quiet_policy(stale_channel="red")
    assert run(b.make_record(), rules=rules, policy=red_floor).channel == "red"


def test_random_selection_turns_some_greens_into_the_random_channel():
    policy = b.quiet_policy(random_share_pct=50.0)
    outcomes = {f"REF-{n}": run(b.make_record(reference=f"REF-{n}"), policy=policy) for n in range(200)}
    selected = [ref for ref, v in outcomes.items() if v.random_selected]
    assert 60 < len(selected) < 140
    assert all(outcomes[ref].channel == "yellow" for ref in selected)
    assert all(v.channel == "green" for v in outcomes.values() if not v.random_selected)
    # a truck that is not green is never "randomly selected", even with a selected reference
    red = run(b.make_record(reference=selected[0]), b.make_seen(40000), policy=policy)
    assert red.channel == "red" and not red.random_selected


def test_per_channel_shares_are_reproducible_and_follow_the_shares():
    rules = load_indicator_set({"version": "s", "indicators": [{
        "id": "S-1", "level": "central", "when": {"field": "procedure", "op": "exists"},
        "action": {"shares_pct": {"red": 20, "yellow": 80}}}]})
    channels = [run(b.make_record(reference=f"R{n}"), rules=rules).channel for n in range(2000)]
    assert 300 < channels.count("red") < 500
    again = [run(b.make_record(reference=f"R{n}"), rules=rules).channel for n in range(2000)]
    assert channels == again


def test_custom_channel_code_list_and_unknown_channels_fail_strong():
    policy = b.quiet_policy(
        channels=[ChannelConfig(code="stop", label="Stop", precedence=1, gate="inspection"),
                  ChannelConfig(code="go", label="Go", precedence=2, gate="release")],
        default_channel="go", no_prearrival_channel="stop", random_channel="stop", stale_channel="stop")
    rules = load_indicator_set({"version": "u", "indicators": [{
        "id": "U-1", "level": "local", "when": {"field": "procedure", "op": "exists"},
        "action": {"channel": "purple"}}]})
    verdict = run(b.make_record(), rules=rules, policy=policy)
    assert verdict.channel == "stop" and verdict.hits[0].channel == "purple"
