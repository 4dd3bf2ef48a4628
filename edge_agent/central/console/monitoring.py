"""What the monitoring page shows of a site, from what the hub stored: pure functions of
the ledger's rows and the time.

A site is `online` while its retained status says so and its periodic health keeps
arriving; `silent` when the status still says online but no health came for
`silent_after_s` (a site whose broker connection hangs without its last will firing);
`offline` when the broker published its last will or the site said goodbye; `unknown`
before either arrived. The health stream (docs/sync.md) carries the link's backlog and
each lane's phase, each device's state and each gate's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SILENT_AFTER_S = 180.0  # three missed health reports at the default interval


@dataclass(frozen=True)
class SiteView:
    site: str
    link: str  # online | silent | offline | unknown
    since: str  # when the status last changed ('' when never)
    health_at: str
    backlog: int | None
    last_event_at: datetime | None
    last_event_age_s: float | None
    phases: dict[str, str] = field(default_factory=dict)  # lane -> phase
    gates: dict[str, str] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)  # name -> short summary
    devices_down: list[str] = field(default_factory=list)


def parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo else None


def site_view(row: dict[str, Any], last_event_at: datetime | None, now: datetime,
              silent_after_s: float = SILENT_AFTER_S) -> SiteView:
    """One row of `Ledger.sites()` and the site's newest event, as the page shows them."""
    health = row.get("health") or {}
    lanes = health.get("lanes") if isinstance(health.get("lanes"), dict) else {}
    health_at = parse_time(row.get("health_at", ""))
    state = row.get("state", "")
    if state == "online":
        fresh = health_at is not None and (now - health_at).total_seconds() <= silent_after_s
        link = "online" if fresh else "silent"
    elif state == "offline":
        link = "offline"
    else:
        link = "online" if health_at and (now - health_at).total_seconds() <= silent_after_s else "unknown"
    backlog = health.get("backlog")
    devices = lanes.get("devices") if isinstance(lanes.get("devices"), dict) else {}
    down = sorted(name for name, d in devices.items() if isinstance(d, dict) and d.get("up") is False)
    return SiteView(
        site=row["site"], link=link, since=row.get("state_at", ""), health_at=row.get("health_at", ""),
        backlog=backlog if isinstance(backlog, int) and not isinstance(backlog, bool) else None,
        last_event_at=last_event_at,
        last_event_age_s=max(0.0, (now - last_event_at).total_seconds()) if last_event_at else None,
        phases={str(k): str(v) for k, v in (lanes.get("phases") or {}).items()}
        if isinstance(lanes.get("phases"), dict) else {},
        gates={str(k): gate_text(v) for k, v in (lanes.get("gates") or {}).items()}
        if isinstance(lanes.get("gates"), dict) else {},
        devices=devices, devices_down=down)


def gate_text(gate: Any) -> str:
    """'barrier closed, lights red' (and the fault), as the site's gate controller reports it."""
    if not isinstance(gate, dict):
        return str(gate)
    parts = [f"{k} {gate[k]}" for k in ("barrier", "lights") if gate.get(k)]
    if gate.get("fault"):
        parts.append(f"FAULT: {gate['fault']}")
    return ", ".join(parts) or "-"


def age_text(seconds: float | None) -> str:
    """'42 s', '7 min', '3 h', '2 d' ('-' for no age)."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"
