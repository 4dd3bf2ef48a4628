"""Domain records and the events that flow through the core loop.

Every event is a frozen pydantic model with a literal `kind`, so one discriminated
union (`Event`) validates anything a device, the MQTT downlink or the console hands
in. Times are timezone-aware UTC. Units are in the names (`gross_kg`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        # Naive datetimes are ambiguous at a border between time zones: refuse them.
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("datetime must carry a time zone (UTC expected)")
            return value.astimezone(UTC)
        return value


# --------------------------------------------------------------------------- SEED records


class Party(Record):
    """A consignor, consignee or declarant as the sending customs knows it."""

    name: str = Field(min_length=1, max_length=200)
    country: str = Field(default="", max_length=2, description="ISO 3166 alpha-2")
    id: str = Field(default="", max_length=40, description="tax or EORI-like number")


class Item(Record):
    hs_code: str = Field(pattern=r"^\d{4,10}$")
    origin: str = Field(default="", max_length=2)
    description: str = Field(default="", max_length=300)
    packages: int = Field(default=0, ge=0)
    gross_kg: float = Field(default=0.0, ge=0)
    value_eur: float = Field(default=0.0, ge=0)


class PreArrival(Record):
    """A SEED pre-arrival record: the neighbour's export or transit release of one truck.

    The SEED message schema is not public; this is the project's own set, documented in
    docs/indicators.md ("Pre-arrival record"). `reference` (the declaration reference)
    identifies the record; a newer `version` of the same reference replaces the older one.
    """

    reference: str = Field(min_length=1, max_length=40)
    version: int = Field(default=1, ge=1)
    procedure: str = Field(default="export", max_length=20)
    tractor_plate: str = Field(min_length=1, max_length=20)
    trailer_plate: str = Field(default="", max_length=20)
    gross_kg: float = Field(ge=0)
    declared_empty: bool = False
    consignor: Party
    consignee: Party
    declarant: Party | None = None
    items: list[Item] = Field(default_factory=list)
    country_of_dispatch: str = Field(default="", max_length=2)
    office_of_exit: str = Field(default="", max_length=20)
    office_of_entry: str = Field(default="", max_length=20)
    packages: int = Field(default=0, ge=0)
    value_eur: float = Field(default=0.0, ge=0)
    sent_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None


# --------------------------------------------------------------------------- decisions


class Hit(Record):
    """One indicator that matched, with what it matched on (the officer's 'why')."""

    indicator_id: str
    version: int = 1
    level: str = "central"
    channel: str
    title: str = ""
    instructions: str = ""
    matched: dict[str, Any] = Field(default_factory=dict)
    notify: list[str] = Field(default_factory=list)  # who the RAU alerts, as the indicator names them


class Observations(Record):
    """What the crossing itself saw of one truck, the evidence only the lane has."""

    lane: str
    tractor_plate: str = ""
    trailer_plate: str = ""
    plate_confidence: float = 0.0
    plate_match: str = "none"  # exact | fuzzy | manual | none
    plate_distance: int = 0
    measured_kg: float | None = None
    at: datetime = Field(default_factory=utcnow)


class Assessment(Record):
    """The channel for one truck and every reason for it."""

    id: str = Field(default_factory=new_id)
    crossing_id: str
    lane: str
    reference: str = ""  # the matched pre-arrival, empty when none
    channel: str
    hits: list[Hit] = Field(default_factory=list)
    random_selected: bool = False
    deviation_kg: float | None = None
    deviation_pct: float | None = None
    instructions: list[str] = Field(default_factory=list)
    indicator_set: str = ""  # version label of the set that decided
    random_secret_version: int = 1  # the random-selection secret the draws used
    rau_floor: str = ""  # the channel the RAU raised the truck to, when that decided
    rau_floor_reason: str = ""
    seen: Observations | None = None  # what the lane saw: with the record, all a replay needs
    offline: bool = False
    at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------------- events


class EventBase(Record):
    id: str = Field(default_factory=new_id)
    at: datetime = Field(default_factory=utcnow)
    source: str = ""  # the device or user that produced it


class LaneEvent(EventBase):
    lane: str = Field(min_length=1, max_length=20)


class VehicleDetected(LaneEvent):
    """The arrival loop saw a vehicle: a crossing starts."""

    kind: Literal["vehicle_detected"] = "vehicle_detected"


class TruckFoundAtStart(LaneEvent):
    """The agent started with a truck standing on the lane's loops: nobody knows its story."""

    kind: Literal["truck_found_at_start"] = "truck_found_at_start"
    loops: list[str] = Field(default_factory=list, max_length=8)


class VehicleLeft(LaneEvent):
    """The vehicle left the lane, forward past the barrier or back the way it came."""

    kind: Literal["vehicle_left"] = "vehicle_left"
    direction: Literal["forward", "reverse"] = "forward"


class PlateRole(StrEnum):
    TRACTOR = "tractor"
    TRAILER = "trailer"
    UNKNOWN = "unknown"


class PlateRead(LaneEvent):
    """A plate read by a camera, by local recognition, or typed in by an officer."""

    kind: Literal["plate_read"] = "plate_read"
    text: str = Field(min_length=1, max_length=20)  # normalised
    raw: str = Field(default="", max_length=40)  # as read, always kept
    confidence: float = Field(default=1.0, ge=0, le=1)
    role: PlateRole = PlateRole.UNKNOWN
    camera: str = ""
    country: str = ""


class WeightReading(LaneEvent):
    """One decoded frame from a weighbridge indicator (live telemetry, not stored)."""

    kind: Literal["weight_reading"] = "weight_reading"
    value_kg: float
    net: bool = False  # True: the indicator showed a net weight (gross minus tare)
    stable: bool | None = None  # the indicator's own flag, None when it has none
    out_of_range: bool = False
    raw: bytes = b""


class WeightStable(LaneEvent):
    """A captured weighing: the reading held still within one division long enough."""

    kind: Literal["weight_stable"] = "weight_stable"
    gross_kg: float
    division_kg: float = 20.0
    raw_frames: list[str] = Field(default_factory=list)  # hex, evidence


class ScaleEmptied(LaneEvent):
    """The weighbridge is back near zero: the truck drove off it."""

    kind: Literal["scale_emptied"] = "scale_emptied"


class ManualPlate(LaneEvent):
    """An officer entered or corrected a plate; the reason is mandatory."""

    kind: Literal["manual_plate"] = "manual_plate"
    text: str = Field(min_length=1, max_length=20)
    role: PlateRole = PlateRole.TRACTOR
    user: str = Field(min_length=1)
    reason: str = Field(min_length=3)


class ManualRelease(LaneEvent):
    """An officer releases the truck whatever the state; the reason is mandatory."""

    kind: Literal["manual_release"] = "manual_release"
    user: str = Field(min_length=1)
    reason: str = Field(min_length=3)


class ControlCompleted(LaneEvent):
    """The officer finished the documents check, inspection or scan and releases (or
    refuses entry). Releasing a held truck needs its control act recorded first, or
    `no_control_reason`: why no control was performed."""

    kind: Literal["control_completed"] = "control_completed"
    user: str = Field(min_length=1)
    outcome: Literal["release", "refuse"] = "release"
    reason: str = ""
    no_control_reason: str = Field(default="", max_length=1000)


class PreArrivalReceived(EventBase):
    """A SEED pre-arrival record for this site arrived over the downlink."""

    kind: Literal["prearrival"] = "prearrival"
    record: PreArrival


class AcksReceived(EventBase):
    """The central hub confirmed it stored these outbox events (by id)."""

    kind: Literal["acks"] = "acks"
    ids: list[str] = Field(max_length=10000)


class IndicatorBundleReceived(EventBase):
    """A signed indicator bundle arrived; the core verifies and applies it atomically."""

    kind: Literal["indicator_bundle"] = "indicator_bundle"
    topic: str
    payload: bytes = Field(max_length=64 * 1024 * 1024)


class RauCommand(EventBase):
    """An instruction from the RAU: raise a channel (until the truck's crossing ends or
    `expires_at`), withdraw a raise, hold or release a crossing's data, resend, ping."""

    kind: Literal["rau_command"] = "rau_command"
    command: Literal["raise_channel", "withdraw_raise", "hold", "release_hold", "resend", "ping"]
    crossing_id: str = ""  # hold, release_hold: the crossing kept past its retention periods, or let go
    reference: str = ""
    plate: str = ""
    channel: str = ""
    reason: str = ""
    expires_at: datetime | None = None  # raise_channel: the raise ends then, if no truck came
    since: str = ""  # resend: outbox events at or after this id


# Officers' console actions beyond the lane's own (edge_agent/core/officers.py and profiles.py handle
# them). They carry `lane` but are not LaneEvents on purpose: the core hands LaneEvents to
# the lane state machine and everything else to its registered handlers.


class ControlActRecorded(EventBase):
    """The control act: what an officer's documents check, inspection or scan found.

    A seizure is an offence when the evaded duties are below the site's threshold
    (PolicyConfig.seizure_criminal_threshold_eur, 5,000 EUR by default) and a criminal
    report at or above it; the handler classifies with the site's policy.
    """

    kind: Literal["control_act"] = "control_act"
    lane: str = Field(min_length=1, max_length=20)
    crossing_id: str = Field(min_length=1, max_length=40)
    control_type: Literal["documents", "physical", "scanner", "physical_and_scanner"]
    result: Literal["positive", "negative"]
    findings: str = Field(default="", max_length=4000)
    seizure: bool = False
    seized_goods: str = Field(default="", max_length=1000)
    evaded_duties_eur: float = Field(default=0.0, ge=0, le=1e10)
    penalties: str = Field(default="", max_length=2000)
    legal_basis: str = Field(default="", max_length=1000)
    measures: str = Field(default="", max_length=2000)
    snapshots: list[str] = Field(default_factory=list, max_length=50)
    user: str = Field(min_length=1)
    reason: str = Field(default="", max_length=1000)


class RechannelRequested(EventBase):
    """An officer asks to raise a crossing's channel; it needs two approvals to apply."""

    kind: Literal["rechannel_requested"] = "rechannel_requested"
    lane: str = Field(min_length=1, max_length=20)
    crossing_id: str = Field(min_length=1, max_length=40)
    channel: str = Field(min_length=1, max_length=40)
    user: str = Field(min_length=1)
    reason: str = Field(min_length=3, max_length=1000)


class RechannelDecided(EventBase):
    """The head of office or the local risk analyst approves or refuses a re-channel request."""

    kind: Literal["rechannel_decided"] = "rechannel_decided"
    request_id: str = Field(min_length=1, max_length=40)
    role: Literal["head_of_office", "local_risk_analyst"]
    decision: Literal["approve", "refuse"]
    user: str = Field(min_length=1)
    reason: str = Field(default="", max_length=1000)


class LocalIndicatorSaved(EventBase):
    """The local risk analyst saved (or replaced) a local indicator: the core stores the
    local set, swaps the rules in force and queues the change for the RAU."""

    kind: Literal["local_indicator_saved"] = "local_indicator_saved"
    indicator: dict[str, Any]
    user: str = Field(min_length=1)
    reason: str = Field(min_length=3, max_length=1000)


class HoldChanged(EventBase):
    """The head of office (console) or the RAU places or releases a hold on a crossing:
    held, its files and records outlive their retention periods until released."""

    kind: Literal["hold_changed"] = "hold_changed"
    crossing_id: str = Field(min_length=1, max_length=40)
    action: Literal["hold", "release"]
    user: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=1000)


