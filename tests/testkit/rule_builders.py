"""Shared builders for the risk engine tests (records, observations, small sets)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge_agent.config import PolicyConfig
from edge_agent.models import Item, Observations, Party, PreArrival

ROOT = Path(__file__).resolve().parents[2]
DEMO_SET = ROOT / "firmware_config" / "indicators" / "demo.json"
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)  # a Monday


def make_record(**overrides) -> PreArrival:
    data = dict(
        reference="RS-2026-000123",
        procedure="export",
        tractor_plate="BG1234AB",
        trailer_plate="BG567XY",
        gross_kg=24000.0,
        consignor=Party(name="Fabrika Namestaja Jugodrvo doo", country="RS", id="RS100200300"),
        consignee=Party(name="Euro Mobel GmbH", country="DE", id="DE999888777"),
        items=[Item(hs_code="9403600000", origin="RS", packages=30),
               Item(hs_code="8471300000", origin="CN", packages=4)],
        country_of_dispatch="RS",
        office_of_exit="RS01001",
        office_of_entry="XK02000",
        packages=34,
        value_eur=48000.0,
        sent_at=NOW,
    )
    data.update(overrides)
    return PreArrival(**data)


def make_seen(measured_kg: float | None = 24300.0, plate: str = "BG1234AB", **overrides) -> Observations:
    data = dict(lane="L1", tractor_plate=plate, plate_confidence=0.97, plate_match="exact",
                measured_kg=measured_kg, at=NOW)
    data.update(overrides)
    return Observations(**data)


def quiet_policy(**overrides) -> PolicyConfig:
    # No random selection unless a test asks for it: hits alone decide the channel.
    return PolicyConfig(**{"random_share_pct": 0.0, "random_secret": "test-secret-0001", **overrides})


def one_indicator_set(when: dict, lists: dict | None = None, **fields) -> dict:
    indicator = {"id": "T-1", "level": "central", "when": when, "action": {"channel": "red"}, **fields}
    return {"version": "t1", "lists": lists or {}, "indicators": [indicator]}
