"""What a plate camera told us, before it becomes a `models.PlateRead`.

Every push or pull format (hikvision.py, dahua.py, generic.py, pull.py) parses its bytes
into a `PlateNotification`, an `Ignored` (a heartbeat or a non-plate event: answered 200
and counted) or a `models.Rejected` (bad input: answered 400, counted and logged).

A flaw that does not touch the plate (a malformed timestamp, a picture that is not a
JPEG, a country index the vendor's table does not name) costs the flawed field, not the
read: the parser leaves the field empty and says why in `warnings`, which the listener
logs and counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.models import Rejected


@dataclass(frozen=True)
class Image:
    """One JPEG that came with the event. `kind`: scene, plate or vehicle."""

    kind: str
    jpeg: bytes
    name: str = ""


@dataclass(frozen=True)
class PlateNotification:
    plate: str  # as the camera sent it (raw)
    confidence: float | None  # 0..1; None when the camera gives none
    country: str = ""
    camera: str = ""  # the camera's own identity in the payload, if any
    lane: str = ""
    at: datetime | None = None
    event_id: str = ""
    direction: str = ""
    images: tuple[Image, ...] = field(default_factory=tuple)
    source_format: str = ""
    # The camera's country field as sent, when it could not be read as a country (an
    # index outside the vendor's table): kept for the evidence, never used as a country.
    country_raw: str = ""
    vehicle_color: str = ""  # as the camera names it ("White", "Red" ...)
    vehicle_type: str = ""  # as the camera names it ("Truck", "Bus" ...)
    warnings: tuple[str, ...] = ()  # what was wrong but did not cost the read


@dataclass(frozen=True)
class Ignored:
    reason: str


def is_jpeg(data: bytes) -> bool:
    """JPEG files start with SOI (FF D8) and a marker (ITU-T T.81, B.1.1.2)."""
    return len(data) > 3 and data[0] == 0xFF and data[1] == 0xD8 and data[2] == 0xFF


def rejected(source: str, reason: str, raw: bytes | str) -> Rejected:
    """Bad input from a camera, with what it sent (decoded leniently) for the log."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return Rejected(source=source, reason=reason, raw=raw)


def json_object(body: bytes, content_type: str, *, source: str, max_bytes: int,
                text_plain_ok: bool = False) -> dict[str, Any] | Rejected:
    """A JSON push body as an object, or the reason it is not one (empty, too large, not
    JSON by its content type, malformed, nested past the parser's depth, not an object)."""
    if not body.strip():
        return rejected(source, "empty body", body)
    if len(body) > max_bytes:
        return rejected(source, f"body larger than {max_bytes} bytes", body[:200])
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not kind.endswith("json") and not (text_plain_ok and kind == "text/plain"):
        return rejected(source, f"content type {kind[:40]!r} is not JSON", body[:200])
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        return rejected(source, f"malformed JSON: {err}", body[:200])
    except RecursionError:
        return rejected(source, "JSON nested too deeply", body[:200])
    if not isinstance(doc, dict):
        return rejected(source, "JSON body is not an object", body[:200])
    return doc