class EvidenceManifestWritten(EventBase):
    """The evidence chain has a new head (a crossing sealed, or files purged): the core
    queues its digest for the RAU, the anchor `evidence verify --central-db` checks."""

    kind: Literal["evidence_manifest_written"] = "evidence_manifest_written"
    crossing_id: str = Field(min_length=1, max_length=120)
    sequence: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class AuditAnchored(EventBase):
    """The console's audit log has reached this entry. The core keeps it in the customs
    database and sends it to the RAU, so a log cut short before it no longer verifies."""

    kind: Literal["audit_anchored"] = "audit_anchored"
    seq: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class IndicatorSetPrepared(EventBase):
    """A verified bundle's set is composed, indexed and re-screened, off the core thread;
    the core swaps it in on this event. Internal: not accepted from outside (not in Event)."""

    kind: Literal["indicator_set_prepared"] = "indicator_set_prepared"
    topic: str
    slot: str
    version: int
    problem: str = ""  # set when the signed content cannot be run here


class IndicatorFilesChanged(EventBase):
    """The indicator files under the data directory may have changed (a command wrote them
    and signalled the agent, or the agent just started): reload the rules in force when
    `reload`, and queue for the RAU what it has not been sent yet. Internal: not accepted
    from outside (not in Event)."""

    kind: Literal["indicator_files_changed"] = "indicator_files_changed"
    reload: bool = True


class Tick(EventBase):
    """The core loop's clock: lets timeouts fire. Never stored."""

    kind: Literal["tick"] = "tick"


Event = Annotated[
    VehicleDetected
    | TruckFoundAtStart
    | VehicleLeft
    | PlateRead
    | WeightReading
    | WeightStable
    | ScaleEmptied
    | ManualPlate
    | ManualRelease
    | ControlCompleted
    | PreArrivalReceived
    | AcksReceived
    | IndicatorBundleReceived
    | RauCommand
    | ControlActRecorded
    | RechannelRequested
    | RechannelDecided
    | LocalIndicatorSaved
    | AuditAnchored
    | EvidenceManifestWritten
    | HoldChanged
    | Tick,
    Field(discriminator="kind"),
]


class Rejected(Record):
    """Bad input turned into a value: counted, logged, kept for the technician."""

    source: str
    reason: str
    raw: str = ""
    at: datetime = Field(default_factory=utcnow)
