"""Loading, validation and merging of indicator sets."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from testkit import rule_builders as b

from edge_agent.errors import AgentError, IndicatorError
from edge_agent.local_rules import IndicatorSet, assess, load_indicator_set, load_indicator_sets

GOOD = {"id": "G-1", "level": "central", "when": {"field": "procedure", "op": "eq", "value": "TIR"},
        "action": {"channel": "yellow"}}


def problems_of(indicator: dict, lists: dict | None = None, **set_fields) -> list[tuple[str, str]]:
    with pytest.raises(IndicatorError) as err:
        load_indicator_set({"version": "x", "lists": lists or {}, "indicators": [GOOD, indicator], **set_fields})
    assert isinstance(err.value, AgentError) and isinstance(err.value, ValueError)
    return err.value.problems


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ({"field": "consignee.nmae", "op": "eq", "value": "X"}, "unknown field 'consignee.nmae'"),
        ({"field": "tractor_plate", "op": "regex", "value": "([A-Z"}, "bad regex"),
        ({"field": "gross_kg", "op": "gt", "value": "heavy"}, "needs a finite number"),
        ({"field": "gross_kg", "op": "prefix", "value": "1"}, "needs a text field"),
        ({"field": "consignee.name", "op": "gt", "value": 1}, "needs a numeric field"),
        ({"field": "consignee.name", "op": "in_list", "list": "nope"}, "unknown selectivity list 'nope'"),
        ({"field": "consignee.name", "op": "like", "value": "x"}, "unknown operator 'like'"),
        ({"field": "declared_empty", "op": "eq", "value": "yes"}, "is true/false"),
        ({"field": "consignee.name", "op": "fuzzy", "value": "x", "threshold": 150}, "threshold"),
        ({"all": []}, "non-empty array"),
        ({"field": "gross_kg", "op": "between", "value": [5, 1]}, "above high"),
    ],
)
def test_a_bad_condition_is_refused_with_the_id_and_reason(when, reason):
    problems = problems_of({"id": "BAD-1", "level": "local", "when": when, "action": {"channel": "red"}})
    assert len(problems) == 1
    assert problems[0][0] == "BAD-1" and reason in problems[0][1]


def test_wrong_types_and_unknown_keys_in_the_envelope():
    problems = problems_of({"id": "BAD-2", "level": "national", "when": GOOD["when"],
                            "action": {"channel": "red"}, "colour": "blue"})
    assert problems[0][0] == "BAD-2"
    assert "level" in problems[0][1] and "colour: unknown key" in problems[0][1]
    shares = problems_of({"id": "BAD-3", "level": "central", "when": GOOD["when"],
                          "action": {"shares_pct": {"red": 30, "yellow": 60}}})
    assert shares[0][0] == "BAD-3" and "add up to 100" in shares[0][1]


def test_a_bad_list_is_named():
    problems = problems_of({**GOOD, "id": "G-2"}, lists={"l1": {"kind": "planets", "entries": []}})
    assert problems[0][0] == "list l1" and "kind" in problems[0][1]


def test_unknown_channels_are_refused_only_when_the_site_codes_are_given():
    raw = {"version": "x", "indicators": [{**GOOD, "action": {"channel": "purple"}}]}
    assert len(load_indicator_set(raw)) == 1
    with pytest.raises(IndicatorError, match="G-1: unknown channel"):
        load_indicator_set(raw, channels=["red", "yellow", "green"])


def test_partial_loading_only_when_the_set_allows_it(caplog):
    bad = {"id": "BAD-4", "level": "local", "when": {"field": "nope", "op": "exists"}, "action": {"channel": "red"}}
    with caplog.at_level("WARNING", logger="edge_agent.local_rules.indicators"):
        with pytest.raises(IndicatorError):
            load_indicator_set({"version": "x", "indicators": [GOOD, bad]})
        assert "indicator_set_refused set=x" in caplog.text and "problems=1" in caplog.text
        partial = load_indicator_set({"version": "x", "allow_partial": True, "indicators": [GOOD, bad]})
    assert [i.id for i in partial.indicators] == ["G-1"]
    assert partial.rejected == (("BAD-4", "unknown field 'nope'"),)
    assert "indicator_rejected set=x id=BAD-4 reason=unknown field 'nope'" in caplog.text


def test_duplicate_ids_and_bad_files(tmp_path):
    with pytest.raises(IndicatorError, match="G-1: id used twice"):
        load_indicator_set({"version": "x", "indicators": [GOOD, GOOD]})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(IndicatorError, match="not valid JSON"):
        load_indicator_set(broken)
    with pytest.raises(IndicatorError, match="cannot read"):
        load_indicator_set(tmp_path / "missing.json")
    with pytest.raises(IndicatorError, match=r"\(set\)"):
        load_indicator_set({"indicators": []})  # no version label


def test_the_demo_set_loads_and_never_expires():
    rules = load_indicator_set(b.DEMO_SET)
    assert {"C-WEIGHT-10", "R-CONSIGNEE-WATCH", "L-TOBACCO-24", "C-NO-RECORD", "C-EMPTY-LOADED"} <= {
        i.id for i in rules.indicators}
    assert rules.expires_at is None and not rules.is_expired(b.NOW + timedelta(days=3650))


def test_merge_central_regional_local(tmp_path):
    central = {"version": "c-7", "expires_at": "2026-06-01T00:00:00Z", "indicators": [GOOD]}
    local = {"version": "l-2", "expires_at": "2026-05-20T00:00:00Z",
             "indicators": [{**GOOD, "id": "L-1", "level": "local"}, {**GOOD, "version": 2}]}
    paths = []
    for name, doc in (("central.json", central), ("local.json", local)):
        (tmp_path / name).write_text(json.dumps(doc))
        paths.append(tmp_path / name)
    merged = load_indicator_sets(paths)
    assert merged.version == "c-7+l-2"
    assert merged.expires_at.isoformat() == "2026-05-20T00:00:00+00:00"  # the earliest expiry
    assert {(i.id, i.version) for i in merged.indicators} == {("G-1", 2), ("L-1", 1)}  # newer version wins
    with pytest.raises(IndicatorError, match="G-1: version 1 defined in two sets"):
        IndicatorSet.merge(load_indicator_set(central), load_indicator_set({**central, "version": "c-8"}))
    assert len(IndicatorSet.merge()) == 0


def test_scope_validity_and_status():
    base = {"level": "regional", "when": {"field": "procedure", "op": "exists"}, "action": {"channel": "red"}}
    rules = load_indicator_set({"version": "x", "indicators": [
        {**base, "id": "ALL"},
        {**base, "id": "SITE-A", "scope": {"sites": ["bcp-a"]}},
        {**base, "id": "REGION-N", "scope": {"regions": ["north"]}},
        {**base, "id": "FUTURE", "valid_from": "2027-01-01T00:00:00Z"},
        {**base, "id": "PAST", "valid_to": "2026-01-01T00:00:00Z"},
        {**base, "id": "DRAFT", "status": "draft"},
        {**base, "id": "TRANSIT", "procedures": ["transit", "tir"]},
    ]})
    site_b = rules.for_site("bcp-b", "north")
    assert {i.id for i in site_b.indicators} == {"ALL", "REGION-N", "FUTURE", "PAST", "DRAFT", "TRANSIT"}
    verdict = assess(b.make_record(), b.make_seen(), site_b, b.quiet_policy(), now=b.NOW)
    assert [h.indicator_id for h in verdict.hits] == ["ALL", "REGION-N"]
    tir = assess(b.make_record(procedure="TIR"), b.make_seen(), site_b, b.quiet_policy(), now=b.NOW)
    assert {h.indicator_id for h in tir.hits} == {"ALL", "REGION-N", "TRANSIT"}


def test_show_round_trip_gives_an_equivalent_set():
    rules = load_indicator_set(b.DEMO_SET)
    again = load_indicator_set(rules.to_json())
    assert [i.to_json() for i in again.indicators] == [i.to_json() for i in rules.indicators]


def test_levels_rank_a_local_indicator_never_replaces_a_central_one():
    """A local C-WEIGHT-10 version 2 marked inactive turned an overweight truck green when
    the higher version won whatever its level. The central one now stays in force."""
    demo = json.loads(b.DEMO_SET.read_text())
    central = {**demo, "indicators": [i for i in demo["indicators"] if i["id"] == "C-WEIGHT-10"]}
    central_weight = central["indicators"][0]
    local = {"version": "local-1", "indicators": [
        {**central_weight, "level": "local", "version": 2, "status": "inactive"},
        {**central_weight, "id": "L-EXTRA", "level": "local"}]}
    merged = IndicatorSet.merge(load_indicator_set(central), load_indicator_set(local))
    kept = merged.get("C-WEIGHT-10")
    assert (kept.level, kept.version, kept.status) == ("central", central_weight.get("version", 1), "active")
    assert merged.get("L-EXTRA") is not None  # adding is what a local set may do
    assert [r for r in merged.rejected if r[0] == "C-WEIGHT-10"] == [
        ("C-WEIGHT-10", "local version 2 left out: the id belongs to the central indicator (version 1)")]
    # The order the sets come in does not matter, nor does the same version at two levels.
    again = IndicatorSet.merge(load_indicator_set({**local, "indicators": [{**central_weight, "level": "local"}]}),
                               load_indicator_set(central))
    assert again.get("C-WEIGHT-10").level == "central"
    overweight = b.make_record(gross_kg=20000.0)
    verdict = assess(overweight, b.make_seen(measured_kg=25000.0), merged, b.quiet_policy(), now=b.NOW)
    assert verdict.channel == "red" and "C-WEIGHT-10" in [h.indicator_id for h in verdict.hits]


def test_a_local_indicator_may_not_take_a_central_id_and_is_told_when_it_is_written(tmp_path):
    from edge_agent.local_rules.local_set import checked_local_set, updated_local_set

    central = tmp_path / "central.json"
    central.write_text(json.dumps({"version": "c-1", "indicators": [GOOD]}))
    doc, _ = updated_local_set({"indicators": []}, {**GOOD, "level": "local"}, "bcp-test", "lara", b.NOW)
    with pytest.raises(IndicatorError, match="G-1: the id belongs to the central indicator G-1 .* choose another id"):
        checked_local_set(doc, tmp_path / "local.json", [central], tmp_path, ["red", "yellow", "green"])
    doc, _ = updated_local_set({"indicators": []}, {**GOOD, "id": "L-1", "level": "local"}, "bcp-test", "lara", b.NOW)
    assert checked_local_set(doc, tmp_path / "local.json", [central], tmp_path, ["red", "yellow", "green"]).get("L-1")
