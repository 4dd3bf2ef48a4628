"""The MQTT topic layout, version 1 (docs/sync.md, "Topics (v1)").

Site ids are single topic levels, so a site can never name another site's topics; the
names ``indicators`` and ``hub`` are reserved for the shared levels below.
"""

from __future__ import annotations

ROOT = "bcp/v1"
RESERVED_SITES = frozenset({"indicators", "hub"})

INDICATORS_CENTRAL = f"{ROOT}/indicators/central"
SEED_INBOX = f"{ROOT}/hub/seed/prearrival"  # the regional exchange hands records to the hub here
UP_ALL = f"{ROOT}/+/up/#"  # what the hub ingests
STATUS_ALL = f"{ROOT}/+/status"

DOWN_KINDS = ("ack", "prearrival", "command", "indicators", "evidence_ack")


def status(site: str) -> str:
    return f"{ROOT}/{site}/status"


def up(site: str, stream: str) -> str:
    return f"{ROOT}/{site}/up/{stream}"


def down(site: str, kind: str) -> str:
    if kind not in DOWN_KINDS:
        raise ValueError(f"unknown downward topic {kind!r}")
    return f"{ROOT}/{site}/down/{kind}"


def indicators_region(region: str) -> str:
    return f"{ROOT}/indicators/region/{region}"


def site_subscriptions(site: str, region: str) -> list[str]:
    """Everything a site reads: its own downward topics and the shared bundles."""
    return [f"{ROOT}/{site}/down/#", INDICATORS_CENTRAL, indicators_region(region)]


def parse_up(topic: str) -> tuple[str, str] | None:
    """(site, stream) of an upward topic, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) == 5 and f"{parts[0]}/{parts[1]}" == ROOT and parts[3] == "up" and parts[2] not in RESERVED_SITES:
        return parts[2], parts[4]
    return None


def parse_status(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 4 and f"{parts[0]}/{parts[1]}" == ROOT and parts[3] == "status":
        return parts[2]
    return None


def down_kind(topic: str, site: str, region: str) -> str | None:
    """What a topic a site received carries: ack, prearrival, command or indicators."""
    if topic in (INDICATORS_CENTRAL, indicators_region(region)):
        return "indicators"
    prefix = f"{ROOT}/{site}/down/"
    if topic.startswith(prefix) and topic[len(prefix) :] in DOWN_KINDS:
        return topic[len(prefix) :]
    return None
