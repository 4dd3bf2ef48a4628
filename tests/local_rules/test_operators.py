"""One test per operator: each must hit on the matching truck and miss on the other."""

from __future__ import annotations

import pytest
from testkit import rule_builders as b

from edge_agent.local_rules import assess, load_indicator_set
from edge_agent.models import Item, Party


def hits(when: dict, record=None, seen=None, lists=None, **fields) -> list:
    rules = load_indicator_set(b.one_indicator_set(when, lists, **fields))
    record = b.make_record() if record is None else record
    verdict = assess(record, seen or b.make_seen(), rules, b.quiet_policy(), now=b.NOW)
    return verdict.hits


def test_eq_compares_normalised_codes():
    when = {"field": "office_of_exit", "op": "eq", "value": " rs01001 "}
    assert [h.indicator_id for h in hits(when)] == ["T-1"]
    assert hits(when, b.make_record(office_of_exit="RS01002")) == []


def test_eq_on_booleans_and_numbers():
    assert hits({"field": "declared_empty", "op": "eq", "value": True}) == []
    assert len(hits({"field": "declared_empty", "op": "eq", "value": True}, b.make_record(declared_empty=True))) == 1
    assert len(hits({"field": "packages", "op": "eq", "value": 34})) == 1
    assert hits({"field": "packages", "op": "eq", "value": 35}) == []


def test_in_matches_any_listed_value():
    when = {"field": "consignee.country", "op": "in", "value": ["AT", "de"]}
    assert len(hits(when)) == 1
    assert hits(when, b.make_record(consignee=Party(name="X", country="IT"))) == []


def test_prefix_on_hs_chapters_and_headings():
    when = {"field": "items.hs_code", "op": "prefix", "value": ["2402", "94.03"]}
    found = hits(when)
    assert found and found[0].matched == {"items.hs_code": "9403600000"}
    assert hits(when, b.make_record(items=[Item(hs_code="9401")])) == []


def test_prefix_against_a_list():
    lists = {"tobacco": {"kind": "hs_codes", "entries": ["2402", "2403.11"]}}
    when = {"field": "items.hs_code", "op": "prefix", "list": "tobacco"}
    assert len(hits(when, b.make_record(items=[Item(hs_code="2403110000")]), lists=lists)) == 1
    assert hits(when, b.make_record(items=[Item(hs_code="2403190000")]), lists=lists) == []


def test_regex_runs_on_the_normalised_value():
    when = {"field": "tractor_plate", "op": "regex", "value": "^BG\\d{4}"}
    assert len(hits(when, b.make_record(tractor_plate="bg-1234 ab"))) == 1
    assert hits(when, b.make_record(tractor_plate="NS1234AB")) == []


@pytest.mark.parametrize(
    ("op", "value", "hit_at", "miss_at"),
    [
        ("gt", 30000, 30000.5, 30000),
        ("ge", 30000, 30000, 29999.9),
        ("lt", 10000, 9999, 10000),
        ("le", 10000, 10000, 10000.1),
        ("between", [20000, 25000], 25000, 25000.1),
    ],
)
def test_numeric_comparisons(op, value, hit_at, miss_at):
    when = {"field": "measured_kg", "op": op, "value": value}
    assert len(hits(when, seen=b.make_seen(hit_at))) == 1
    assert hits(when, seen=b.make_seen(miss_at)) == []
    # no weighing at all: a comparison has nothing to hold on
    assert hits(when, seen=b.make_seen(None)) == []


def test_in_list_on_plates_normalises_both_sides():
    lists = {"wanted": {"kind": "plates", "entries": ["BG 1234-AB", "SK 999 ZZ"]}}
    when = {"field": "plates", "op": "in_list", "list": "wanted"}
    found = hits(when, lists=lists)
    assert found[0].matched["plates"] == {"value": "BG1234AB", "list": "wanted", "entry": "BG 1234-AB"}
    assert hits(when, b.make_record(tractor_plate="NS1111AA", trailer_plate=""), lists=lists) == []


def test_exists_and_its_negation():
    assert len(hits({"field": "declarant.name", "op": "exists"},
                    b.make_record(declarant=Party(name="Spediter doo")))) == 1
    assert hits({"field": "declarant.name", "op": "exists"}) == []
    assert len(hits({"not": {"field": "declarant.name", "op": "exists"}})) == 1


def test_fuzzy_against_literal_names_with_threshold():
    when = {"field": "consignee.name", "op": "fuzzy", "value": "Euro Möbel G.m.b.H.", "threshold": 95}
    found = hits(when, b.make_record(consignee=Party(name="EURO MOBEL")))
    assert found and found[0].matched["consignee.name"]["score"] == 100.0
    # one typo: above 90, below 99
    typo = b.make_record(consignee=Party(name="Euro Mobell GmbH"))
    assert len(hits({**when, "threshold": 90}, typo)) == 1
    assert hits({**when, "threshold": 99}, typo) == []
    # no word in common: never a fuzzy match, however close the letters
    assert hits({**when, "threshold": 50}, b.make_record(consignee=Party(name="EUROMOBEL"))) == []


def test_fuzzy_against_a_list_reports_the_entry_as_written():
    lists = {"watch": {"kind": "companies", "entries": ["Balkan Logistik DOO", "Drini Trade SH.P.K."]}}
    when = {"field": "parties.name", "op": "fuzzy", "list": "watch"}
    record = b.make_record(consignor=Party(name="Балкан Логистик ДОО"))
    found = hits(when, record, lists=lists)
    assert found[0].matched["parties.name"] == {
        "value": "BALKAN LOGISTIK", "entry": "Balkan Logistik DOO", "score": 100.0, "list": "watch"}
    assert hits(when, lists=lists) == []


def test_all_any_not_combine():
    when = {"all": [
        {"field": "procedure", "op": "eq", "value": "EXPORT"},
        {"any": [{"field": "items.origin", "op": "eq", "value": "CN"},
                 {"field": "items.origin", "op": "eq", "value": "TR"}]},
        {"not": {"field": "consignee.country", "op": "eq", "value": "RS"}},
    ]}
    assert len(hits(when)) == 1
    assert hits(when, b.make_record(items=[Item(hs_code="9403", origin="RS")])) == []
    assert hits(when, b.make_record(consignee=Party(name="Domaci doo", country="RS"))) == []


def test_observed_fields_hour_weekday_plate_match():
    # NOW is Monday 09:30 UTC, 11:30 in Belgrade (CEST)
    rules = load_indicator_set(b.one_indicator_set({"all": [
        {"field": "local_hour", "op": "eq", "value": 11},
        {"field": "weekday", "op": "eq", "value": "mon"},
        {"field": "plate_match", "op": "in", "value": ["fuzzy", "manual"]},
    ]}))
    fuzzy_seen = b.make_seen(plate_match="fuzzy")
    assert assess(b.make_record(), fuzzy_seen, rules, b.quiet_policy(), now=b.NOW, site_tz="Europe/Belgrade").hits
    assert not assess(b.make_record(), fuzzy_seen, rules, b.quiet_policy(), now=b.NOW, site_tz="UTC").hits
    assert not assess(b.make_record(), b.make_seen(), rules, b.quiet_policy(), now=b.NOW,
                      site_tz="Europe/Belgrade").hits
