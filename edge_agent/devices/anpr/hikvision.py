"""Hikvision ISAPI ANPR event notifications, parsed from bytes (sans-I/O).

A Hikvision ANPR camera configured with an "HTTP listening" / HTTP host notification
(ISAPI `/ISAPI/Event/notification/httpHosts`) POSTs each plate as an
`EventNotificationAlert` document (Hikvision "ISAPI Developer Guide", Event and Alarm
chapter, and "Intelligent Traffic" ANPR section):

* `application/xml`: the bare document;
* `multipart/form-data`: one part `anpr.xml` (XML) or a JSON part, then up to three
  JPEG parts: `licensePlatePicture.jpg` (plate crop), `detectionPicture.jpg` (scene)
  and `vehiclePicture.jpg`;
* JSON (`application/json`), the same fields in JSON objects.

The fields this parser uses (namespace `http://www.isapi.org/ver20/XMLSchema` or none)::

    EventNotificationAlert
      ipAddress, channelID, channelName, dateTime, eventType (ANPR), eventState
      ANPR
        licensePlate         plate text as the camera read it ("unknown" when none)
        confidenceLevel      0..100
        country / countryAbbreviation / CRIndex   country, by name, code or index
        direction            forward | reverse
        originalLicensePlate the read before the camera's own corrections, if any
      UUID                   event id (newer firmware)

Heartbeats and other event types (videoloss, VMD, ...) are `Ignored`, not errors.

The alert stream (`GET /ISAPI/Event/notification/alertStream`, same guide: "Event and
alarm: alert stream") carries the same documents in one endless multipart/mixed
response, each followed by its JPEG parts; `AlertStream` turns its bytes into
notifications, and `pull.PullCamera` feeds it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from edge_agent.devices.anpr.multipart import MultipartError, Part, boundary_of, split_multipart
from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification, is_jpeg
from edge_agent.models import Rejected

SOURCE = "hikvision"
MAX_DOCUMENT_BYTES = 256 * 1024
NO_PLATE = {"", "UNKNOWN", "NOPLATE", "NO PLATE", "无车牌"}

# Picture part names (and pictureInfo types) -> our image kinds.
_PICTURE_KINDS = {
    "licenseplatepicture": "plate",
    "platepicture": "plate",
    "detectionpicture": "scene",
    "scenepicture": "scene",
    "vehiclepicture": "vehicle",
}

Result = PlateNotification | Ignored | Rejected


def looks_like_hikvision(content_type: str, body: bytes) -> bool:
    """A push for no named camera: XML, multipart, or JSON with Hikvision's field names."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/") or kind.endswith("xml") or body.lstrip()[:1] == b"<":
        return True
    head = body[:4096]
    return b"EventNotificationAlert" in head or b'"eventType"' in head


