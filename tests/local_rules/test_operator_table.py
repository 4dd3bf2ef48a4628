"""Operators are a table: a new one is one module and one line, and the compiler, the
explanation, the JSON round trip and the index all take it from there."""

from __future__ import annotations

from typing import Any

import pytest
from testkit import rule_builders as b

from edge_agent.local_rules import assess, load_indicator_set
from edge_agent.local_rules.fields import NORMALIZERS
from edge_agent.local_rules.ops import OPERATORS
from edge_agent.local_rules.ops.base import Leaf, Operator, strings
from edge_agent.local_rules.selectivity import SelectivityList
from edge_agent.models import Party

# ---- what a new operator's module would hold -------------------------------------------------

class EndsWith(Leaf):
    """suffix: the normalised value ends with one of the suffixes (made up for this test)."""

    __slots__ = ("suffixes", "written")

    def __init__(self, field: str, suffixes: tuple[str, ...], written: Any) -> None:
        super().__init__(field, "suffix")
        self.suffixes = suffixes
        self.written = written

    def holds(self, value: Any) -> bool:
        return value.endswith(self.suffixes)

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": "suffix", "value": self.written}

    # No index hook of its own: the base files it under ("e", field), the field's presence.


def compile_suffix(name: str, op: str, kind: str, leaf: dict[str, Any], lst: SelectivityList | None) -> EndsWith:
    return EndsWith(name, tuple(NORMALIZERS[kind](s) for s in strings(op, leaf["value"])), leaf["value"])


SUFFIX = Operator(names=("suffix",), compile=compile_suffix, kinds="text")


@pytest.fixture
def suffix_operator(monkeypatch):
    monkeypatch.setitem(OPERATORS, "suffix", SUFFIX)  # the one line in ops/__init__.py


# -----------------------------------------------------------------------------------------------

def test_a_new_operator_compiles_matches_explains_and_round_trips(suffix_operator):
    when = {"field": "consignee.name", "op": "suffix", "value": "mobel"}
    rules = load_indicator_set(b.one_indicator_set(when))
    indicator = rules.get("T-1")
    assert indicator.node.to_json() == when
    verdict = assess(b.make_record(), b.make_seen(), rules, b.quiet_policy(), now=b.NOW)
    assert [(h.indicator_id, h.matched) for h in verdict.hits] == [("T-1", {"consignee.name": "EURO MOBEL"})]
    other = b.make_record(consignee=Party(name="Prizren Food LLC", country="XK"))
    assert assess(other, b.make_seen(), rules, b.quiet_policy(), now=b.NOW).hits == []


def test_the_index_files_a_new_operator_by_its_hooks(suffix_operator):
    alone = load_indicator_set(b.one_indicator_set({"field": "consignee.name", "op": "suffix", "value": "x"}))
    assert alone.index().stats()["exists"] == 1  # the base hook: scanned when the field is present
    paired = load_indicator_set(b.one_indicator_set({"all": [
        {"field": "consignee.country", "op": "eq", "value": "DE"},
        {"field": "consignee.name", "op": "suffix", "value": "mobel"}]}))
    stats = paired.index().stats()
    assert (stats["hash_keys"], stats["exists"]) == (1, 0)  # the cheaper sibling anchors the indicator
    verdict = assess(b.make_record(), b.make_seen(), paired, b.quiet_policy(), now=b.NOW)
    assert [h.indicator_id for h in verdict.hits] == ["T-1"]


def test_the_compiler_applies_the_new_operators_spec(suffix_operator):
    from edge_agent.errors import IndicatorError

    with pytest.raises(IndicatorError, match="operator suffix needs a text field, gross_kg is number"):
        load_indicator_set(b.one_indicator_set({"field": "gross_kg", "op": "suffix", "value": "0"}))
    with pytest.raises(IndicatorError, match="'list' does not apply to suffix"):
        load_indicator_set(b.one_indicator_set({"field": "consignee.name", "op": "suffix", "list": "x"}))
    with pytest.raises(IndicatorError, match="suffix needs a 'value'"):
        load_indicator_set(b.one_indicator_set({"field": "consignee.name", "op": "suffix"}))


def test_without_its_line_the_operator_is_unknown():
    from edge_agent.errors import IndicatorError

    with pytest.raises(IndicatorError, match="unknown operator 'suffix'"):
        load_indicator_set(b.one_indicator_set({"field": "consignee.name", "op": "suffix", "value": "x"}))


def test_a_list_named_by_something_else_than_a_string_is_refused_not_a_crash():
    from edge_agent.errors import IndicatorError

    with pytest.raises(IndicatorError, match=r"unknown selectivity list \['watch'\]"):
        load_indicator_set(b.one_indicator_set({"field": "consignee.name", "op": "in_list", "list": ["watch"]}))
