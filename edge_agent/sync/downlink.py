"""Downward messages from the RAU turned into core events, or into `Rejected` values.

Sans-I/O: `decode(topic, payload, ...)` takes what paho delivered and returns the event to
post; it never raises. Payload formats are in docs/sync.md:

- ``down/ack``        ``{"ids": ["01J...", ...]}``          -> AcksReceived
- ``down/prearrival`` a PreArrival JSON object                -> PreArrivalReceived
- ``down/command``    ``{"command": "raise_channel" | "withdraw_raise" | "hold" | "release_hold" | "resend" | "ping",
                       ...}`` -> RauCommand; ``"evidence_request"`` and ``"cctv_snapshot"`` -> EvidenceRequest
                       (`evidence_request`), for the uploader
- ``down/evidence_ack`` the hub's answer to the uploader, read by `evidence_upload.EvidenceUploader.acked`
- indicator topics    the signed bundle bytes, verified later -> IndicatorBundleReceived
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.models import (
    AcksReceived,
    IndicatorBundleReceived,
    PreArrival,
    PreArrivalReceived,
    RauCommand,
    Rejected,
)
from edge_agent.sync import topics

MAX_DOWN_BYTES = 256 * 1024  # pre-arrivals, acks and commands are small; bundles have their own limit


class AckMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ids: list[str] = Field(min_length=1, max_length=10000)


class CommandMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = ""
    command: str
    crossing_id: str = Field(default="", max_length=40)
    reference: str = Field(default="", max_length=40)
    plate: str = Field(default="", max_length=20)
    channel: str = Field(default="", max_length=40)
    reason: str = Field(default="", max_length=500)
    expires_at: datetime | None = None
    since: str = Field(default="", max_length=26)
    lane: str = Field(default="", max_length=40)  # cctv_snapshot: whose lane's camera


Decoded = AcksReceived | PreArrivalReceived | RauCommand | IndicatorBundleReceived | Rejected


def decode(
    topic: str,
    payload: bytes,
    *,
    site: str,
    region: str,
    now: datetime,
    prearrival_ttl_s: float = 72 * 3600,
    office_codes: frozenset[str] = frozenset(),
    max_bundle_bytes: int = 8 * 1024 * 1024,
) -> Decoded:
    """The event a downward message means, or why it was refused."""
    kind = topics.down_kind(topic, site, region)
    source = "sync:" + (kind or "unknown")
    raw = payload[:2000].decode("utf-8", "replace")
    if kind is None:
        return Rejected(source=source, reason=f"unexpected topic {topic}", raw=raw, at=now)
    if kind == "indicators":
        if len(payload) > max_bundle_bytes:
            return Rejected(source=source, reason=f"bundle oversize: {len(payload)} bytes", raw=raw[:200], at=now)
        # Verification needs the trust state, which the core owns: pass the bytes on.
        return IndicatorBundleReceived(topic=topic, payload=payload, source="sync", at=now)
    if len(payload) > MAX_DOWN_BYTES:
        return Rejected(source=source, reason=f"oversize: {len(payload)} bytes", raw=raw[:200], at=now)
    try:
        if kind == "ack":
            return AcksReceived(ids=AckMessage.model_validate_json(payload).ids, source="sync", at=now)
        if kind == "command":
            msg = CommandMessage.model_validate_json(payload)
            fields = msg.model_dump(exclude={"id", "lane"})
            if msg.id:
                fields["id"] = msg.id
            return RauCommand(**fields, source="rau", at=now)
        record = PreArrival.model_validate_json(payload)
    except (ValidationError, ValueError) as err:
        return Rejected(source=source, reason=_reason(err), raw=raw, at=now)
    # kind == "prearrival"
    if office_codes and record.office_of_entry and record.office_of_entry not in office_codes:
        return Rejected(
            source=source, reason=f"office of entry {record.office_of_entry} is not this site", raw=raw, at=now
        )
    if record.expires_at is None:
        # A truck that never shows must not hold its plate in the index for ever.
        record = record.model_copy(update={"expires_at": record.sent_at + timedelta(seconds=prearrival_ttl_s)})
    elif record.expires_at <= now:
        return Rejected(source=source, reason=f"pre-arrival {record.reference} already expired", raw=raw, at=now)
    return PreArrivalReceived(record=record, source="seed", at=now)


UPLOAD_COMMANDS = ("evidence_request", "cctv_snapshot")


@dataclass(frozen=True)
class EvidenceRequest:
    """The RAU asks for a crossing's evidence, or a lane's latest CCTV frame: for the
    uploader, not the core."""

    id: str
    crossing_id: str = ""
    lane: str = ""
    command: str = "evidence_request"


def evidence_request(topic: str, payload: bytes, *, site: str, region: str,
                     now: datetime) -> EvidenceRequest | Rejected | None:
    """An `evidence_request` on ``down/command`` (docs/sync.md), why it was refused, or None
    for any other message (which `decode` handles)."""
    if topics.down_kind(topic, site, region) != "command" or not any(
            c.encode() in payload[:MAX_DOWN_BYTES] for c in UPLOAD_COMMANDS):
        return None
    try:
        msg = CommandMessage.model_validate_json(payload)
    except (ValidationError, ValueError) as err:
        return Rejected(source="sync:command", reason=_reason(err), raw=payload[:2000].decode("utf-8", "replace"),
                        at=now)
    if msg.command not in UPLOAD_COMMANDS:
        return None
    what = msg.crossing_id if msg.command == "evidence_request" else msg.lane
    if not msg.id or not what or len(payload) > MAX_DOWN_BYTES:
        needs = "a crossing_id" if msg.command == "evidence_request" else "a lane"
        return Rejected(source="sync:command", reason=f"{msg.command} needs an id and {needs}",
                        raw=payload[:2000].decode("utf-8", "replace"), at=now)
    return EvidenceRequest(msg.id, msg.crossing_id, msg.lane, msg.command)


def _reason(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(payload)"
        return f"invalid: {where}: {first['msg']} ({err.error_count()} problem(s))"
    return f"invalid: {err}"
