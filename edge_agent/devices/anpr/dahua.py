"""Dahua ITC traffic snapshot pushes (ITSAPI), parsed from bytes (sans-I/O).

A Dahua ITC (traffic) camera with its ITSAPI platform push enabled (protocol version
1.19 on current firmware) POSTs every plate snapshot as one JSON document to the "ANPR
info" interface path it is given, and a keep-alive to the "heartbeat" path. The site
gives both as `/anpr/<camera-id>`::

    POST /anpr/L1-front   Content-Type: application/json

    {"Picture": {
       "SnapInfo":   {"DeviceID": "…", "SnapTime": "2024-01-30 14:34:12",
                      "AccurateTime": "2024-01-30 14:34:12.345", "Direction": "Obverse"},
       "Plate":      {"PlateNumber": "BG123AA", "PlateColor": "White", "Confidence": 93},
       "Vehicle":    {"VehicleColor": "White", "VehicleType": "Truck"},
       "NormalPic":  {"Content": "<base64 JPEG>", "PicName": "…"},     the scene
       "VehiclePic": {"Content": "<base64 JPEG>", "PicName": "…"},     the vehicle
       "CutoutPic":  {"Content": "<base64 JPEG>", "PicName": "…"}}}    the plate crop

    keep-alive: {"Active": true, "DeviceID": "…"}

Times are the camera's local time without offset (kept naive, as Hikvision's). The
camera reads the answer's body, not only its status: it sends the same event again
until it gets `{"Result": true}` (`answer`), so every answer carries one.

Sources: Dahua's ITSAPI platform protocol as ITC cameras are configured for it (the
interface paths /NotificationInfo/TollgateInfo and /NotificationInfo/KeepAlive and
protocol V1.19, as given in the README of github.com/madcat1991/safewheels-dahua); the
TollgateInfo and KeepAlive fields above as listed by public receivers of the format
(Picture.Plate.PlateNumber/PlateColor/Confidence, Picture.Vehicle.VehicleColor/
VehicleType, Picture.SnapInfo.DeviceID/SnapTime/AccurateTime/Direction,
Picture.NormalPic/VehiclePic/CutoutPic.Content, KeepAlive {"Active", "DeviceID"}); the
re-send until {"Result": true} as those receivers document it, citing ipcamtalk.com,
"Dahua ITC415 ITSAPI sending the same HTTP push repeatedly". Dahua's own ITSAPI
document could not be consulted; fields this parser does not use are ignored, so
firmware that adds some does not break the push.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification, is_jpeg, json_object, rejected
from edge_agent.models import Rejected

SOURCE = "dahua"
MAX_BODY_BYTES = 12 * 1024 * 1024  # three pictures in base64
NO_PLATE = {"", "UNKNOWN", "NOPLATE", "NO PLATE", "无车牌", "-"}

# Picture objects of the document -> our image kinds, in the order they are kept.
PICTURES = (("CutoutPic", "plate"), ("NormalPic", "scene"), ("VehiclePic", "vehicle"))

Result = PlateNotification | Ignored | Rejected


def looks_like_dahua(content_type: str, body: bytes) -> bool:
    """A push for no named camera: JSON with ITSAPI's snapshot or keep-alive fields."""
    head = body[:4096]
    if not head.lstrip().startswith(b"{"):
        return False
    return (b'"Picture"' in head and (b'"SnapInfo"' in head or b'"Plate"' in head)) or (
        b'"DeviceID"' in head and b'"Active"' in head)


def parse_dahua(body: bytes, content_type: str = "application/json") -> Result:
    """One ITSAPI POST body -> notification, ignored (keep-alive) or rejected."""
    doc = json_object(body, content_type, source=SOURCE, max_bytes=MAX_BODY_BYTES, text_plain_ok=True)
    if isinstance(doc, Rejected):
        return doc
    picture = doc.get("Picture")
    if picture is None:
        if "DeviceID" in doc or "Active" in doc:
            return Ignored("keep-alive")
        return _reject("ITSAPI push without Picture", _summary(doc))
    if not isinstance(picture, dict):
        return _reject("Picture is not an object", _summary(doc))
    plate_info, snap, vehicle = (_object(picture, key) for key in ("Plate", "SnapInfo", "Vehicle"))
    if isinstance(plate_info, Rejected):
        return plate_info
    if isinstance(snap, Rejected):
        return snap
    if isinstance(vehicle, Rejected):
        return vehicle
    plate = _text(plate_info.get("PlateNumber"), 60)
    if plate.upper() in NO_PLATE:
        return Ignored("snapshot without a plate")
    if len(plate) > 40:
        return _reject("PlateNumber longer than 40 characters", plate)
    confidence = _confidence(plate_info.get("Confidence"))
    if isinstance(confidence, Rejected):
        return confidence
    warnings: list[str] = []
    at = _time(snap, warnings)
    images = _images(picture, warnings)
    device = _text(snap.get("DeviceID"), 40)
    moment = _text(snap.get("AccurateTime") or snap.get("SnapTime"), 40)
    return PlateNotification(
        plate=plate,
        confidence=confidence,
        camera=device,
        at=at,
        # A re-sent push (no {"Result": true} came back) carries the same id.
        event_id=f"{device}/{moment}"[:80] if device and moment else "",
        direction=_text(snap.get("Direction"), 20),
        images=images,
        source_format=SOURCE,
        vehicle_color=_text(vehicle.get("VehicleColor"), 20),
        vehicle_type=_text(vehicle.get("VehicleType"), 20),
        warnings=tuple(warnings),
    )


