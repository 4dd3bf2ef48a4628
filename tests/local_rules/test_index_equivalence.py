"""Property: the indexed engine finds exactly the hits of the naive reference evaluator.

Random indicator sets (trees of every operator over every field kind, lists, procedures,
validity windows, statuses, per-channel shares) against random trucks drawn from the
same small vocabulary, so that hits, near-misses and fuzzy neighbours are frequent.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import naive_rules as naive
from testkit import rule_builders as b

from edge_agent.local_rules import assess, load_indicator_set
from edge_agent.models import Item, Observations, Party, PreArrival

NAMES = ["Drini Trade SH.P.K.", "DRINI TRADE", "Drini Trades", "Balkan Logistik DOO", "Balkan Logistic",
         "ТРГОВИНА ЕКСПРЕС ДОО", "Trgovina Ekspres", "Trgovina", "Euro Mobel GmbH", "Mobel Euro",
         "Alfa Beta", "Beta Gama doo", "Nova Trans"]
PLATES = ["BG1234AB", "BG1234AC", "SK 4567 CD", "PR111XY", "СК 4567 CD"]
HS = ["2402209000", "24021000", "2403", "8471300000", "0702000000", "9403600000", "2203"]
COUNTRIES = ["RS", "MK", "AL", "XK", "DE", "CN"]
PROCEDURES = ["export", "transit", "TIR", "ATA"]
CHANNELS = ["red", "orange", "yellow", "blue", "green"]

FIELDS_BY_KIND = {
    "name": ["consignor.name", "consignee.name", "declarant.name", "parties.name"],
    "plate": ["tractor_plate", "trailer_plate", "plates", "plate_read"],
    "hs": ["items.hs_code"],
    "code": ["consignee.country", "items.origin", "procedure", "country_of_dispatch", "plate_match", "weekday"],
    "number": ["gross_kg", "measured_kg", "deviation_kg", "deviation_pct", "deviation_abs_kg", "deviation_abs_pct",
               "packages", "local_hour", "items.count"],
    "bool": ["no_prearrival", "declared_empty", "declared_empty_loaded"],
}
VOCAB = {"name": NAMES, "plate": PLATES, "hs": HS + ["24", "2402", "84"],
         "code": COUNTRIES + PROCEDURES + ["exact", "none", "MON", "TUE"]}
NUMBERS = st.sampled_from([-5000, -10, 0, 3, 10, 11, 24, 1000, 15000, 20000, 24000, 30000])
LISTS = {
    "companies": {"kind": "companies",
                  "entries": ["Drini Trade SH.P.K.", "Balkan Logistik DOO", "ТРГОВИНА ЕКСПРЕС ДОО"]},
    "plates": {"kind": "plates", "entries": ["BG 1234 AB", "PR111XY"]},
    "tobacco": {"kind": "hs_codes", "entries": ["2402", "2403"]},
    "countries": {"kind": "countries", "entries": ["AL", "XK"]},
}


@st.composite
def leaves(draw):
    kind = draw(st.sampled_from(list(FIELDS_BY_KIND)))
    field = draw(st.sampled_from(FIELDS_BY_KIND[kind]))
    if kind == "bool":
        if draw(st.booleans()):
            return {"field": field, "op": "exists"}
        return {"field": field, "op": "eq", "value": draw(st.booleans())}
    if kind == "number":
        op = draw(st.sampled_from(["eq", "in", "lt", "le", "gt", "ge", "between", "exists"]))
        if op == "exists":
            return {"field": field, "op": op}
        if op == "in":
            return {"field": field, "op": op, "value": draw(st.lists(NUMBERS, min_size=1, max_size=3))}
        if op == "between":
            lo, hi = sorted(draw(st.tuples(NUMBERS, NUMBERS)))
            return {"field": field, "op": op, "value": [lo, hi]}
        return {"field": field, "op": op, "value": draw(NUMBERS)}
    words = VOCAB[kind]
    op = draw(st.sampled_from(["eq", "in", "prefix", "regex", "in_list", "exists", "fuzzy"]))
    if op == "exists":
        return {"field": field, "op": op}
    if op == "in":
        return {"field": field, "op": op, "value": draw(st.lists(st.sampled_from(words), min_size=1, max_size=3))}
    if op == "regex":
        return {"field": field, "op": op, "value": draw(st.sampled_from(["^BG", "4$", "TRADE", "^24", "X", "."]))}
    if op in ("in_list", "prefix", "fuzzy") and draw(st.booleans()) or op == "in_list":
        leaf = {"field": field, "op": op, "list": draw(st.sampled_from(sorted(LISTS)))}
    elif op == "prefix":
        prefix = draw(st.sampled_from(words))
        leaf = {"field": field, "op": op, "value": prefix[: draw(st.integers(1, max(1, len(prefix))))]}
    else:
        leaf = {"field": field, "op": op, "value": draw(st.sampled_from(words))}
    if op == "fuzzy":
        leaf["threshold"] = draw(st.sampled_from([50, 80, 90, 100]))
    return leaf


def _valid_leaf(leaf):
    # Some drawn leaves normalise to nothing (a prefix of punctuation); the loader refuses
    # those, which test_indicators covers. Keep the property about matching.
    value = leaf.get("value")
    return not (isinstance(value, str) and not any(ch.isalnum() for ch in value))


conditions = st.recursive(
    leaves().filter(_valid_leaf),
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=6,
)


@st.composite
def indicators(draw, n):
    out = []
    for i in range(n):
        ind = {"id": f"I-{i}", "level": draw(st.sampled_from(["central", "regional", "local"])),
               "when": draw(conditions), "priority": draw(st.integers(0, 3))}
        if draw(st.integers(0, 4)) == 0:
            a, c = draw(st.sampled_from(CHANNELS)), draw(st.sampled_from(CHANNELS))
            ind["action"] = {"shares_pct": {a: 40, c: 60}} if a != c else {"channel": a}
        else:
            ind["action"] = {"channel": draw(st.sampled_from(CHANNELS))}
        if draw(st.integers(0, 5)) == 0:
            ind["procedures"] = draw(st.lists(st.sampled_from(PROCEDURES), min_size=1, max_size=2))
        if draw(st.integers(0, 7)) == 0:
            ind["status"] = draw(st.sampled_from(["inactive", "draft"]))
        if draw(st.integers(0, 7)) == 0:
            ind["valid_to"] = (b.NOW + timedelta(days=draw(st.integers(-2, 2)))).isoformat()
        out.append(ind)
    return out


@st.composite
def trucks(draw):
    record = None
    if draw(st.integers(0, 5)) > 0:
        items = [Item(hs_code=draw(st.sampled_from(HS)), origin=draw(st.sampled_from(COUNTRIES)))
                 for _ in range(draw(st.integers(0, 3)))]
        record = PreArrival(
            reference=f"REF-{draw(st.integers(0, 50))}",
            procedure=draw(st.sampled_from(PROCEDURES)),
            tractor_plate=draw(st.sampled_from(PLATES)),
            trailer_plate=draw(st.sampled_from(PLATES + [""])),
            gross_kg=draw(st.sampled_from([0, 1000, 14000, 24000])),
            declared_empty=draw(st.booleans()),
            consignor=Party(name=draw(st.sampled_from(NAMES)), country=draw(st.sampled_from(COUNTRIES))),
            consignee=Party(name=draw(st.sampled_from(NAMES)), country=draw(st.sampled_from(COUNTRIES))),
            declarant=Party(name=draw(st.sampled_from(NAMES))) if draw(st.booleans()) else None,
            items=items,
            country_of_dispatch=draw(st.sampled_from(COUNTRIES + [""])),
            packages=draw(st.integers(0, 30)),
            sent_at=b.NOW,
        )
    seen = Observations(
        lane="L1", tractor_plate=draw(st.sampled_from(PLATES + [""])),
        plate_match=draw(st.sampled_from(["exact", "fuzzy", "none"])),
        measured_kg=draw(st.sampled_from([None, 0, 1000, 15000, 21000, 24000, 26500, 30000])), at=b.NOW)
    hour = draw(st.integers(0, 23 * 7))
    return record, seen, b.NOW + timedelta(hours=hour - 80)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=indicators(12), cases=st.lists(trucks(), min_size=1, max_size=5))
def test_indexed_engine_equals_naive_evaluator(raw, cases):
    doc = {"version": "prop", "lists": LISTS, "indicators": raw}
    rules = load_indicator_set(doc)
    reference = naive.NaiveEngine(doc)
    policy = b.quiet_policy()
    for record, seen, now in cases:
        verdict = assess(record, seen, rules, policy, now=now, site_tz="Europe/Skopje")
        expected = reference.hits(record, seen, policy, now=now, site_tz="Europe/Skopje")
        assert sorted((h.indicator_id, h.channel) for h in verdict.hits) == sorted(expected)


@settings(max_examples=60, deadline=None, database=None)
@given(raw=indicators(40), cases=st.lists(trucks(), min_size=1, max_size=3))
def test_equivalence_holds_on_larger_sets(raw, cases):
    doc = {"version": "prop", "lists": LISTS, "indicators": raw}
    rules = load_indicator_set(doc)
    reference = naive.NaiveEngine(doc)
    for record, seen, now in cases:
        got = sorted((h.indicator_id, h.channel) for h in assess(record, seen, rules, b.quiet_policy(), now=now).hits)
        assert got == sorted(reference.hits(record, seen, b.quiet_policy(), now=now))


flat_conditions = st.one_of(
    leaves().filter(_valid_leaf),
    st.builds(lambda a, c: {"all": [a, c]}, leaves().filter(_valid_leaf), leaves().filter(_valid_leaf)),
    st.builds(lambda a, c: {"any": [a, c]}, leaves().filter(_valid_leaf), leaves().filter(_valid_leaf)),
)


@st.composite
def flat_indicators(draw, n):
    # Shallow conditions hit often, so every index structure (and groups shared by
    # several indicators with different thresholds) is exercised by actual hits.
    return [{"id": f"F-{i}", "level": "local", "when": draw(flat_conditions),
             "action": {"channel": draw(st.sampled_from(CHANNELS))}} for i in range(n)]


@settings(max_examples=200, deadline=None, database=None)
@given(raw=flat_indicators(30), cases=st.lists(trucks(), min_size=3, max_size=6))
def test_equivalence_on_many_shallow_indicators(raw, cases):
    doc = {"version": "flat", "lists": LISTS, "indicators": raw}
    rules = load_indicator_set(doc)
    reference = naive.NaiveEngine(doc)
    for record, seen, now in cases:
        got = sorted(h.indicator_id for h in assess(record, seen, rules, b.quiet_policy(), now=now).hits)
        assert got == sorted(i for i, _ in reference.hits(record, seen, b.quiet_policy(), now=now))
