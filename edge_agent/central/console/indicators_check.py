"""An indicator-set draft checked with the risk engine's own validation, every problem
with the path of what is wrong (`indicators[2].when.op`), and the one-indicator form.

Pure: no ledger, no clock. The validation is `local_rules.load_indicator_set` (the one
the sites run, docs/indicators.md); this module only turns its (id, reason) problems
into paths a JSON editor can point at. A condition's error is located by compiling the
tree's parts with the same compiler (`compile_condition`) until the smallest failing
part is found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.local_rules import IndicatorError, IndicatorSet, load_indicator_set
from edge_agent.local_rules.fields import FIELDS
from edge_agent.local_rules.operators import ConditionError, compile_condition
from edge_agent.local_rules.selectivity import SelectivityList

FORMAT = "bcp-indicators/1"
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # the editor's JSON; a bundle may be at most 8 MiB
SLOT_LEVELS = ("central", "region", "site")
# A bundle's level (sync/bundles.py) and the level its indicators are written at (local_rules).
INDICATOR_LEVEL = {"central": "central", "region": "regional", "site": "local"}
SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Checked:
    """A draft's document (None when it is not a JSON object), the compiled set when it
    is valid, and every problem as (path, message)."""

    document: dict[str, Any] | None
    rules: IndicatorSet | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rules is not None and not self.errors


def empty_set(version: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": version, "lists": {}, "indicators": []}


def check_text(text: str, channels: Iterable[str]) -> Checked:
    """Parse the JSON editor's text and check it."""
    if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        return Checked(None, errors=[("$", f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")])
    try:
        document = json.loads(text)
    except ValueError as err:
        return Checked(None, errors=[("$", f"not valid JSON: {err}")])
    if not isinstance(document, dict):
        return Checked(None, errors=[("$", "an indicator set is a JSON object")])
    return check_document(document, channels)


def check_document(document: dict[str, Any], channels: Iterable[str]) -> Checked:
    """Validate with the engine's loader; map each of its problems to a path."""
    try:
        rules = load_indicator_set(document, channels=list(channels))
    except IndicatorError as err:
        errors = [e for ident, reason in err.problems for e in _paths(document, ident, reason)]
        return Checked(document, errors=errors)
    if document.get("allow_partial") and rules.rejected:
        # A partial set would load with holes at the sites: the console never signs one.
        errors = [e for ident, reason in rules.rejected for e in _paths(document, ident, reason)]
        return Checked(document, errors=errors)
    return Checked(document, rules=rules)


def _paths(document: dict[str, Any], ident: str, reason: str) -> list[tuple[str, str]]:
    """One engine problem as (path, message) pairs."""
    if ident in ("(set)", "(file)"):
        return [_located("", part) for part in _parts(reason)]
    if ident.startswith("list "):
        return [_located(f"lists.{ident[5:]}", part) for part in _parts(reason)]
    raw = document.get("indicators")
    position = _position(raw if isinstance(raw, list) else [], ident, reason)
    if position is None:
        return [(f"lists.{ident}" if ident in (document.get("lists") or {}) else "lists", reason)]
    base = f"indicators[{position}]"
    if reason == "id used twice in the set":
        return [(f"{base}.id", reason)]
    indicator = raw[position] if isinstance(raw, list) else None
    if not isinstance(indicator, dict) or ":" in reason.split(" ", 1)[0] or _pydantic(reason):
        return [_located(base, part) for part in _parts(reason)]
    # A ConditionError: from the condition, the dates, or the action's channels.
    if reason.startswith("valid_to"):
        return [(f"{base}.valid_to", reason)]
    if reason.startswith("unknown channel"):
        return [(f"{base}.action", reason)]
    lists = _lists(document)
    return [(base + ".when" + condition_path(indicator.get("when"), lists), reason)]


def _pydantic(reason: str) -> bool:
    """Whether a reason is pydantic's "loc: msg; loc: msg" (the schema), not the compiler's."""
    head = reason.split(": ", 1)[0]
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", head)) and ": " in reason


def _parts(reason: str) -> list[str]:
    return [p for p in reason.split("; ") if p] or [reason]


def _located(base: str, part: str) -> tuple[str, str]:
    head, sep, message = part.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z0-9_.]+", head):
        path = ".".join(f"[{p}]" if p.isdigit() else p for p in head.split(".")).replace(".[", "[")
        return (f"{base}.{path}" if base else path), message
    return (base or "$"), part


def _position(raw: list[Any], ident: str, reason: str) -> int | None:
    if ident.startswith("#") and ident[1:].isdigit():
        return int(ident[1:])
    found = [i for i, item in enumerate(raw) if isinstance(item, dict) and item.get("id") == ident]
    if not found:
        return None
    return found[1] if reason == "id used twice in the set" and len(found) > 1 else found[0]


def _lists(document: dict[str, Any]) -> dict[str, SelectivityList]:
    """The set's valid lists, so that a condition naming one compiles as at the site."""
    lists = document.get("lists")
    if not isinstance(lists, dict) or not lists:
        return {}
    try:
        return load_indicator_set({**{k: v for k, v in document.items() if k != "indicators"},
                                   "allow_partial": True, "indicators": []}).lists
    except IndicatorError:
        return {}


def condition_path(tree: Any, lists: dict[str, SelectivityList]) -> str:
    """The path, below `when`, of the smallest part of a condition that does not compile
    ('' when the whole tree is at fault, or compiles)."""
    if not isinstance(tree, dict):
        return ""
    for combinator in ("all", "any"):
        children = tree.get(combinator)
        if len(tree) == 1 and isinstance(children, list):
            for i, child in enumerate(children):
                if _fails(child, lists):
                    return f".{combinator}[{i}]" + condition_path(child, lists)
            return ""
    if len(tree) == 1 and "not" in tree:
        return ".not" + condition_path(tree["not"], lists) if _fails(tree["not"], lists) else ""
    try:
        compile_condition(tree, lists)
    except ConditionError as err:
        return _leaf_key(str(err), tree)
    return ""


def _fails(tree: Any, lists: dict[str, SelectivityList]) -> bool:
    try:
        compile_condition(tree, lists)
    except ConditionError:
        return True
    return False


def _leaf_key(message: str, leaf: dict[str, Any]) -> str:
    if message.startswith("unknown field"):
        return ".field"
    if message.startswith(("unknown operator", "operator ")):
        return ".op"
    if "selectivity list" in message or message.startswith("'list'"):
        return ".list"
    if message.startswith("unknown key") or message.startswith("'"):
        return ""
    return ".value" if "value" in leaf else ""


# ------------------------------------------------------------------ the one-indicator form

ACTION_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def indicator_from_form(data: Mapping[str, Any], level: str) -> tuple[dict[str, Any], dict[str, str]]:
    """One indicator from the form's fields: (the indicator, errors by field). The
    condition is one leaf (field, operator, value); the JSON editor writes richer ones."""
    def text(name: str, limit: int = 2000) -> str:
        value = data.get(name, "")
        return value.strip()[:limit] if isinstance(value, str) else ""

    errors: dict[str, str] = {}
    value_text = text("value")
    value: Any = value_text
    if value_text.startswith("["):
        try:
            value = json.loads(value_text)
        except ValueError:
            errors["value"] = "a list of values is a JSON array, e.g. [\"2402\", \"2403\"]"
    elif getattr(FIELDS.get(text("field", 64)), "kind", "") == "number":
        # Only a numeric field's value is a number: an HS code's "0808" stays text.
        try:
            number = float(value_text)
            value = int(number) if number.is_integer() and "." not in value_text else number
        except ValueError:
            pass
    leaf: dict[str, Any] = {"field": text("field", 64), "op": text("op", 32)}
    if text("op", 32) != "exists":
        leaf["value"] = value
    try:
        priority = int(text("priority") or "0")
    except ValueError:
        errors["priority"] = "a whole number"
        priority = 0
    indicator = {
        "id": text("id", 80), "version": 1, "level": INDICATOR_LEVEL.get(level, "central"),
        "title": text("title", 300), "when": leaf, "action": {"channel": text("channel", 40)},
        "priority": priority, "instructions": text("instructions"),
    }
    return indicator, errors


def with_indicator(document: dict[str, Any], indicator: dict[str, Any]) -> dict[str, Any]:
    """The set with `indicator` added, or replacing the one with its id (its version one higher)."""
    indicators = [i for i in document.get("indicators") or [] if isinstance(i, dict)]
    for i, old in enumerate(indicators):
        if old.get("id") == indicator.get("id"):
            version = old.get("version") if isinstance(old.get("version"), int) else 0
            indicators[i] = {**indicator, "version": version + 1}
            break
    else:
        indicators.append(indicator)
    return {**document, "indicators": indicators}