def answer(status: int, reason: str) -> tuple[str, str]:
    """The answer body an ITSAPI camera reads: Result true stops it sending the event again."""
    return "application/json", json.dumps({"Result": 200 <= status < 300, "Message": reason[:200]})


# --------------------------------------------------------------------------- fields


def _object(picture: dict[str, Any], key: str) -> dict[str, Any] | Rejected:
    value = picture.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        return _reject(f"Picture.{key} is not an object", _summary(picture))
    return value


def _text(value: Any, limit: int) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()[:limit]


def _confidence(value: Any) -> float | None | Rejected:
    if value in (None, ""):
        return None
    try:
        level = float(value)
    except (TypeError, ValueError, OverflowError):
        return _reject(f"Plate.Confidence is not a number: {str(value)[:40]!r}", str(value)[:60])
    if not 0 <= level <= 100:
        return _reject(f"Plate.Confidence {level} outside 0..100", str(value)[:60])
    return level / 100.0


def _time(snap: dict[str, Any], warnings: list[str]) -> datetime | None:
    """The snapshot's time, or None (the listener's receive time stands) with a warning."""
    for key in ("AccurateTime", "SnapTime"):
        value = _text(snap.get(key), 40)
        if not value:
            continue
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            warnings.append(f"SnapInfo.{key} {value!r} is not a time; the receive time stands in")
            return None
    return None


def _images(picture: dict[str, Any], warnings: list[str]) -> tuple[Image, ...]:
    out: list[Image] = []
    for key, kind in PICTURES:
        entry = picture.get(key)
        if entry is None:
            continue
        content = entry.get("Content") if isinstance(entry, dict) else None
        if not isinstance(content, str) or not content:
            continue  # the camera was told not to send this picture
        name = _text(entry.get("PicName"), 120) or f"{key}.jpg"
        try:
            jpeg = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            warnings.append(f"{key} is not base64; dropped")
            continue
        if not is_jpeg(jpeg):
            # One bad picture costs that picture, not the plate read it came with.
            warnings.append(f"{key} is not a JPEG; dropped")
            continue
        out.append(Image(kind=kind, jpeg=jpeg, name=name))
    return tuple(out)


def _summary(doc: dict[str, Any]) -> str:
    """The document's keys for a rejection's raw text (its pictures would be megabytes)."""
    return ", ".join(str(k)[:40] for k in list(doc)[:20])


def _reject(reason: str, raw: bytes | str) -> Rejected:
    return rejected(SOURCE, reason, raw)


# --------------------------------------------------------------------------- building
# The camera's side of the format, for the simulator and the tests.


def build_tollgate(plate: str, *, confidence_pct: int | None = None, device_id: str = "ITC-1",
                   at: datetime | None = None, plate_color: str = "White", vehicle_color: str = "",
                   vehicle_type: str = "", direction: str = "Obverse", plate_jpeg: bytes | None = None,
                   scene_jpeg: bytes | None = None, vehicle_jpeg: bytes | None = None) -> bytes:
    snap: dict[str, Any] = {"DeviceID": device_id, "Direction": direction}
    if at is not None:
        snap["SnapTime"] = at.strftime("%Y-%m-%d %H:%M:%S")
        snap["AccurateTime"] = at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    plate_info: dict[str, Any] = {"PlateNumber": plate, "PlateColor": plate_color}
    if confidence_pct is not None:
        plate_info["Confidence"] = confidence_pct
    picture: dict[str, Any] = {"SnapInfo": snap, "Plate": plate_info,
                               "Vehicle": {"VehicleColor": vehicle_color, "VehicleType": vehicle_type}}
    for (key, kind), jpeg in zip(PICTURES, (plate_jpeg, scene_jpeg, vehicle_jpeg), strict=True):
        if jpeg is not None:
            picture[key] = {"Content": base64.b64encode(jpeg).decode("ascii"), "PicName": f"{kind}.jpg"}
    return json.dumps({"Picture": picture}).encode("utf-8")


def build_keepalive(device_id: str = "ITC-1") -> bytes:
    return json.dumps({"Active": True, "DeviceID": device_id}).encode("utf-8")
