"""The site's figures in the Prometheus text exposition format (version 0.0.4).

Format: https://prometheus.io/docs/instrumenting/exposition_formats/ - one `# HELP`
and `# TYPE` line per metric family, then `name{label="value"} number` lines; label
values escape backslash, double quote and newline.

`render` takes the agent's parts as values (a `SiteFigures`), so what the page says is
a function of what the agent reports: every device (up, frames a second, age of the last
frame, errors, reconnects), every gate (fault), the evidence recorder's failures, the
link to the RAU and the outbox, the watchdog's stalled threads, decisions, hits and
control acts from the database, and whatever other parts add (the console's requests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.health import device_summary, frame_rate

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[dict[str, str], float]


@dataclass(frozen=True)
class SiteFigures:
    """What the agent knows of itself at one moment, gathered by Agent.figures()."""

    lanes: dict[str, str]  # lane -> phase
    decided: dict[str, bool]  # lane -> the current truck has a decision
    devices: dict[str, dict[str, Any]]  # name -> the device's own health dict
    gates: dict[str, dict[str, Any]]  # lane -> the gate's state
    evidence: dict[str, Any]
    link: dict[str, Any]  # the sync client's health, {"enabled": False} without one
    core_counters: dict[str, int]
    stalled: list[str]  # threads the watchdog has not heard from in time
    decisions: dict[str, int] = field(default_factory=dict)  # channel -> assessments stored
    hits: list[tuple[str, str, int]] = field(default_factory=list)  # (indicator, level, hits)
    control_acts: dict[str, int] = field(default_factory=dict)  # result -> acts stored
    outbox_backlog: int = 0
    storage: dict[str, Any] = field(default_factory=dict)  # Agent.storage_health()
    retention: dict[str, Any] = field(default_factory=dict)  # Agent._retention_figures()
    extra: list[str] = field(default_factory=list)  # families other parts render (the console)


def render(f: SiteFigures) -> str:
    out: list[str] = []
    out += family("edge_agent_lanes", "gauge", "Lanes configured at this site.", [({}, len(f.lanes))])
    out += family("edge_agent_lane_decided", "gauge", "1 while the lane's current truck has a decision.",
                  [({"lane": lane, "phase": phase}, 1 if f.decided.get(lane) else 0)
                   for lane, phase in f.lanes.items()])
    out += family("edge_agent_decisions_total", "counter", "Assessments stored, by channel.",
                  [({"channel": c}, n) for c, n in sorted(f.decisions.items())])
    out += family("edge_agent_hits_total", "counter", "Indicator hits stored, by indicator.",
                  [({"indicator": i, "level": lv}, n) for i, lv, n in f.hits])
    out += family("edge_agent_control_acts_total", "counter", "Control acts stored, by result.",
                  [({"result": r}, n) for r, n in sorted(f.control_acts.items())])
    out += family("edge_agent_outbox_backlog", "gauge", "Events waiting for the central hub's acknowledgement.",
                  [({}, f.outbox_backlog)])
    out += _devices(f.devices)
    out += family("edge_agent_gate_fault", "gauge", "1 while the lane's gate is in fault (barrier read-back, relay).",
                  [({"lane": lane}, 1 if state.get("fault") else 0) for lane, state in sorted(f.gates.items())])
    out += family("edge_agent_evidence_failures_total", "counter",
                  "Evidence files (snapshots, clips, device payloads) that could not be written.",
                  [({}, int(f.evidence.get("failures", 0) or 0))])
    out += _link(f.link)
    out += family("edge_agent_storage_failed", "gauge",
                  "1 while the storage takes no commits (disk full, I/O errors): events wait in memory.",
                  [({"reason": f.storage.get("reason") or "none"}, 1 if f.storage.get("state") == "failed" else 0)])
    out += family("edge_agent_storage_journal_events", "gauge",
                  "Events kept in memory until the storage takes them.", [({}, f.storage.get("journal", 0))])
    out += family("edge_agent_storage_reserve_bytes", "gauge",
                  "Space the reserve file holds for a full disk (0 once given back).",
                  [({}, int(float(f.storage.get("reserve_mb", 0.0)) * 2**20))])
    out += _retention(f.retention, f.outbox_backlog)
    out += family("edge_agent_watchdog_stalled", "gauge",
                  "1 for a thread the service watchdog has not heard from in time (pings withheld).",
                  [({"thread": name}, 1) for name in f.stalled])
    out += family("edge_agent_core_events_total", "counter", "Events the core handled, by kind.",
                  [({"kind": k[len("events_"):]}, v)
                   for k, v in sorted(f.core_counters.items()) if k.startswith("events_")])
    out += family("edge_agent_rejected_total", "counter", "Bad inputs turned into rejections.",
                  [({}, f.core_counters.get("rejected", 0))])
    out += f.extra
    return "\n".join(out) + "\n"


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")
    return lines


def escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _devices(devices: dict[str, dict[str, Any]]) -> list[str]:
    up: list[Sample] = []
    rates: list[Sample] = []
    ages: list[Sample] = []
    errors: list[Sample] = []
    reconnects: list[Sample] = []
    for name, health in sorted(devices.items()):
        if not isinstance(health, dict):
            continue
        labels = {"device": name}
        summary = device_summary(health)
        if "up" in summary:
            up.append((labels, 1 if summary["up"] else 0))
        rate = frame_rate(health)
        if rate is not None:
            rates.append((labels, rate))
        if summary.get("last_frame_age_s") is not None:
            ages.append((labels, summary["last_frame_age_s"]))
        errors.append((labels, summary.get("errors", 0)))
        if isinstance(health.get("reconnects"), int):
            reconnects.append((labels, health["reconnects"]))
    return (family("edge_agent_device_up", "gauge", "1 while the device's link is up (or its server runs).", up)
            + family("edge_agent_device_frame_rate_hz", "gauge", "Frames per second each device delivers.", rates)
            + family("edge_agent_device_last_frame_age_seconds", "gauge", "Age of the device's newest frame.", ages)
            + family("edge_agent_device_errors_total", "counter",
                     "Failed opens, lost links and rejected input, per device.", errors)
            + family("edge_agent_device_reconnects_total", "counter", "Outages that ended with the link back.",
                     reconnects))


def _retention(r: dict[str, Any], backlog: int) -> list[str]:
    if not r:
        return []
    budget = r.get("budget") or {}
    out = family("edge_agent_disk_free_bytes", "gauge", "Free bytes on the data directory's file system.",
                 [({}, r["disk_free_bytes"])] if r.get("disk_free_bytes") is not None else [])
    out += family("edge_agent_storage_class_bytes", "gauge",
                  "Bytes kept per retention class (evidence files at the last scan; records: the database file).",
                  [({"class": k}, v) for k, v in sorted((r.get("bytes_by_class") or {}).items())])
    out += family("edge_agent_held_crossings", "gauge", "Crossings on hold (hits, control acts, re-channels, manual).",
                  [({}, r.get("held_crossings", 0))])
    out += family("edge_agent_outbox_depth", "gauge", "Events in the outbox, waiting for the hub's acknowledgement.",
                  [({}, backlog)])
    out += family("edge_agent_outbox_oldest_unsent_age_seconds", "gauge",
                  "Age of the oldest event not yet acknowledged by the hub (0 with none).",
                  [({}, float(r.get("oldest_unsent_age_s", 0.0)))])
    out += family("edge_agent_evidence_media_bytes", "gauge",
                  "Evidence media (pictures, clips) counted against the cap.",
                  [({}, budget["used_bytes"])] if budget else [])
    out += family("edge_agent_evidence_media_cap_bytes", "gauge", "The evidence media cap.",
                  [({}, budget["cap_bytes"])] if budget else [])
    out += family("edge_agent_evidence_budget_state", "gauge", "1 for the media budget's state (ok, high, critical).",
                  [({"state": s}, 1 if budget.get("state") == s else 0) for s in ("ok", "high", "critical")]
                  if budget else [])
    out += family("edge_agent_evidence_media_refused_total", "counter", "Media files not written: the cap was reached.",
                  [({}, budget.get("refused", 0))] if budget else [])
    out += family("edge_agent_retention_purged_files_total", "counter", "Evidence files purged, by class and reason.",
                  [({"class": k.split("/")[0], "reason": k.split("/")[-1]}, v)
                   for k, v in sorted((r.get("purged") or {}).items())])
    return out


def _link(link: dict[str, Any]) -> list[str]:
    if link.get("enabled") is False:
        return []
    return (family("edge_agent_link_up", "gauge", "1 while the MQTT link to the RAU is connected.",
                   [({}, 1 if link.get("connected") else 0)])
            + family("edge_agent_link_sent_total", "counter", "Events published to the RAU (first sends).",
                     [({}, int(link.get("sent", 0) or 0))])
            + family("edge_agent_link_acked_total", "counter", "Events the central hub confirmed storing.",
                     [({}, int(link.get("acked", 0) or 0))]))


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
