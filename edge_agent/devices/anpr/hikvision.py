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

import codecs
import json
import re
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from edge_agent.devices.anpr.multipart import MultipartError, Part, boundary_of, split_multipart
from edge_agent.devices.anpr.notification import Ignored, Image, PlateNotification, is_jpeg, rejected
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

# The ANPR `country` field as an index: Hikvision's COUNTRY_INDEX enumeration ("Device
# Network SDK" manual, structures, COUNTRY_INDEX: open.hikvision.com/hardware/structures/
# COUNTRY_INDEX.html), each index to the ISO 3166-1 alpha-3 code its enumerator is named
# by (COUNTRY_CZE = 1 ...). 0 is "a country the recognition library does not support".
# Only 1..29 could be confirmed from the published table; the table goes on (48 European
# countries, then other regions), but an index this agent cannot confirm is kept raw
# (`PlateNotification.country_raw`) and never used as a country.
COUNTRY_INDEX: dict[int, str] = {
    1: "CZE", 2: "FRA", 3: "DEU", 4: "ESP", 5: "ITA", 6: "NLD", 7: "POL", 8: "SVK", 9: "BLR", 10: "MDA",
    11: "RUS", 12: "UKR", 13: "BEL", 14: "BGR", 15: "DNK", 16: "FIN", 17: "GBR", 18: "GRC", 19: "HRV",
    20: "HUN", 21: "ISR", 22: "LUX", 23: "MKD", 24: "NOR", 25: "PRT", 26: "ROU", 27: "SRB", 28: "AZE",
    29: "GEO",
}
COUNTRY_NOT_SUPPORTED = 0

# XML 1.0 (Fifth Edition) appendix F: the declaration is ASCII-compatible in every
# encoding a document can name there, so its bytes are read before the text is decoded.
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]{0,39})[\"']")

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
    return parse_document(body, "xml", charset=_charset(content_type))


def parse_document(data: bytes, encoding: str, images: tuple[Image, ...] = (), *, charset: str = "") -> Result:
    """An EventNotificationAlert as XML or JSON bytes (`charset`: the Content-Type's, if any)."""
    return _event(data, encoding, charset, images, [])


# --------------------------------------------------------------------------- encodings


def _parse_multipart(body: bytes, content_type: str) -> Result:
    try:
        parts = split_multipart(body, content_type)
    except MultipartError as err:
        return _reject(str(err), body[:200])
    document: Part | None = None
    pictures: list[Part] = []
    for part in parts:
        ctype = part.content_type
        head = part.body.lstrip()[:1]
        if document is None and (ctype.endswith(("xml", "json")) or head in (b"<", b"{")):
            document = part
        elif ctype.startswith("image/") or is_jpeg(part.body):
            pictures.append(part)
    if document is None:
        return _reject("multipart without an XML or JSON event part", body[:200])
    return _event(document.body, _document_encoding(document), _charset(document.headers.get("content-type", "")),
                  (), pictures)


def _event(data: bytes, encoding: str, charset: str, images: tuple[Image, ...], pictures: list[Part]) -> Result:
    """The document's fields, its pictures filed by kind, the notification."""
    if not data.strip():
        return _reject("empty body", data)
    if len(data) > MAX_DOCUMENT_BYTES:
        return _reject(f"event document larger than {MAX_DOCUMENT_BYTES} bytes", data[:200])
    fields = _json_fields(data) if encoding == "json" else _xml_fields(data, charset)
    if isinstance(fields, Rejected):
        return fields
    warnings: list[str] = []
    kept = list(images)
    listed = _listed_pictures(fields.get("pictures"))
    for part in pictures:
        label = part.filename or part.name or _content_id(part) or "picture"
        if not is_jpeg(part.body):
            # One bad picture costs that picture, not the plate read it came with.
            warnings.append(f"picture {label[:60]!r} is not a JPEG; dropped")
            continue
        kept.append(Image(kind=_kind_of(part, listed), jpeg=part.body, name=label[:120]))
    return _notification(fields, tuple(kept), warnings)


