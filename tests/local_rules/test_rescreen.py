"""Re-screening pending pre-arrivals when a new indicator set arrives."""

from __future__ import annotations

from testkit import rule_builders as b

from edge_agent.local_rules import load_indicator_set, rescreen
from edge_agent.models import Item, Party


def test_a_new_set_flags_trucks_before_they_arrive():
    pending = [
        b.make_record(reference="P-1"),
        b.make_record(reference="P-2", tractor_plate="PR111XY", consignee=Party(name="Drini Trade shpk")),
        b.make_record(reference="P-3", items=[Item(hs_code="2402100000")]),
    ]
    old = load_indicator_set({"version": "v1", "indicators": []})
    assert [v.channel for _, v in rescreen(pending, old, b.quiet_policy(), now=b.NOW)] == ["green"] * 3

    new = load_indicator_set(b.DEMO_SET)
    results = rescreen(pending, new, b.quiet_policy(), now=b.NOW)
    assert [ref for ref, _ in results] == ["P-1", "P-2", "P-3"]
    by_ref = {ref: v for ref, v in results}
    assert by_ref["P-1"].hits == [] and by_ref["P-1"].channel == "green"
    assert [h.indicator_id for h in by_ref["P-2"].hits] == ["R-CONSIGNEE-WATCH"]
    assert [h.indicator_id for h in by_ref["P-3"].hits] == ["L-TOBACCO-24"]
    # no truck yet: no weight, so no weight indicator and no deviation, and the record is there
    assert all(v.deviation_kg is None for _, v in results)
    assert all("C-NO-RECORD" not in [h.indicator_id for h in v.hits] for _, v in results)


def test_plate_lists_use_the_record_plates_when_no_truck_is_there():
    rules = load_indicator_set({"version": "p", "lists": {"wanted": {"kind": "plates", "entries": ["PR 111 XY"]}},
                                "indicators": [{"id": "W-1", "level": "central", "action": {"channel": "red"},
                                                "when": {"field": "plate_read", "op": "in_list", "list": "wanted"}}]})
    results = rescreen([b.make_record(reference="A", tractor_plate="PR111XY"), b.make_record(reference="B")],
                       rules, b.quiet_policy(), now=b.NOW)
    assert [(ref, v.channel) for ref, v in results] == [("A", "red"), ("B", "green")]
