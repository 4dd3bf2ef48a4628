"""`/metrics` in the Prometheus text exposition format (version 0.0.4) and `/healthz`.

Format: https://prometheus.io/docs/instrumenting/exposition_formats/ - one `# HELP`
and `# TYPE` line per metric family, then `name{label="value"} number` lines; label
values escape backslash, double quote and newline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge_agent.health import frame_rate
from edge_agent.store import StoreView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")
    return lines


def escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(agent: Any, store: StoreView, console_counters: dict[str, int]) -> str:
    """Lanes, decisions, hits, device frame rates, outbox backlog and the console's own counts."""
    out: list[str] = []
    core = agent.core
    out += family("edge_agent_lanes", "gauge", "Lanes configured at this site.", [({}, len(core.lanes))])
    out += family("edge_agent_lane_decided", "gauge", "1 while the lane's current truck has a decision.",
                  [({"lane": lid, "phase": lane.phase.value}, 1 if lane.channel else 0)
                   for lid, lane in core.committed_lanes.items()])
    out += family("edge_agent_decisions_total", "counter", "Assessments stored, by channel.",
                  [({"channel": c}, n) for c, n in store.channel_counts().items()])
    out += family("edge_agent_hits_total", "counter", "Indicator hits stored, by indicator.",
                  [({"indicator": i, "level": lv}, n) for i, lv, n in store.hit_counts()])
    out += family("edge_agent_control_acts_total", "counter", "Control acts stored, by result.",
                  [({"result": r}, n) for r, n in store.control_act_counts().items()])
    backlog = store.outbox_count() or 0
    out += family("edge_agent_outbox_backlog", "gauge", "Events waiting for the central hub's acknowledgement.",
                  [({}, backlog)])
    try:
        health = agent.health()
    except Exception:  # noqa: BLE001 - a part in trouble must not take the page down
        health = {}
    rates = [({"device": name}, rate) for name, h in (health.get("devices") or {}).items()
             if isinstance(h, dict) and (rate := frame_rate(h)) is not None]
    out += family("edge_agent_device_frame_rate_hz", "gauge", "Frames per second each device delivers.", rates)
    out += family("edge_agent_core_events_total", "counter", "Events the core handled, by kind.",
                  [({"kind": k[len("events_"):]}, v)
                   for k, v in sorted(core.counters.items()) if k.startswith("events_")])
    out += family("edge_agent_rejected_total", "counter", "Bad inputs turned into rejections.",
                  [({}, core.counters.get("rejected", 0))])
    out += family("edge_agent_console_requests_total", "counter", "Console actions, by action and outcome.",
                  [({"action": k.split(":")[0], "outcome": k.split(":")[1]}, v)
                   for k, v in sorted(console_counters.items()) if ":" in k])
    return "\n".join(out) + "\n"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