def _xml_fields(data: bytes, charset: str = "") -> dict[str, Any] | Rejected:
    text = _decode_xml(data, charset)
    if isinstance(text, Rejected):
        return text
    # ElementTree does not fetch external entities or DTDs, but expands internal ones: a
    # DOCTYPE is refused so that a billion-laughs body cannot expand in memory. Looked
    # for in the decoded text, so that no encoding hides it.
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        return _reject("XML with a DOCTYPE or entity declaration", data[:200])
    try:
        # Parsed as text, so expat ignores the encoding the declaration names: the text
        # checked above is the text parsed.
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        return _reject(f"malformed XML: {err}", data[:200])
    except (ValueError, LookupError) as err:  # expat's own refusals (encodings, limits)
        return _reject(f"unreadable XML: {err}", data[:200])
    if _local(root.tag) != "EventNotificationAlert":
        return _reject(f"XML root is {_local(root.tag)!r}, not EventNotificationAlert", data[:200])
    fields: dict[str, Any] = {}
    for child in root:
        name = _local(child.tag)
        if name == "ANPR":
            fields["ANPR"] = {_local(c.tag): (c.text or "").strip() for c in child if len(c) == 0}
            fields["pictures"] = [{_local(c.tag): (c.text or "").strip() for c in info if len(c) == 0}
                                  for pictures in child if _local(pictures.tag) == "pictureInfoList"
                                  for info in pictures if _local(info.tag) == "pictureInfo"]
        elif len(child) == 0:
            fields[name] = (child.text or "").strip()
    return fields


