"""What an alert says and to whom: pure functions from a hit (and what the ledger knows
of its truck) and the hub's targets to `Delivery` values.

A hit on the `hit` stream carries the indicator's id, title, channel, instructions,
matched values and notify targets, the declaration reference and the crossing id
(edge_agent/core/loop.py); the truck's plates come from the hit if it has them, else
from the SEED record routed for its reference, and the lane from the crossing's own
event when the ledger already holds it (a crossing is reported when it ends).
"""

from __future__ import annotations

import json
from typing import Any

from edge_agent.central.config import AlertsConfig
from edge_agent.central.ledger import AlertPlanner, Delivery


def planner(config: AlertsConfig) -> AlertPlanner:
    """The ledger's planner for this configuration (called in the ingest transaction)."""

    def plan(site: str, hit: dict[str, Any], prearrival: dict[str, Any] | None,
             crossing: dict[str, Any] | None) -> list[Delivery]:
        return plan_deliveries(config, site, hit, prearrival, crossing)

    return plan


def plan_deliveries(config: AlertsConfig, site: str, hit: dict[str, Any], prearrival: dict[str, Any] | None,
                    crossing: dict[str, Any] | None) -> list[Delivery]:
    notify = hit.get("notify")
    if not isinstance(notify, list):
        return []
    subject, text = compose(site, hit, prearrival, crossing)
    short = compose_sms(site, hit, prearrival, crossing, config.sms.max_chars if config.sms else 480)
    base = {"hit_id": str(hit.get("id", "")), "site": site, "indicator_id": str(hit.get("indicator_id", "?"))}
    out: list[Delivery] = []
    for name in dict.fromkeys(t for t in notify if isinstance(t, str) and t):
        target = config.targets.get(name)
        if target is None:
            out.append(Delivery(**base, target=name, channel="none", recipient=name, subject=subject, body=text,
                                status="failed", error="no such target in the hub's [alerts.targets]"))
            continue
        for address in target.email:
            out.append(Delivery(**base, target=name, channel="email", recipient=address, subject=subject, body=text,
                                **({} if config.smtp else {"status": "failed", "error": "no SMTP relay configured"})))
        for number in target.sms:
            out.append(Delivery(**base, target=name, channel="sms", recipient=number, subject=subject, body=short,
                                **({} if config.sms else {"status": "failed", "error": "no SMS gateway configured"})))
    return out


def compose(site: str, hit: dict[str, Any], prearrival: dict[str, Any] | None,
            crossing: dict[str, Any] | None) -> tuple[str, str]:
    """(subject, body) of the e-mail: the instructions first, then the facts."""
    truck = _truck(hit, prearrival, crossing)
    channel = _text(hit.get("channel")) or "?"
    indicator = _text(hit.get("indicator_id")) or "?"
    title = _text(hit.get("title"))
    subject = f"[RAU] {channel.upper()} {indicator} at {site}" + (f": {truck}" if truck else "")
    lines = [
        f"Indicator {indicator} v{hit.get('version', 1)} ({_text(hit.get('level')) or 'central'}): {title}".rstrip(),
        f"Channel: {channel}",
        f"Site: {site}",
        f"Lane: {_lane(hit, crossing) or 'not reported yet'}",
        f"Truck: {truck or 'plates not known to the RAU yet'}",
        f"Reference: {_text(hit.get('reference')) or '-'}",
        f"Crossing: {_text(hit.get('crossing')) or '-'}",
        "",
        "Instructions:",
        _text(hit.get("instructions")) or "(none given)",
        "",
        "Matched:",
        *(f"  {key}: {_value(value)}" for key, value in sorted((hit.get("matched") or {}).items())),
        "",
        f"Hit {hit.get('id', '?')}, assessed at {_text(hit.get('at')) or 'an unreported time'}.",
    ]
    return _clean(subject)[:200], _clean("\n".join(lines))


def compose_sms(site: str, hit: dict[str, Any], prearrival: dict[str, Any] | None, crossing: dict[str, Any] | None,
                max_chars: int) -> str:
    """One short message: the facts an officer acts on, then as much of the instructions as fits."""
    parts = [f"RAU {(_text(hit.get('channel')) or '?').upper()} {_text(hit.get('indicator_id')) or '?'}", site]
    lane = _lane(hit, crossing)
    if lane:
        parts.append(f"lane {lane}")
    truck = _truck(hit, prearrival, crossing)
    if truck:
        parts.append(truck)
    if _text(hit.get("reference")):
        parts.append(f"ref {hit['reference']}")
    head = " ".join(parts)
    instructions = _text(hit.get("instructions"))
    text = f"{head}: {instructions}" if instructions else head
    return _clean(text if len(text) <= max_chars else text[: max_chars - 3] + "...")


def _truck(hit: dict[str, Any], prearrival: dict[str, Any] | None, crossing: dict[str, Any] | None) -> str:
    for source in (hit, crossing or {}, prearrival or {}):
        tractor, trailer = _text(source.get("tractor_plate")), _text(source.get("trailer_plate"))
        if tractor:
            return f"{tractor} / {trailer}" if trailer else tractor
    return ""


def _lane(hit: dict[str, Any], crossing: dict[str, Any] | None) -> str:
    return _text(hit.get("lane")) or _text((crossing or {}).get("lane"))


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _clean(text: str) -> str:
    # A NUL or a stray control character from a site must not break a mail header or the ledger.
    return "".join(c for c in text if c in "\n\t" or c >= " ")
