"""The index's edge cases, each one a way a candidate filter could lose a hit."""

from __future__ import annotations

from testkit import rule_builders as b

from edge_agent.local_rules import assess, load_indicator_set
from edge_agent.models import Item, Party

LISTS = {"watch": {"kind": "companies", "entries": ["Drini Trade SH.P.K."]}}


def ids(indicators, record, seen=None, lists=None):
    rules = load_indicator_set({"version": "i", "lists": lists or {}, "indicators": [
        {"level": "central", "action": {"channel": "red"}, **i} for i in indicators]})
    verdict = assess(record, seen or b.make_seen(), rules, b.quiet_policy(), now=b.NOW)
    return sorted(h.indicator_id for h in verdict.hits)


def test_fuzzy_list_group_opens_for_every_threshold():
    # One group per (field, list); the strict indicator comes first and must not close it.
    indicators = [
        {"id": "STRICT", "when": {"field": "consignee.name", "op": "fuzzy", "list": "watch", "threshold": 100}},
        {"id": "LOOSE", "when": {"field": "consignee.name", "op": "fuzzy", "list": "watch", "threshold": 80}},
    ]
    record = b.make_record(consignee=Party(name="Drini Trades shpk"))
    assert ids(indicators, record, lists=LISTS) == ["LOOSE"]
    assert ids(indicators, b.make_record(consignee=Party(name="DRINI TRADE")), lists=LISTS) == ["LOOSE", "STRICT"]


def test_prefix_as_long_as_the_code():
    indicators = [{"id": "FULL", "when": {"field": "items.hs_code", "op": "prefix", "value": "2203000100"}}]
    assert ids(indicators, b.make_record(items=[Item(hs_code="2203000100")])) == ["FULL"]


def test_ranges_both_ways_and_at_the_bound():
    indicators = [
        {"id": "GE", "when": {"field": "gross_kg", "op": "ge", "value": 24000}},
        {"id": "GT", "when": {"field": "gross_kg", "op": "gt", "value": 24000}},
        {"id": "LE", "when": {"field": "gross_kg", "op": "le", "value": 24000}},
        {"id": "LT", "when": {"field": "gross_kg", "op": "lt", "value": 24000}},
        {"id": "IN", "when": {"field": "gross_kg", "op": "between", "value": [23000, 24000]}},
    ]
    assert ids(indicators, b.make_record(gross_kg=24000)) == ["GE", "IN", "LE"]


def test_residual_and_any_with_an_unanchored_branch():
    indicators = [
        {"id": "NOT", "when": {"not": {"field": "consignee.country", "op": "eq", "value": "RS"}}},
        {"id": "ANY", "when": {"any": [{"field": "tractor_plate", "op": "eq", "value": "XX1"},
                                      {"not": {"field": "items.origin", "op": "eq", "value": "XX"}}]}},
    ]
    assert ids(indicators, b.make_record()) == ["ANY", "NOT"]


def test_fuzzy_literal_found_through_any_shared_word():
    when = {"field": "parties.name", "op": "fuzzy", "value": "Mobel Euro", "threshold": 100}
    indicators = [{"id": "FZ", "when": when}]
    assert ids(indicators, b.make_record()) == ["FZ"]  # consignee "Euro Mobel GmbH": word order ignored


def test_procedure_only_anchor():
    indicators = [{"id": "TIR", "procedures": ["TIR"], "when": {"not": {"field": "packages", "op": "eq", "value": 0}}}]
    assert ids(indicators, b.make_record(procedure="tir")) == ["TIR"]
    assert ids(indicators, b.make_record(procedure="export")) == []
