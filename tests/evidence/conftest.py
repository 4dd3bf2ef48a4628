"""Evidence fixtures: a store with a few sealed crossings, in a temp dir."""

from __future__ import annotations

import pytest

from edge_agent.evidence.manifest import EvidenceStore


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(tmp_path / "evidence")


@pytest.fixture
def chain(store):
    """Four crossings sealed in order, each with a snapshot, a scale frame and an ANPR payload."""
    manifests = []
    for n in range(4):
        crossing = f"X{n}"
        store.add_file(crossing, "snapshot", "arrival_cam1.jpg", b"\xff\xd8jpeg" + bytes([n]) * 100)
        store.add_bytes(crossing, "scale", "frames.hex", b"0220202031323334300d" + bytes([48 + n]))
        store.add_bytes(crossing, "anpr", "event.xml", f"<EventNotificationAlert>{n}</EventNotificationAlert>".encode())
        manifests.append(store.seal(crossing, clock_offset_s=0.004 * n))
    return manifests
