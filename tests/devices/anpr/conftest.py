"""ANPR fixtures: real listeners on free ports, the real recognizer, the real photos."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.listener import AnprListener

US_PHOTOS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "plates_us"


class Sink:
    """Collects what the listener hands on: posted reads, images and payloads."""

    def __init__(self) -> None:
        self.posted: list = []
        self.images: list[tuple] = []
        self.payloads: list[tuple] = []

    def post(self, event: object) -> None:
        self.posted.append(event)

    def image(self, lane: str, camera: str, event_id: str, kind: str, jpeg: bytes) -> None:
        self.images.append((lane, camera, event_id, kind, jpeg))

    def payload(self, lane: str, camera: str, event_id: str, content_type: str, body: bytes) -> None:
        self.payloads.append((lane, camera, event_id, content_type, body))


@pytest.fixture
def start_listener() -> Iterator[Callable[..., tuple[AnprListener, Sink]]]:
    started: list[AnprListener] = []

    def start(cameras: list[CameraConfig], lane: str = "L1", **kwargs) -> tuple[AnprListener, Sink]:
        sink = Sink()
        listener = AnprListener(lane, cameras, sink.post, on_image=sink.image, on_payload=sink.payload, **kwargs)
        listener.start()
        started.append(listener)
        return listener, sink

    yield start
    for listener in started:
        listener.stop()


@pytest.fixture(scope="session")
def recognizer():
    from edge_agent.devices.anpr.recognition import LocalRecognizer

    local = LocalRecognizer()
    local.warm_up()
    return local


@pytest.fixture(scope="session")
def us_photos() -> list[tuple[Path, str]]:
    rows = list(csv.DictReader((US_PHOTOS / "ground_truth.csv").open()))
    return [(US_PHOTOS / row["file"], row["plate"]) for row in rows]
