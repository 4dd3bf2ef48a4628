"""The generic JSON plate push: for cameras and ANPR boxes that can POST a template.

Many camera brands (and most ANPR software) can send an HTTP POST with a JSON body
built from a template. This is the project's documented format for them
(`POST /anpr/<camera-id>`, `Content-Type: application/json`, UTF-8)::

    {
      "plate": "BG 123-AA",              required, 1..40 characters, as read
      "confidence": 0.93,                optional, 0..1
      "country": "SRB",                  optional, as the camera names it
      "timestamp": "2026-05-01T10:00:00Z", optional, ISO 8601 with offset
      "lane": "L1",                      optional, checked against the listener's lane
      "camera": "L1-rear",               optional, checked against the URL's camera
      "event_id": "a1b2",                optional, the camera's own id of the event
      "image": "<base64 JPEG>"           optional, the scene or plate picture
    }

Unknown keys are ignored so that a camera's fixed fields do not break the push.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.devices.anpr.notification import Image, PlateNotification, is_jpeg, json_object, rejected
from edge_agent.models import Rejected

SOURCE = "generic"
MAX_BODY_BYTES = 12 * 1024 * 1024


class GenericPush(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    plate: str = Field(min_length=1, max_length=40)
    confidence: float | None = Field(default=None, ge=0, le=1)
    country: str = Field(default="", max_length=20)
    timestamp: datetime | None = None
    lane: str = Field(default="", max_length=40)
    camera: str = Field(default="", max_length=40)
    event_id: str = Field(default="", max_length=80)
    image: str | None = None


def parse_generic(body: bytes, content_type: str = "application/json") -> PlateNotification | Rejected:
    doc = json_object(body, content_type, source=SOURCE, max_bytes=MAX_BODY_BYTES)
    if isinstance(doc, Rejected):
        return doc
    try:
        push = GenericPush.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return _reject(f"{where}: {first['msg']}", _without_image(doc))
    if not push.plate.strip():
        return _reject("plate: empty", _without_image(doc))
    images: tuple[Image, ...] = ()
    if push.image:
        try:
            jpeg = base64.b64decode(push.image, validate=True)
        except (binascii.Error, ValueError) as err:
            return _reject(f"image: not base64: {err}", _without_image(doc))
        if not is_jpeg(jpeg):
            return _reject("image: not a JPEG", _without_image(doc))
        images = (Image(kind="scene", jpeg=jpeg, name="image.jpg"),)
    if push.timestamp is not None and push.timestamp.tzinfo is None:
        return _reject("timestamp: must carry a time zone offset", _without_image(doc))
    return PlateNotification(
        plate=push.plate.strip(),
        confidence=push.confidence,
        country=push.country.strip(),
        camera=push.camera,
        lane=push.lane,
        at=push.timestamp,
        event_id=push.event_id,
        images=images,
        source_format=SOURCE,
    )


def build_generic(plate: str, *, confidence: float | None = None, country: str = "", timestamp: datetime | None = None,
                  lane: str = "", camera: str = "", event_id: str = "", jpeg: bytes | None = None) -> bytes:
    """The body a camera sends in this format (used by the simulator and tests)."""
    doc: dict[str, Any] = {"plate": plate}
    if confidence is not None:
        doc["confidence"] = round(confidence, 4)
    for key, value in (("country", country), ("lane", lane), ("camera", camera), ("event_id", event_id)):
        if value:
            doc[key] = value
    if timestamp is not None:
        doc["timestamp"] = timestamp.isoformat()
    if jpeg is not None:
        doc["image"] = base64.b64encode(jpeg).decode("ascii")
    return json.dumps(doc).encode("utf-8")


def _without_image(doc: dict) -> str:
    try:
        return json.dumps({k: v for k, v in doc.items() if k != "image"}, default=str)[:500]
    except (RecursionError, ValueError):  # nested as deep as the parser allowed
        return ", ".join(sorted(str(k)[:40] for k in doc))[:500]


def _reject(reason: str, raw: bytes | str) -> Rejected:
    return rejected(SOURCE, reason, raw)
