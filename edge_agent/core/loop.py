"""The core loop: the one thread that owns lane state and writes the database.

Devices, the MQTT downlink and the console call `post()` from their own threads; the
loop takes events in order and, for each one, in a single transaction stores the event,
steps the lane state machine, runs the rules when a lane asks, and writes what follows
(assessments, hits, outbox rows, the crossing record). Only after the commit are the
commands handed to the outputs: nothing acts on an event the database could forget.

Lane events go to the lane state machine (edge_agent.lane); every other event type goes
to the handler registered for it (`register`): the officers' decisions and local
profiles (officers.py, profiles.py) are installed here, the RAU's bundles and commands
(rau.py) by the agent, which knows the link.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import TypeAdapter, ValidationError

from edge_agent.commands import CloseBarrier, Command, ShowSign
from edge_agent.config import AgentConfig
from edge_agent.core import officers, profiles
from edge_agent.core.context import Assessor, CoreContext, E
from edge_agent.core.journal import Journal
from edge_agent.lane import (
    DECIDED,
    CrossingEnded,
    EventRefused,
    LaneState,
    RequestAssessment,
    apply_assessment,
    interrupted_lane,
    step,
    with_plate,
)
from edge_agent.models import (
    AcksReceived,
    Assessment,
    Event,
    LaneEvent,
    Observations,
    PreArrival,
    PreArrivalReceived,
    Rejected,
    Tick,
    VehicleLeft,
    WeightReading,
    utcnow,
)
from edge_agent.outputs import OutputBus
from edge_agent.plates.association import PlateIndex, PlateMatch, disagreement
from edge_agent.store import Store
from edge_agent.store.failures import storage_failure

log = logging.getLogger(__name__)

_EVENT = TypeAdapter(Event)
STORAGE_RETRY_S = 1.0  # how often a failed storage is tried again
STORAGE_CATCH_UP_PER_TICK = 200  # journaled events committed per tick once it takes them
# Acknowledged outbox rows are deleted in chunks when the queue is idle: a backlog drained
# after an outage brings thousands a second, and deleting them in one transaction each
# as they came held a lane's event behind it for up to a few hundred milliseconds.
ACK_CHUNK = 100
ACKS_PENDING_MAX = 50_000  # past it the oldest are forgotten: those rows are sent again, the hub drops them


class Core:
    """Owns the lanes. `run()` in one thread; `post()` from any thread."""

    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        assessor: Assessor,
        plate_index: PlateIndex | None = None,
        outputs: OutputBus | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = 0.2,
        online: Callable[[], bool] = lambda: False,
        on_tick: Callable[[], None] | None = None,
        journal_max_events: int = 50_000,
    ) -> None:
        self.config = config
        self.store = store
        self.assessor = assessor
        self.plate_index = plate_index if plate_index is not None else PlateIndex()
        self.outputs = outputs or OutputBus()
        self.clock = clock
        self.tick_s = tick_s
        self.online = online
        self.on_tick = on_tick
        self.queue: queue.Queue = queue.Queue()
        self.lanes: dict[str, LaneState] = {lane.id: LaneState(lane_id=lane.id) for lane in config.lanes}
        # What readers on other threads see: the lanes as of the last committed event.
        # `lanes` itself runs ahead inside an event's transaction (and is rolled back
        # with it), so a reader of `lanes` could see a state the database does not have yet.
        self.committed_lanes: dict[str, LaneState] = dict(self.lanes)
        self.live_weight: dict[str, WeightReading] = {}
        self.counters: Counter[str] = Counter()
        self.handlers: dict[type, Callable[[Any], list[Command]]] = {}
        # Called inside the transaction of the event that ended a crossing, and of each tick.
        self.crossing_ended_hooks: list[Callable[[LaneState, str], None]] = []
        self.tick_hooks: list[Callable[[datetime], None]] = []
        self._stop = threading.Event()
        self._last_tick = 0.0
        # The storage: "" while it takes commits, else why not ("disk_full", "io_error").
        self.storage_failed = ""
        self.storage_failed_since: datetime | None = None
        self.journal = Journal(journal_max_events)
        self.on_storage_failure: Callable[[str], bool] | None = None  # True: space freed, try again at once
        self.on_storage_recovered: Callable[[], None] | None = None
        self._next_retry = 0.0
        self.acks_pending: deque[str] = deque()
        for handlers in (officers.HANDLERS, profiles.HANDLERS):
            for event_type, handler in handlers.items():
                self.handlers[event_type] = partial(handler, self)
        self._load_pending()

    def register(self, event_type: type[E], handler: Callable[[CoreContext, E], list[Command]]) -> None:
        """Handle events of `event_type` with `handler(core, event)` (before the thread starts)."""
        self.handlers[event_type] = partial(handler, self)

    # ------------------------------------------------------------------ boundary

    def post(self, item: Any, source: str = "") -> None:
        """Hand an event in: a model, a dict or JSON bytes. Never raises."""
        if isinstance(item, (dict, bytes, str)):
            try:
                item = _EVENT.validate_json(item) if isinstance(item, (bytes, str)) else _EVENT.validate_python(item)
            except ValidationError as err:
                item = Rejected(source=source or "unknown", reason=_reason(err), raw=str(item)[:2000])
        self.queue.put(item)

    def stop(self) -> None:
        self._stop.set()
        self.queue.put(None)

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        log.info("core_started lanes=%s", ",".join(self.lanes))
        while not self._stop.is_set():
            if self.acks_pending and not self.storage_failed and self.queue.empty():
                self.settle_acks()  # one chunk; anything posted meanwhile goes first
            else:
                try:
                    item = self.queue.get(timeout=self.tick_s)
                except queue.Empty:
                    item = Tick()
                if item is None:
                    break
                self.handle(item)
                if isinstance(item, Tick):
                    continue
            if self.clock() - self._last_tick >= self.tick_s:
                self.handle(Tick())
        log.info("core_stopped")

    def drain(self) -> int:
        """Handle everything queued now (tests and the demo's fast mode)."""
        handled = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                while self.acks_pending and not self.storage_failed:
                    self.settle_acks()
                return handled
            if item is not None:
                self.handle(item)
                handled += 1

    def settle_acks(self) -> int:
        """Delete up to ACK_CHUNK acknowledged outbox rows in one transaction."""
        if self.storage_failed or not self.acks_pending:
            return 0
        chunk = [self.acks_pending[i] for i in range(min(ACK_CHUNK, len(self.acks_pending)))]
        try:
            with self.store.transaction():
                gone = self.store.outbox_ack(chunk)
        except Exception as err:
            failure = storage_failure(err)
            if failure:
                self._storage_down(failure, Tick())
                return 0
            log.exception("core_acks_failed ids=%d", len(chunk))
            gone = 0  # not deleted: those rows go again and the hub acknowledges them again
        for _ in chunk:
            self.acks_pending.popleft()
        self.counters["acked"] += gone
        return gone

    def handle(self, item: Any) -> None:
        """One event, one transaction, then the commands. Nothing here is fatal.

        When handling fails the transaction is rolled back, so the lanes go back to what
        the database says. A failure of the storage itself (disk full, I/O errors) keeps
        the event, and every later one, in the journal until the storage takes them
        again; any other failure is a bug, and the event is kept as a rejection naming it.
        Either way no event is lost and the next one starts from a consistent state.
        """
        if self.storage_failed:
            if isinstance(item, Tick):
                self._tick_while_storage_failed()
            else:
                self._keep(item)
            return
        failure = self._process(item)
        if failure and self.on_storage_failure is not None and self.on_storage_failure(failure):
            failure = self._process(item)  # the space the reserve gave back lets it finish
        if failure:
            self._storage_down(failure, item)

    def _process(self, item: Any) -> str:
        """Handle one event: "" when it is done (or kept as a rejection), else the storage
        failure that stopped it, with nothing of it kept."""
        lanes_before = dict(self.lanes)
        try:
            self._handle(item)
            self.committed_lanes = dict(self.lanes)
            return ""
        except Exception as err:
            self.lanes = lanes_before  # LaneState is immutable: the old values are intact
            failure = storage_failure(err)
            if failure:
                return failure
            self.counters["core_errors"] += 1
            kind = getattr(item, "kind", type(item).__name__)
            log.exception("core_event_failed kind=%s", kind)
            try:
                raw = item.model_dump_json() if hasattr(item, "model_dump_json") else repr(item)
                with self.store.transaction():
                    self.store.record_rejection(Rejected(source=getattr(item, "source", "") or "core",
                                                         reason=f"core failed on {kind}: {err!r}"[:500], raw=raw))
            except Exception as stored:
                if storage_failure(stored):
                    return storage_failure(stored)  # kept in the journal, rejected once it can be stored
                log.exception("core_rejection_not_stored kind=%s", kind)
            return ""

    # ------------------------------------------------------------------ storage failed

    def _storage_down(self, failure: str, item: Any) -> None:
        self.storage_failed = failure
        self.storage_failed_since = utcnow()
        self.counters["storage_failures"] += 1
        self._next_retry = self.clock() + STORAGE_RETRY_S
        # One line per change of state, not one per event: the alarm must stand out.
        log.error("storage_failed reason=%s: events are kept in memory (up to %d) and stored when the storage "
                  "takes them again; no barrier opens meanwhile", failure, self.journal.max_events)
        if not isinstance(item, Tick):
            self._keep(item)

    def _keep(self, item: Any) -> None:
        self._close_behind(item)
        if not self.journal.append(item):
            self.counters["journal_refused"] += 1
            if self.journal.refused == 1:
                log.critical("journal_full events=%d: further events are refused until the storage recovers",
                             len(self.journal))

    def _close_behind(self, item: Any) -> None:
        """The safe direction needs no commit: a truck that left gets its barrier closed."""
        if isinstance(item, VehicleLeft) and item.lane in self.lanes:
            crossing = self.lanes[item.lane].crossing_id
            self.outputs.dispatch(CloseBarrier(lane=item.lane, crossing_id=crossing))
            self.outputs.dispatch(ShowSign(lane=item.lane, crossing_id=crossing, sign="none"))

    def _tick_while_storage_failed(self) -> None:
        self._last_tick = self.clock()
        if self.on_tick:
            self.on_tick()  # the agent withholds the gates' open permission meanwhile
        if self.clock() < self._next_retry:
            return
        self._next_retry = self.clock() + STORAGE_RETRY_S
        # A bounded batch per tick: the loop keeps ticking (watchdog, gates) while it catches up.
        for _ in range(STORAGE_CATCH_UP_PER_TICK):
            if not len(self.journal):
                break
            if self._process(self.journal.oldest()):
                return
            self.journal.drop_oldest()
        if len(self.journal) or self._process(Tick()):
            return
        down_s = (utcnow() - self.storage_failed_since).total_seconds() if self.storage_failed_since else 0.0
        log.warning("storage_recovered reason=%s after_s=%.0f", self.storage_failed, down_s)
        self.storage_failed, self.storage_failed_since = "", None
        if self.on_storage_recovered is not None:
            self.on_storage_recovered()

    def storage_health(self) -> dict[str, Any]:
        return {"state": "failed" if self.storage_failed else "ok", "reason": self.storage_failed,
                "since": self.storage_failed_since.isoformat(timespec="seconds") if self.storage_failed_since else "",
                "journal": len(self.journal), "journal_refused": self.journal.refused,
                "failures": self.counters["storage_failures"]}

    def _handle(self, item: Any) -> None:
        if isinstance(item, Tick):
            self._last_tick = self.clock()
            if self.on_tick:
                self.on_tick()
        elif isinstance(item, Rejected):
            self._reject(item)
            return
        elif isinstance(item, WeightReading):
            # Telemetry at several frames a second: kept live for the console, not stored
            # (the captured weighing is, with its raw frames).
            self.live_weight[item.lane] = item
            return
        elif not hasattr(item, "kind"):
            self._reject(Rejected(source="core", reason=f"not an event: {type(item).__name__}", raw=repr(item)[:500]))
            return
        elif isinstance(item, AcksReceived):
            # Nothing to commit now: the rows are deleted in chunks when the loop is idle.
            self.acks_pending.extend(item.ids)
            overflow = len(self.acks_pending) - ACKS_PENDING_MAX
            for _ in range(max(0, overflow)):
                self.acks_pending.popleft()
            if overflow > 0:
                self.counters["acks_forgotten"] += overflow
            self.counters[f"events_{item.kind}"] += 1
            return
        elif isinstance(item, LaneEvent) and item.lane not in self.lanes:
            self._reject(Rejected(source=item.source or "core", reason=f"unknown lane {item.lane!r}",
                                  raw=item.model_dump_json()))
            return
        commands: list = []
        with self.store.transaction():
            if not isinstance(item, Tick):
                self.store.record_event(item)
                commands = self._apply(item)
            else:
                now = utcnow()
                self._expire_prearrivals(now)
                for hook in self.tick_hooks:
                    hook(now)
                for lane_id in self.lanes:
                    commands += self._step_lane(lane_id, item)
            for command in commands:
                if isinstance(command, Command):
                    self.store.record_command(command, utcnow())
        # Counted once committed: a reader that sees the count sees what the event wrote.
        self.counters[f"events_{item.kind}"] += 1
        for command in commands:
            if isinstance(command, Command):
                self.outputs.dispatch(command)

    def _apply(self, item: Any) -> list:
        if isinstance(item, LaneEvent):
            return self._step_lane(item.lane, item)
        if isinstance(item, PreArrivalReceived):
            self._prearrival(item.record)
            return []
        handler = self.handlers.get(type(item))
        if handler is None:
            log.info("core_event_unhandled kind=%s", item.kind)
            return []
        return handler(item) or []

    def _reject(self, rejected: Rejected) -> None:
        self.counters["rejected"] += 1
        self.counters[f"rejected_{rejected.source}"] += 1
        log.warning("event_rejected source=%s reason=%s", rejected.source, rejected.reason)
        with self.store.transaction():
            self.store.record_rejection(rejected)

    # ------------------------------------------------------------------ lanes

    def _step_lane(self, lane_id: str, event: Any) -> list:
        lane_config = self.config.lane(lane_id)
        before = self.lanes[lane_id]
        lane, commands = step(before, event, self.clock(), lane_config.timeouts, self._lookup)
        out: list = []
        while commands:
            command = commands.pop(0)
            if isinstance(command, RequestAssessment):
                lane, more = self._assess(lane)
                commands[0:0] = more
            elif isinstance(command, CrossingEnded):
                # The state machine has already reset the lane; the crossing is `before`'s.
                self._end_crossing(before, command)
            elif isinstance(command, EventRefused):
                self.counters[f"refused_{command.event_kind}"] += 1
                log.warning("event_refused kind=%s lane=%s crossing=%s reason=%s", command.event_kind, lane_id,
                            command.crossing_id, command.reason)
            else:
                out.append(command)
        self.lanes[lane_id] = lane
        if lane.crossing_id and lane is not before:
            self._save_crossing(lane)
        return out

    def _corroborate(self, lane: LaneState, record: Any) -> tuple[LaneState, Any]:
        """Untie the truck from a record its other plate read contradicts.

        The crossing then goes the way of a truck with no record (the officer checks the
        documents and can type the plate), which is better than someone else's
        declaration. Officers' entries are not second-guessed.
        """
        matched = next(p for p in (lane.tractor, lane.trailer) if p and p.match)
        other = lane.trailer if matched is lane.tractor else lane.tractor
        if matched.match is None or other is None or matched.source.startswith("manual:") \
                or other.source.startswith("manual:"):
            return lane, record
        why = disagreement(record, matched.match.role, other.text, other.match.reference if other.match else "",
                           self.plate_index.fits)
        if not why:
            return lane, record
        self.counters["plate_reads_disagree"] += 1
        log.warning("plate_reads_disagree lane=%s crossing=%s reason=%s", lane.lane_id, lane.crossing_id, why)
        for role, plate in (("tractor", lane.tractor), ("trailer", lane.trailer)):
            if plate is not None:
                lane = with_plate(lane, role, replace(plate, match=None))
        return replace(lane, notes=lane.notes + (why,)), None

    def _lookup(self, text: str) -> PlateMatch | None:
        # The wall clock, not the lane's monotonic one: records expire at a date.
        return self.plate_index.match(text, now=utcnow())

    def _assess(self, lane: LaneState) -> tuple[LaneState, list]:
        reference = lane.reference
        record = self.store.prearrival(reference) if reference else None
        if record is not None:
            lane, record = self._corroborate(lane, record)
        plate = lane.tractor or lane.trailer
        match = next((p.match for p in (lane.tractor, lane.trailer) if p and p.match), None)
        seen = Observations(
            lane=lane.lane_id,
            tractor_plate=lane.tractor.text if lane.tractor else "",
            trailer_plate=lane.trailer.text if lane.trailer else "",
            plate_confidence=plate.confidence if plate else 0.0,
            plate_match=(("manual" if plate and plate.source.startswith("manual:") else match.quality)
                         if match else "none"),
            plate_distance=match.distance if match else 0,
            measured_kg=lane.weight_kg,
        )
        now = utcnow()
        verdict = self.assessor(record, seen, now=now)
        assessment = Assessment(
            crossing_id=lane.crossing_id,
            lane=lane.lane_id,
            reference=record.reference if record else "",
            channel=verdict.channel,
            hits=list(verdict.hits),
            random_selected=verdict.random_selected,
            deviation_kg=verdict.deviation_kg,
            deviation_pct=verdict.deviation_pct,
            instructions=list(verdict.instructions),
            indicator_set=getattr(verdict, "indicator_set", "") or getattr(self.assessor, "label", ""),
            random_secret_version=getattr(verdict, "random_secret_version", self.config.policy.random_secret_version),
            rau_floor=getattr(verdict, "rau_floor", ""),
            rau_floor_reason=getattr(verdict, "rau_floor_reason", ""),
            seen=seen,
            offline=not self.online(),
            at=now,
        )
        self.store.record_assessment(assessment)
        if record:
            self.store.mark_prearrival(record.reference, "arrived", lane.crossing_id)
            self.plate_index.remove(record.reference)
        for hit in assessment.hits:
            self.store.outbox_append(
                "hit",
                {"site": self.config.site.id, "assessment": assessment.id, "crossing": lane.crossing_id,
                 "reference": assessment.reference, **hit.model_dump(mode="json")},
                now,
            )
        self.counters[f"channel_{assessment.channel}"] += 1
        log.info(
            "lane_assessed lane=%s crossing=%s reference=%s channel=%s hits=%d",
            lane.lane_id, lane.crossing_id, assessment.reference or "-", assessment.channel, len(assessment.hits),
        )
        return apply_assessment(lane, assessment, self.clock(), self.config.policy)

    def _save_crossing(self, lane: LaneState, outcome: str = "", ended: bool = False) -> None:
        now = utcnow().isoformat(timespec="milliseconds")
        row = {
            "id": lane.crossing_id,
            "lane": lane.lane_id,
            "phase": lane.phase.value,
            "tractor_plate": lane.tractor.text if lane.tractor else "",
            "trailer_plate": lane.trailer.text if lane.trailer else "",
            "reference": lane.reference,
            "measured_kg": lane.weight_kg,
            "channel": lane.channel,
            "outcome": outcome,
        }
        row["started_at"] = now  # kept from the first save by the store
        row["ended_at"] = now if ended else ""
        self.store.save_crossing(row)

    def recover_interrupted(self) -> int:
        """End every crossing a crash left open, as `interrupted` with the phase it had
        reached, recorded and queued for the RAU like any other end (so the RAU sees an
        end for every crossing whose hits it received). Hits and assessment are kept.
        Call once at start, after the hooks are registered and before the loop runs."""
        ended = 0
        for row in self.store.open_crossings():
            stored = self.store.latest_assessment(row["id"])
            lane = interrupted_lane(row, Assessment.model_validate_json(stored["body"]) if stored else None,
                                    self.store.control_act_of(row["id"]))
            with self.store.transaction():
                self._end_crossing(lane, CrossingEnded(lane=lane.lane_id, crossing_id=lane.crossing_id,
                                                       outcome="interrupted"))
            self.counters["crossings_interrupted"] += 1
            log.warning("crossing_interrupted lane=%s crossing=%s phase=%s channel=%s", lane.lane_id,
                        lane.crossing_id, lane.phase.value, lane.channel or "-")
            ended += 1
        return ended

    def _end_crossing(self, lane: LaneState, ended: CrossingEnded) -> None:
        self._save_crossing(lane, outcome=ended.outcome, ended=True)
        assessment = lane.assessment
        payload = {
            "site": self.config.site.id,
            "crossing": lane.crossing_id,
            "lane": lane.lane_id,
            "outcome": ended.outcome,
            "phase": lane.phase.value,  # where the crossing stood when it ended
            "tractor_plate": lane.tractor.text if lane.tractor else "",
            "tractor_raw": lane.tractor.raw if lane.tractor else "",
            "trailer_plate": lane.trailer.text if lane.trailer else "",
            "reference": lane.reference,
            "measured_kg": lane.weight_kg,
            "channel": lane.channel,
            "hits": [h.indicator_id for h in assessment.hits] if assessment else [],
            "random_selected": bool(assessment and assessment.random_selected),
            "released_by": lane.released_by,
            "control_act": lane.control_act,
            "no_control_reason": lane.no_control_reason,
        }
        self.store.outbox_append("crossing", payload, utcnow())
        for hook in self.crossing_ended_hooks:
            hook(lane, ended.outcome)
        log.info("crossing_ended lane=%s crossing=%s outcome=%s channel=%s", lane.lane_id, lane.crossing_id,
                 ended.outcome, lane.channel or "-")

    # ------------------------------------------------------------------ pre-arrivals

    def _prearrival(self, record: PreArrival) -> None:
        status = self.store.upsert_prearrival(record)
        self.counters[f"prearrival_{status}"] += 1
        if status in ("new", "updated"):
            self.plate_index.remove(record.reference)
            self.plate_index.add(record)
        log.info("prearrival_received reference=%s version=%d status=%s", record.reference, record.version, status)

    def _expire_prearrivals(self, now: datetime) -> None:
        # The index already leaves expired records out of every match; this makes it
        # lasting (the status) and frees the index.
        for reference in self.plate_index.expired(now):
            self.store.mark_prearrival(reference, "expired")
            self.plate_index.remove(reference)
            self.counters["prearrival_expired"] += 1
            log.info("prearrival_expired reference=%s", reference)

    def _load_pending(self) -> None:
        for record in self.store.pending_prearrivals():
            self.plate_index.add(record)

    # ------------------------------------------------------------------ views

    def snapshot(self) -> dict[str, Any]:
        """The lanes as committed, for the console and the demo (read from any thread)."""
        lanes = self.committed_lanes
        weights = dict(self.live_weight)
        failed = self.storage_failed
        return {
            lane_id: {
                # While the storage fails the lanes stand still, and say why.
                "phase": "storage_failed" if failed else lane.phase.value,
                "lane_phase": lane.phase.value,
                "crossing": lane.crossing_id,
                "tractor": lane.tractor.text if lane.tractor else "",
                "trailer": lane.trailer.text if lane.trailer else "",
                "reference": lane.reference,
                "weight_kg": lane.weight_kg,
                "live_kg": weights[lane_id].value_kg if lane_id in weights else None,
                "channel": lane.channel,
                "decided": lane.phase in DECIDED,
            }
            for lane_id, lane in lanes.items()
        }


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "; ".join(parts)
