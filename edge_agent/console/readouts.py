"""What the lane page shows, gathered from the running agent as plain JSON-able dicts.

The console reads the core's lane states and live weights, the gates' state and the
agent's health; it writes nothing. Every key of the parts others own (gate state,
device and sync health) is read defensively: a missing key shows as unknown, never as
an error page.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_agent.health import device_summary

NO_DATA_S = 3.0  # no weight frame for this long: the indicator is silent


def lane_view(agent: Any, lane_id: str, evidence_dir: Path | None = None,
              recent_crossings: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """One lane: plates, weight, record, channel and why, gate, snapshot, markers."""
    core = agent.core
    lane = core.committed_lanes[lane_id]  # never a state the database does not have yet
    policy = agent.config.policy
    view: dict[str, Any] = {
        "lane": lane_id,
        "phase": lane.phase.value,
        "crossing": lane.crossing_id,
        "reference": lane.reference,
        "channel": lane.channel,
        "channel_label": _label(policy, lane.channel),
        "plates": [_plate(role, p) for role, p in (("tractor", lane.tractor), ("trailer", lane.trailer))],
        "weight_kg": lane.weight_kg,
        "live": live_weight(core.live_weight.get(lane_id)),
        "released_by": lane.released_by,
        "notes": list(lane.notes),
    }
    a = lane.assessment
    view["assessment"] = None if a is None else {
        "channel": a.channel,
        "hits": [{"indicator": h.indicator_id, "level": h.level, "channel": h.channel, "title": h.title,
                  "instructions": h.instructions, "matched": {k: _matched(v) for k, v in h.matched.items()}}
                 for h in a.hits],
        "random_selected": a.random_selected,
        "deviation_kg": a.deviation_kg,
        "deviation_pct": a.deviation_pct,
        "instructions": list(a.instructions),
        "indicator_set": a.indicator_set,
        "offline": a.offline,
    }
    view["gate"] = gate_view(agent, lane_id)
    view["stale"] = rules_stale(agent)
    # The current truck's snapshot, else the last one's: the booth still wants to see the lane.
    view["snapshot"] = latest_snapshot(evidence_dir, [c for c in (lane.crossing_id, *recent_crossings) if c])
    view["plate_images"] = [p for p in crossing_snapshots(evidence_dir, lane.crossing_id) if is_plate_image(p)]
    return view


def live_weight(reading: Any, now: datetime | None = None) -> dict[str, Any]:
    """The live weight with its state: stable, motion, overload or no data."""
    if reading is None:
        return {"kg": None, "state": "no data"}
    now = now or datetime.now(UTC)
    if now - reading.at > timedelta(seconds=NO_DATA_S):
        return {"kg": None, "state": "no data"}
    if reading.out_of_range:
        state = "overload"
    elif reading.stable is False:
        state = "motion"
    else:
        state = "stable" if reading.stable else "unknown"
    return {"kg": reading.value_kg, "state": state}


def gate_view(agent: Any, lane_id: str) -> dict[str, Any]:
    gate = getattr(agent, "gates", {}).get(lane_id)
    try:
        state = gate.state() if gate is not None else {}
    except Exception:  # noqa: BLE001 - a gate in trouble must not take the page down with it
        state = {}
    return {
        "barrier": str(state.get("barrier", "unknown")),
        "lights": str(state.get("lights", "unknown")),
        "sign": str(state.get("sign", "unknown")),
        "alarm": _alarm(state.get("alarm")),
        "fault": str(state.get("fault") or ""),
        "loops": {k: bool(v) for k, v in (state.get("loops") or {}).items()},
    }


def rules_stale(agent: Any) -> bool:
    """True when the indicator set in force is past its expiry: it still decides (at least
    PolicyConfig.stale_channel), and the lane shows STALE, as local_rules.engine and
    sync.bundles.is_stale define it."""
    rules = getattr(getattr(agent, "assessor", None), "rules", None)
    expired = getattr(rules, "is_expired", None)
    return bool(expired is not None and expired(datetime.now(UTC)))


def latest_snapshot(evidence_dir: Path | None, crossing_ids: list[str]) -> str:
    """The newest CCTV snapshot of the first of these crossings that has one ("" if none).

    Evidence lives in `<evidence>/crossings/<crossing_id>/<kind>/` (edge_agent.evidence.manifest);
    only those few folders are looked at, never the whole tree, which grows for months.
    """
    for crossing_id in crossing_ids:
        found = [p for p in crossing_snapshots(evidence_dir, crossing_id) if not is_plate_image(p)]
        if found:
            return max(found, key=lambda rel: (evidence_dir / rel).stat().st_mtime)
    return ""


def is_plate_image(rel: str) -> bool:
    """ANPR crops saved with the crossing (a kind folder or a name that says plate/anpr)."""
    lowered = rel.lower()
    return any(word in lowered for word in ("/anpr", "/plate", "licenseplate", "crop"))


def crossing_snapshots(evidence_dir: Path | None, crossing_id: str) -> list[str]:
    """Snapshots saved for one crossing (paths relative to the evidence folder)."""
    if not crossing_id or evidence_dir is None or "/" in crossing_id or crossing_id.startswith("."):
        return []
    folder = evidence_dir / "crossings" / crossing_id
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(evidence_dir).as_posix() for p in folder.rglob("*")
                  if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())


def health_view(agent: Any, backlog: int | None) -> dict[str, Any]:
    try:
        health = agent.health()
    except Exception:  # noqa: BLE001 - a part in trouble must not take the page down
        health = {}
    sync = health.get("sync") or {}
    devices = {name: _device(h) for name, h in (health.get("devices") or {}).items()}
    return {
        "online": bool(sync.get("connected")),
        "sync_enabled": sync.get("enabled", True) is not False,
        "backlog": backlog,
        "last_ack": str(sync.get("last_ack") or sync.get("last_ack_at") or ""),
        "devices": devices,
        "core_errors": int((health.get("core") or {}).get("core_errors", 0)),
        "storage": health.get("storage") or {},
        "at": time.time(),
    }


def _device(h: Any) -> dict[str, Any]:
    h = h if isinstance(h, dict) else {}
    detail = ", ".join(f"{k}={_short(v)}" for k, v in list(h.items())[:6])
    reject = h.get("last_reject")
    if isinstance(reject, dict) and reject.get("reason"):
        detail += f"; last rejected: {_short(reject['reason'])}"
    return {"ok": device_summary(h).get("up"), "detail": detail}


def _plate(role: str, plate: Any) -> dict[str, Any]:
    if plate is None:
        return {"role": role, "text": "", "raw": "", "confidence": None, "source": "", "match": ""}
    match = plate.match
    return {"role": role, "text": plate.text, "raw": plate.raw, "confidence": plate.confidence,
            "source": plate.source, "manual": plate.source.startswith("manual:"),
            "match": f"{match.quality} {match.reference}" if match else ""}


def _matched(value: Any) -> str:
    """A hit's matched value as the officer reads it: 240220 (list tobacco_hs)."""
    if isinstance(value, dict) and "value" in value:
        extra = ", ".join(f"{k} {_short(v)}" for k, v in value.items() if k != "value")
        return _short(value["value"]) + (f" ({extra})" if extra else "")
    return _short(value)


def _alarm(value: Any) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else "on"


def _label(policy: Any, code: str) -> str:
    try:
        return policy.channel(code).label if code else ""
    except KeyError:
        return code


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
