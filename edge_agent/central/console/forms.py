"""The RAU console's forms, checked field by field (each refusal is shown next to its field).

A raise names the truck by its declaration's reference or its plate (or both), a channel
of the administration's code list, a reason and how long the site keeps waiting for the
truck. Whether the raise is one (never a lowering) is decided against what the ledger
knows of the truck, in `raise_problem`, once the form itself is sound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge_agent.config import PolicyConfig
from edge_agent.lane import raise_refusal
from edge_agent.plates.normal_form import normalize_plate

REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{2,39}$")
PLATE = re.compile(r"^[A-Z0-9]{2,12}$")
INDICATOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_REASON = 3
MAX_REASON = 400  # the downlink carries at most 500, the asking user's name goes with it
MAX_HOURS = 168


@dataclass
class Form:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(data: Mapping[str, Any], name: str, max_len: int = 1000) -> str:
    value = data.get(name, "")
    return value.strip()[:max_len + 1] if isinstance(value, str) else ""


def raise_form(data: Mapping[str, Any], policy: PolicyConfig) -> Form:
    form = Form()
    v = form.values
    v["reference"] = _text(data, "reference", 40)
    if v["reference"] and not REFERENCE.match(v["reference"]):
        form.errors["reference"] = "the declaration's reference: 3-40 letters, digits, '/', '_', '.' or '-'"
    typed = _text(data, "plate", 40)
    v["plate"] = normalize_plate(typed) if typed else ""
    if typed and not PLATE.match(v["plate"]):
        form.errors["plate"] = "2-12 letters and digits (spaces and dashes are ignored)"
    if not v["reference"] and not v["plate"] and "reference" not in form.errors and "plate" not in form.errors:
        form.errors["reference"] = "give the declaration's reference, the plate, or both"
    v["channel"] = _text(data, "channel", 40)
    if v["channel"] not in {c.code for c in policy.channels}:
        form.errors["channel"] = "one of the channels: " + ", ".join(c.code for c in policy.channels)
    v["reason"] = _text(data, "reason", MAX_REASON)
    if len(v["reason"]) < MIN_REASON:
        form.errors["reason"] = f"give a reason (at least {MIN_REASON} characters): the officer reads it"
    elif len(v["reason"]) > MAX_REASON:
        form.errors["reason"] = f"at most {MAX_REASON} characters"
    try:
        v["hours"] = int(_text(data, "hours") or "24")
        if not 1 <= v["hours"] <= MAX_HOURS:
            raise ValueError
    except ValueError:
        form.errors["hours"] = f"a whole number of hours from 1 to {MAX_HOURS}"
    return form


def raise_problem(current: str, requested: str, ended: str, policy: PolicyConfig) -> str:
    """Why the ledger's knowledge of the truck forbids this raise ("" when it may go).

    `current` is the strictest channel the truck already has (its hits, earlier raises),
    `ended` the crossing that already ended for this declaration ('' when none)."""
    if ended:
        return f"the crossing of this declaration has ended ({ended}): there is no truck left to re-route"
    return raise_refusal(current, requested, policy)


def search_form(data: Mapping[str, Any], policy: PolicyConfig) -> Form:
    """The crossing search (GET parameters); empty fields match anything."""
    form = Form()
    v = form.values
    typed = _text(data, "plate", 40)
    v["plate"] = normalize_plate(typed) if typed else ""
    if typed and not PLATE.match(v["plate"]):
        form.errors["plate"] = "2-12 letters and digits (spaces and dashes are ignored)"
    v["reference"] = _text(data, "reference", 40)
    if v["reference"] and not REFERENCE.match(v["reference"]):
        form.errors["reference"] = "3-40 letters, digits, '/', '_', '.' or '-'"
    v["indicator_id"] = _text(data, "indicator", 64)
    if v["indicator_id"] and not INDICATOR.match(v["indicator_id"]):
        form.errors["indicator"] = "an indicator's id: letters, digits, '_', '.', ':' or '-'"
    v["party"] = _text(data, "party", 100)
    if v["party"] and len(v["party"]) < 3:
        form.errors["party"] = "at least 3 letters of a consignor's or consignee's name"
    v["channel"] = _text(data, "channel", 40)
    if v["channel"] and v["channel"] not in {c.code for c in policy.channels}:
        form.errors["channel"] = "one of the channels"
    v["site"] = _text(data, "site", 64)
    if v["site"] and not SITE.match(v["site"]):
        form.errors["site"] = "a site id"
    for name in ("since", "until"):
        text = _text(data, name, 40)
        v[name] = None
        if text:
            try:
                when = datetime.fromisoformat(text)
                v[name] = when if when.tzinfo else when.replace(tzinfo=UTC)
            except ValueError:
                form.errors[name] = "a date and time, e.g. 2026-03-01 or 2026-03-01T08:00"
    return form