def _decode_xml(data: bytes, charset: str) -> str | Rejected:
    """The document's text, its encoding told as XML 1.0 appendix F and RFC 7303 section 3
    say: a byte order mark first, then the Content-Type's charset, then the encoding the
    XML declaration names, else UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        name, data = "utf-8", data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        name = "utf-32"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        name = "utf-16"
    elif charset:
        name = charset
    elif data[:4] == b"\x00<\x00?":
        name = "utf-16-be"
    elif data[:4] == b"<\x00?\x00":
        name = "utf-16-le"
    else:
        declared = _DECLARED_ENCODING.match(data.lstrip()[:300])
        name = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        codec = codecs.lookup(name)
    except LookupError:
        return _reject(f"XML in an unknown encoding {name[:40]!r}", data[:200])
    if not codec._is_text_encoding:  # base64, zlib ...: codecs, not character encodings
        return _reject(f"XML in {name[:40]!r}, which is not a character encoding", data[:200])
    try:
        return data.decode(codec.name)
    except (UnicodeError, ValueError) as err:
        return _reject(f"XML is not valid {codec.name}: {err}", data[:200])


def _json_fields(data: bytes) -> dict[str, Any] | Rejected:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        return _reject(f"malformed JSON: {err}", data[:200])
    except RecursionError:
        return _reject("JSON nested too deeply", data[:200])
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
        listed = anpr.get("pictureInfoList")
        if isinstance(listed, dict):
            listed = listed.get("pictureInfo")
        if isinstance(listed, list):
            fields["pictures"] = [{k: v for k, v in info.items() if not isinstance(v, (dict, list))}
                                  for info in listed if isinstance(info, dict)]
    return fields


def _document_encoding(part: Part) -> str:
    return "json" if part.content_type.endswith("json") or part.body.lstrip()[:1] == b"{" else "xml"


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'")[:40]
    return ""


# --------------------------------------------------------------------------- fields


def _notification(fields: dict[str, Any], images: tuple[Image, ...], warnings: list[str]) -> Result:
    event_type = str(fields.get("eventType", "")).strip()
    if not event_type:
        return _reject("event without eventType", json.dumps(fields, default=str)[:200])
    if event_type.upper() != "ANPR":
        return Ignored(f"event type {event_type[:40]}")
    if str(fields.get("eventState", "active")).lower() == "inactive":
        return Ignored("inactive ANPR state (heartbeat)")
    anpr = fields.get("ANPR")
    if not isinstance(anpr, dict):
        return _reject("ANPR event without an ANPR element", json.dumps(fields, default=str)[:200])
    plate = str(anpr.get("licensePlate", "")).strip()
    if plate.upper() in NO_PLATE:
        return Ignored("ANPR event without a plate")
    if len(plate) > 40:
        return _reject("licensePlate longer than 40 characters", plate[:60])
    confidence = _confidence(anpr.get("confidenceLevel"))
    if isinstance(confidence, Rejected):
        return confidence
    at = _datetime(fields.get("dateTime"), warnings)
    country, country_raw = _country(anpr, warnings)
    camera = str(fields.get("channelName") or "").strip()
    ip = str(fields.get("ipAddress") or "").strip()
    channel = str(fields.get("channelID") or "").strip()
    return PlateNotification(
        plate=plate,
        confidence=confidence,
        country=country,
        camera=camera or (f"{ip}/{channel}" if ip else ""),
        at=at,
        event_id=str(fields.get("UUID") or fields.get("uuid") or "").strip()[:80],
        direction=str(anpr.get("direction") or "").strip()[:20],
        images=images,
        source_format=SOURCE,
        country_raw=country_raw,
        vehicle_type=str(anpr.get("vehicleType") or "").strip()[:20],
        warnings=tuple(warnings),
    )


def _confidence(value: Any) -> float | None | Rejected:
    if value in (None, ""):
        return None
    try:
        level = float(value)
    except (TypeError, ValueError):
        return _reject(f"confidenceLevel is not a number: {str(value)[:40]!r}", str(value)[:60])
    if not 0 <= level <= 100:
        return _reject(f"confidenceLevel {level} outside 0..100", str(value)[:60])
    return level / 100.0


def _datetime(value: Any, warnings: list[str]) -> datetime | None:
    """The event's time, or None (the listener's receive time stands) with a warning.

    Some firmware writes the offset without its sign, run into the seconds
    (`2024-01-22T11:46:3100:00`): the plate is good, only the time is not.
    """
    if value in (None, ""):
        return None
    try:
        # 3.11 reads "Z" too. Cameras without a configured zone send local time without
        # offset: kept naive rather than guessed.
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        warnings.append(f"dateTime {str(value)[:40]!r} is not ISO 8601; the receive time stands in")
        return None


def _country(anpr: dict[str, Any], warnings: list[str]) -> tuple[str, str]:
    """(country, raw value kept when it is an index outside the vendor's table)."""
    for key in ("countryAbbreviation", "country"):
        value = str(anpr.get(key) or "").strip()
        if not value:
            continue
        if not (value.isascii() and value.isdigit()):
            return value[:20], ""  # a name or code, as the camera spells it
        index = int(value[:6]) if len(value) <= 6 else -1
        if index == COUNTRY_NOT_SUPPORTED:
            return "", ""
        if index in COUNTRY_INDEX:
            return COUNTRY_INDEX[index], ""
        warnings.append(f"{key} index {value[:20]} is not in Hikvision's country table; kept raw")
        return "", value[:20]
    return "", ""


def _listed_pictures(value: Any) -> dict[str, str]:
    """The document's pictureInfoList: each picture's file name and id -> its type."""
    out: dict[str, str] = {}
    for info in value if isinstance(value, list) else ():
        kind = str(info.get("type") or "").strip()
        for key in ("fileName", "pId", "pictureID", "id"):
            name = str(info.get(key) or "").strip()
            if name and kind:
                out[name.lower()] = kind
    return out


def _kind_of(part: Part, listed: dict[str, str]) -> str:
    """scene, plate or vehicle for one picture part.

    The document's own list says it best; then the file name, the Content-ID and the
    form field name, in that order: firmware that names its parts by picture id keeps
    the kind in the file name.
    """
    names = [part.filename, _content_id(part), part.name]
    for name in names:
        kind = _picture_kind(listed.get(name.lower(), "")) if name else None
        if kind:
            return kind
    for name in names:
        kind = _picture_kind(name)
        if kind:
            return kind
    return "scene"


def _picture_kind(name: str) -> str | None:
    """scene, plate or vehicle, from a part's or picture's name (the documented names
    first, then any name that says plate, vehicle or scene), or None when it says none."""
    stem = name.rsplit(".", 1)[0].lower()
    if stem in _PICTURE_KINDS:
        return _PICTURE_KINDS[stem]
    if "plate" in stem:
        return "plate"
    if "vehicle" in stem:
        return "vehicle"
    return "scene" if "scene" in stem or "detection" in stem else None


def _content_id(part: Part) -> str:
    return part.headers.get("content-id", "").strip().strip("<>")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _reject(reason: str, raw: bytes | str) -> Rejected:
    return rejected(SOURCE, reason, raw)


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
        self._pictures: list[Part] = []
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
                if self._document is not None:
                    self._pictures.append(part)
                continue
            out += self.flush()
            self._document = part
        return out

    def flush(self) -> list[PlateNotification | Ignored | Rejected]:
        """The pending event, complete with the images received so far."""
        if self._document is None:
            return []
        document, pictures = self._document, self._pictures
        self._document, self._pictures = None, []
        result = _event(document.body, _document_encoding(document),
                        _charset(document.headers.get("content-type", "")), (), pictures)
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
