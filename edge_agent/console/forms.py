"""Server-side validation of every console form, field by field.

Each function takes the submitted form (a mapping of strings) and returns a `Form`:
the cleaned values and, per field, the reason it was refused. The pages show each
reason next to its field; nothing is posted to the core unless `ok`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.config import PolicyConfig
from edge_agent.errors import IndicatorError
from edge_agent.lane import raise_refusal
from edge_agent.local_rules import load_indicator_set
from edge_agent.plates.normal_form import normalize_plate

PLATE = re.compile(r"^[A-Z0-9]{2,12}$")
INDICATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
CONTROL_TYPES = ("documents", "physical", "scanner", "physical_and_scanner")
MIN_REASON = 3


@dataclass
class Form:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(data: Mapping[str, Any], name: str, max_len: int = 1000) -> str:
    value = data.get(name, "")
    return value.strip()[:max_len + 1] if isinstance(value, str) else ""


def _reason(form: Form, data: Mapping[str, Any], required: bool = True) -> None:
    reason = _text(data, "reason")
    if required and len(reason) < MIN_REASON:
        form.errors["reason"] = f"give a reason (at least {MIN_REASON} characters)"
    elif len(reason) > 1000:
        form.errors["reason"] = "at most 1000 characters"
    form.values["reason"] = reason


def _start(data: Mapping[str, Any]) -> Form:
    return Form(raw={k: v for k, v in data.items() if isinstance(v, str)})


def plate_form(data: Mapping[str, Any]) -> Form:
    form = _start(data)
    text = normalize_plate(_text(data, "plate", 40))
    if not PLATE.match(text):
        form.errors["plate"] = "2-12 letters and digits (spaces and dashes are ignored)"
    role = _text(data, "role") or "tractor"
    if role not in ("tractor", "trailer"):
        form.errors["role"] = "tractor or trailer"
    form.values.update(plate=text, role=role)
    _reason(form, data)
    return form


def release_form(data: Mapping[str, Any]) -> Form:
    form = _start(data)
    _reason(form, data)
    return form


def control_act_form(data: Mapping[str, Any], snapshots: list[str], then_choices=("hold", "release", "refuse")) -> Form:
    form = _start(data)
    v = form.values
    v["control_type"] = _text(data, "control_type")
    if v["control_type"] not in CONTROL_TYPES:
        form.errors["control_type"] = "choose the control that was done"
    v["result"] = _text(data, "result")
    if v["result"] not in ("positive", "negative"):
        form.errors["result"] = "positive (something found) or negative"
    for name, limit in (("findings", 4000), ("seized_goods", 1000), ("penalties", 2000), ("legal_basis", 1000),
                        ("measures", 2000)):
        v[name] = _text(data, name, limit)
        if len(v[name]) > limit:
            form.errors[name] = f"at most {limit} characters"
    if v["result"] == "positive" and not v["findings"]:
        form.errors["findings"] = "a positive control needs its findings"
    v["seizure"] = _text(data, "seizure") in ("on", "yes", "true", "1")
    amount_text = _text(data, "evaded_duties_eur").replace(",", "")
    v["evaded_duties_eur"] = 0.0
    if amount_text:
        try:
            amount = float(amount_text)
            if not math.isfinite(amount) or amount < 0 or amount > 1e10:
                raise ValueError
            v["evaded_duties_eur"] = round(amount, 2)
        except ValueError:
            form.errors["evaded_duties_eur"] = "an amount in EUR, 0 or more"
    if v["seizure"]:
        if v["result"] != "positive":
            form.errors["result"] = "a seizure is a positive result"
        if not v["seized_goods"]:
            form.errors["seized_goods"] = "say what was seized"
        if not amount_text:
            form.errors["evaded_duties_eur"] = "a seizure needs the evaded duties amount"
        if not v["legal_basis"]:
            form.errors["legal_basis"] = "a seizure needs its legal basis"
    elif amount_text and v["evaded_duties_eur"] > 0:
        form.errors["evaded_duties_eur"] = "an amount only goes with a seizure"
    chosen = data.getlist("snapshots") if hasattr(data, "getlist") else data.get("snapshots", [])
    chosen = [chosen] if isinstance(chosen, str) else list(chosen or [])
    unknown = [s for s in chosen if s not in snapshots]
    if unknown:
        form.errors["snapshots"] = "pick snapshots from this crossing only"
    v["snapshots"] = [s for s in chosen if s in snapshots]
    v["then"] = _text(data, "then") or "hold"
    if v["then"] not in then_choices:
        form.errors["then"] = "hold, release or refuse entry"
    _reason(form, data, required=False)
    return form


def rechannel_form(data: Mapping[str, Any], current_channel: str, policy: PolicyConfig) -> Form:
    form = _start(data)
    channel = _text(data, "channel")
    refusal = raise_refusal(current_channel, channel, policy) if channel else "choose a channel"
    if refusal:
        form.errors["channel"] = refusal
    form.values["channel"] = channel
    _reason(form, data)
    return form


def decision_form(data: Mapping[str, Any]) -> Form:
    form = _start(data)
    decision = _text(data, "decision")
    if decision not in ("approve", "refuse"):
        form.errors["decision"] = "approve or refuse"
    form.values["decision"] = decision
    _reason(form, data, required=decision == "refuse")
    return form


def hold_form(data: Mapping[str, Any]) -> Form:
    """Place or release a hold on a crossing (the head of office, on the storage page)."""
    form = _start(data)
    form.values["crossing_id"] = _text(data, "crossing_id", 40)
    if not form.values["crossing_id"] or len(form.values["crossing_id"]) > 40:
        form.errors["crossing_id"] = "the crossing's id, as the lane or the audit log shows it"
    action = _text(data, "action")
    if action not in ("hold", "release"):
        form.errors["action"] = "hold or release"
    form.values["action"] = action
    _reason(form, data)
    return form


def indicator_form(data: Mapping[str, Any], policy: PolicyConfig) -> Form:
    """A local indicator from the profile editor; the condition is the set file's JSON."""
    form = _start(data)
    v = form.values
    v["id"] = _text(data, "id", 64)
    if not INDICATOR_ID.match(v["id"]):
        form.errors["id"] = "1-64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
    v["title"] = _text(data, "title", 200)
    if not v["title"]:
        form.errors["title"] = "a short title the officers will read"
    elif len(v["title"]) > 200:
        form.errors["title"] = "at most 200 characters"
    when_text = _text(data, "when", 20000)
    try:
        when = json.loads(when_text)
    except ValueError as err:
        form.errors["when"] = f"not valid JSON: {err}"
    else:
        if isinstance(when, dict):
            v["when"] = when
        else:
            form.errors["when"] = "a condition is a JSON object"
    v["channel"] = _text(data, "channel")
    if v["channel"] not in {c.code for c in policy.channels}:
        form.errors["channel"] = "one of the site's channels"
    v["instructions"] = _text(data, "instructions", 2000)
    if len(v["instructions"]) > 2000:
        form.errors["instructions"] = "at most 2000 characters"
    try:
        v["priority"] = int(_text(data, "priority") or "0")
        if not -1000 <= v["priority"] <= 1000:
            raise ValueError
    except ValueError:
        form.errors["priority"] = "a whole number from -1000 to 1000"
    v["status"] = _text(data, "status") or "active"
    if v["status"] not in ("active", "inactive", "draft"):
        form.errors["status"] = "active, inactive or draft"
    _reason(form, data)
    if form.ok:
        _compile(form, policy)
    return form


def indicator_json(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": values["id"], "level": "local", "title": values["title"], "status": values["status"],
            "when": values["when"], "action": {"channel": values["channel"]}, "priority": values["priority"],
            "instructions": values["instructions"]}


def _compile(form: Form, policy: PolicyConfig) -> None:
    """Let the rules engine itself judge the condition, so the editor accepts exactly what it runs."""
    doc = {"format": "bcp-indicators/1", "version": "check", "lists": {}, "indicators": [indicator_json(form.values)]}
    try:
        load_indicator_set(doc, channels=[c.code for c in policy.channels])
    except IndicatorError as err:
        form.errors["when"] = "; ".join(reason for _, reason in err.problems)