def parse_hikvision(body: bytes, content_type: str) -> Result:
    """One POST body (any of the three encodings) -> notification, ignored or rejected."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/"):
        return _parse_multipart(body, content_type)
    if kind.endswith("json") or body.lstrip()[:1] == b"{":
        return parse_document(body, "json")
    return parse_document(body, "xml")


def parse_document(data: bytes, encoding: str, images: tuple[Image, ...] = ()) -> Result:
    """An EventNotificationAlert as XML or JSON bytes."""
    if not data.strip():
        return _reject("empty body", data)
    if len(data) > MAX_DOCUMENT_BYTES:
        return _reject(f"event document larger than {MAX_DOCUMENT_BYTES} bytes", data[:200])
    fields = _json_fields(data) if encoding == "json" else _xml_fields(data)
    if isinstance(fields, Rejected):
        return fields
    return _notification(fields, images)


# --------------------------------------------------------------------------- encodings


def _parse_multipart(body: bytes, content_type: str) -> Result:
    try:
        parts = split_multipart(body, content_type)
    except MultipartError as err:
        return _reject(str(err), body[:200])
    document: Part | None = None
    images: list[Image] = []
    for part in parts:
        ctype = part.content_type
        head = part.body.lstrip()[:1]
        if document is None and (ctype.endswith(("xml", "json")) or head in (b"<", b"{")):
            document = part
        elif ctype.startswith("image/") or is_jpeg(part.body):
            if not is_jpeg(part.body):
                return _reject(f"part {part.name!r} is not a JPEG", part.body[:64])
            images.append(Image(kind=_picture_kind(part.name), jpeg=part.body, name=part.filename or part.name))
    if document is None:
        return _reject("multipart without an XML or JSON event part", body[:200])
    encoding = "json" if document.content_type.endswith("json") or document.body.lstrip()[:1] == b"{" else "xml"
    return parse_document(document.body, encoding, tuple(images))


def _xml_fields(data: bytes) -> dict[str, Any] | Rejected:
    # ElementTree does not fetch external entities or DTDs; reject DOCTYPE anyway so a
    # billion-laughs body cannot expand in memory.
    if b"<!DOCTYPE" in data[:1024].upper() or b"<!ENTITY" in data.upper():
        return _reject("XML with a DOCTYPE or entity declaration", data[:200])
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        return _reject(f"malformed XML: {err}", data[:200])
    if _local(root.tag) != "EventNotificationAlert":
        return _reject(f"XML root is {_local(root.tag)!r}, not EventNotificationAlert", data[:200])
    fields: dict[str, Any] = {}
    for child in root:
        name = _local(child.tag)
        if name == "ANPR":
            fields["ANPR"] = {_local(c.tag): (c.text or "").strip() for c in child if len(c) == 0}
        elif len(child) == 0:
            fields[name] = (child.text or "").strip()
    return fields


def _json_fields(data: bytes) -> dict[str, Any] | Rejected:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        return _reject(f"malformed JSON: {err}", data[:200])
    if not isinstance(doc, dict):
        return _reject("JSON event is not an object", data[:200])
    # Some firmware wraps the alert: {"EventNotificationAlert": {...}}.
    doc = doc.get("EventNotificationAlert", doc)
    if not isinstance(doc, dict):
        return _reject("EventNotificationAlert is not an object", data[:200])
    anpr = doc.get("ANPR")
    if anpr is not None and not isinstance(anpr, dict):
        return _reject("ANPR is not an object", data[:200])
    fields = {k: v for k, v in doc.items() if not isinstance(v, (dict, list))}
    if anpr is not None:
        fields["ANPR"] = {k: v for k, v in anpr.items() if not isinstance(v, (dict, list))}
    return fields


# --------------------------------------------------------------------------- fields


def _notification(fields: dict[str, Any], images: tuple[Image, ...]) -> Result:
    event_type = str(fields.get("eventType", "")).strip()
    if not event_type:
        return _reject("event without eventType", json.dumps(fields)[:200])
    if event_type.upper() != "ANPR":
        return Ignored(f"event type {event_type}")
    if str(fields.get("eventState", "active")).lower() == "inactive":
        return Ignored("inactive ANPR state (heartbeat)")
    anpr = fields.get("ANPR")
    if not isinstance(anpr, dict):
        return _reject("ANPR event without an ANPR element", json.dumps(fields)[:200])
    plate = str(anpr.get("licensePlate", "")).strip()
    if plate.upper() in NO_PLATE:
        return Ignored("ANPR event without a plate")
    if len(plate) > 40:
        return _reject("licensePlate longer than 40 characters", plate[:60])
    confidence = _confidence(anpr.get("confidenceLevel"))
    if isinstance(confidence, Rejected):
        return confidence
    at = _datetime(fields.get("dateTime"))
    if isinstance(at, Rejected):
        return at
    camera = str(fields.get("channelName") or "").strip()
    ip = str(fields.get("ipAddress") or "").strip()
    channel = str(fields.get("channelID") or "").strip()
    return PlateNotification(
        plate=plate,
        confidence=confidence,
        country=str(anpr.get("countryAbbreviation") or anpr.get("country") or "").strip()[:20],
        camera=camera or (f"{ip}/{channel}" if ip else ""),
        at=at,
        event_id=str(fields.get("UUID") or fields.get("uuid") or "").strip()[:80],
        direction=str(anpr.get("direction") or "").strip()[:20],
        images=images,
        source_format=SOURCE,
    )


def _confidence(value: Any) -> float | None | Rejected:
    if value in (None, ""):
        return None
    try:
        level = float(value)
    except (TypeError, ValueError):
        return _reject(f"confidenceLevel is not a number: {value!r}", str(value)[:60])
    if not 0 <= level <= 100:
        return _reject(f"confidenceLevel {level} outside 0..100", str(value)[:60])
    return level / 100.0


def _datetime(value: Any) -> datetime | None | Rejected:
    if value in (None, ""):
        return None
    try:
        at = datetime.fromisoformat(str(value).strip())  # 3.11 reads "Z" too
    except ValueError:
        return _reject(f"dateTime is not ISO 8601: {value!r}", str(value)[:60])
    # Cameras without a configured zone send local time without offset; keep it naive
    # rather than guess, the listener stamps its own UTC receive time anyway.
    return at


def _picture_kind(name: str) -> str:
    """scene, plate or vehicle, from a part's or picture's name (the documented names
    first, then any name that says plate or vehicle)."""
    stem = name.rsplit(".", 1)[0].lower()
    if stem in _PICTURE_KINDS:
        return _PICTURE_KINDS[stem]
    if "plate" in stem:
        return "plate"
    return "vehicle" if "vehicle" in stem else "scene"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _reject(reason: str, raw: bytes | str) -> Rejected:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return Rejected(source=SOURCE, reason=reason, raw=raw)


# --------------------------------------------------------------------------- the alert stream (pull)


class AlertStream:
    """Bytes of a Hikvision alert stream in, notifications out.

    The stream never ends, so a part cannot wait for the next boundary to be known
    complete: each part carries Content-Length (as Hikvision sends it) and is framed by
    it; a part without one ends at the next boundary. Lost sync (garbage between parts)
    is skipped up to the next boundary and counted.
    """

    MAX_HEADER_BYTES = 8192
    MAX_PART_BYTES = 8 * 1024 * 1024

    def __init__(self, content_type: str) -> None:
        self._delimiter = b"--" + boundary_of(content_type)
        self._buffer = bytearray()
        self._headers: dict[str, str] | None = None
        self._document: Part | None = None
        self._images: list[Image] = []
        self.rejected = 0
        self.resyncs = 0

    def feed(self, data: bytes) -> list[PlateNotification | Ignored | Rejected]:
        self._buffer += data
        out: list[PlateNotification | Ignored | Rejected] = []
        while True:
            part = self._next_part()
            if part is None:
                break
            if part.content_type.startswith("image/") or is_jpeg(part.body):
                if self._document is not None and is_jpeg(part.body):
                    self._images.append(Image(kind=_picture_kind(part.name), jpeg=part.body, name=part.name))
                continue
            out += self.flush()
            self._document = part
        return out

    def flush(self) -> list[PlateNotification | Ignored | Rejected]:
        """The pending event, complete with the images received so far."""
        if self._document is None:
            return []
        document, images = self._document, tuple(self._images)
        self._document, self._images = None, []
        encoding = "json" if document.content_type.endswith("json") or document.body.lstrip()[:1] == b"{" else "xml"
        result = parse_document(document.body, encoding, images)
        if isinstance(result, Rejected):
            self.rejected += 1
        return [result]

    def _next_part(self) -> Part | None:
        buf = self._buffer
        if self._headers is None:
            start = buf.find(self._delimiter)
            if start < 0:
                # Keep a tail that may hold the start of a delimiter; drop the rest.
                keep = len(self._delimiter) + 2
                if len(buf) > keep:
                    if buf[:-keep].strip():
                        self.resyncs += 1
                    del buf[:-keep]
                return None
            if buf[:start].strip():
                self.resyncs += 1  # bytes between parts that are not a part
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                if len(buf) - start > self.MAX_HEADER_BYTES:
                    self.resyncs += 1
                    del buf[: start + len(self._delimiter)]
                return None
            lines = bytes(buf[start + len(self._delimiter):end]).split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            del buf[: end + 4]
            self._headers = headers
        length_text = self._headers.get("content-length", "")
        if length_text.isdigit() and int(length_text) <= self.MAX_PART_BYTES:
            length = int(length_text)
            if len(buf) < length:
                return None
            body = bytes(buf[:length])
            del buf[:length]
        else:
            end = buf.find(b"\r\n" + self._delimiter)
            if end < 0:
                if len(buf) > self.MAX_PART_BYTES:
                    self.resyncs += 1
                    self._headers = None
                    buf.clear()
                return None
            body = bytes(buf[:end])
            del buf[:end]
        part = Part(self._headers, body)
        self._headers = None
        return part


# --------------------------------------------------------------------------- building
# The camera's side of the format, for the simulator and the tests.


def build_alert_xml(plate: str, *, confidence_pct: int | None = None, country: str = "", channel_name: str = "",
                    at: datetime | None = None, event_id: str = "", ip_address: str = "127.0.0.1",
                    event_type: str = "ANPR", event_state: str = "active", direction: str = "forward",
                    pictures: tuple[str, ...] = ()) -> bytes:
    ns = "http://www.isapi.org/ver20/XMLSchema"
    root = ElementTree.Element("EventNotificationAlert", {"version": "2.0", "xmlns": ns})

    def add(parent: ElementTree.Element, tag: str, text: str) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, tag)
        element.text = text
        return element

    add(root, "ipAddress", ip_address)
    add(root, "portNo", "80")
    add(root, "protocol", "HTTP")
    add(root, "channelID", "1")
    if at is not None:
        add(root, "dateTime", at.isoformat())
    add(root, "activePostCount", "1")
    add(root, "eventType", event_type)
    add(root, "eventState", event_state)
    add(root, "eventDescription", f"{event_type} event")
    if channel_name:
        add(root, "channelName", channel_name)
    if event_id:
        add(root, "UUID", event_id)
    if event_type == "ANPR":
        anpr = ElementTree.SubElement(root, "ANPR")
        if country:
            add(anpr, "countryAbbreviation", country)
        add(anpr, "licensePlate", plate)
        add(anpr, "line", "1")
        add(anpr, "direction", direction)
        if confidence_pct is not None:
            add(anpr, "confidenceLevel", str(confidence_pct))
        add(anpr, "plateType", "unknown")
        add(anpr, "plateColor", "white")
        add(anpr, "vehicleType", "truck")
        if pictures:
            infos = ElementTree.SubElement(anpr, "pictureInfoList")
            for name in pictures:
                info = ElementTree.SubElement(infos, "pictureInfo")
                add(info, "fileName", name)
                add(info, "type", name.rsplit(".", 1)[0])
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def build_multipart(document: bytes, pictures: dict[str, bytes], *, boundary: str = "MIME_boundary",
                    document_type: str = "application/xml") -> tuple[bytes, str]:
    """A multipart/form-data body as the camera sends it; returns (body, content type)."""
    name = "anpr.json" if document_type.endswith("json") else "anpr.xml"
    out = bytearray()
    for part_name, ctype, data in [(name, document_type, document)] + [
            (pic, "image/jpeg", jpeg) for pic, jpeg in pictures.items()]:
        out += f"--{boundary}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{part_name}"; filename="{part_name}"\r\n'.encode()
        out += f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
