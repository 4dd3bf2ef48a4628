"""The shell around the core: builds devices, outputs and sync from one configuration,
runs them, and stops them in the safe order.

Start: gates first, in their safe state (barrier down, red), then the store, the rules,
the core, the outputs, the devices and the sync link. Stop (SIGTERM, SIGINT, a fatal
error): gates to the safe state first, then devices, core, outputs, sync, store.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.commands import GATE_COMMANDS
from edge_agent.config import AgentConfig
from edge_agent.core import Core
from edge_agent.core.rau import RauLink
from edge_agent.core.rules_in_force import RulesAssessor, record_rules_in_force
from edge_agent.devices.anpr.listener import AnprListener, listen_address
from edge_agent.devices.cctv.capture import build_cameras
from edge_agent.devices.cctv.recorder import EvidenceRecorder
from edge_agent.devices.gate.controller import Equipment, GateController, make_pin_factory
from edge_agent.devices.scale.transport import ScaleReader
from edge_agent.errors import ConfigError
from edge_agent.evidence import evidence_root
from edge_agent.evidence.budget import MediaBudget
from edge_agent.evidence.crossing_feed import CrossingEvidenceFeed
from edge_agent.evidence.manifest import EvidenceStore
from edge_agent.evidence.upload import upload_plan
from edge_agent.health import device_summary
from edge_agent.metrics.exposition import SiteFigures
from edge_agent.metrics.exposition import render as render_metrics
from edge_agent.metrics.server import MetricsServer
from edge_agent.models import EvidenceManifestWritten, IndicatorFilesChanged, TruckFoundAtStart, WeightStable, utcnow
from edge_agent.outputs import OutputBus
from edge_agent.reload import remove_pid, write_pid
from edge_agent.site import site_problems
from edge_agent.storage.records import RecordsPurger
from edge_agent.storage.reserve import Reserve
from edge_agent.storage.retention import Periods
from edge_agent.storage.worker import RetentionWorker, has_files, media_cap_bytes
from edge_agent.store import Store, StoreView
from edge_agent.store.checkpoint import Checkpointer
from edge_agent.sync.evidence_upload import EvidenceUploader
from edge_agent.sync.outbox import enforce_budget
from edge_agent.watchdog import Watchdog

log = logging.getLogger(__name__)

BUDGET_CHECK_S = 10.0  # the outbox size is a SUM over the table: not on every tick


class Agent:
    """One site's agent. `start()`, then `stop()`; `run_forever()` adds signal handling."""

    def __init__(self, config: AgentConfig, *, pin_factory: Any = None, data_dir: Path | None = None,
                 gate_equipment: Equipment | None = None) -> None:
        """`pin_factory` and `gate_equipment` are for runs without a board: the demo and the
        tests pass a MockFactory and the simulators' barrier (edge_agent.simulators.barrier)."""
        self.config = config
        self.data_dir = Path(data_dir or config.site.data_dir)
        self.pin_factory = pin_factory
        self.gate_equipment = gate_equipment
        self.metrics: MetricsServer | None = None
        self.metrics_store: StoreView | None = None
        self._metrics_sources: dict[str, Callable[[], list[str]]] = {}
        self.gates: dict[str, Any] = {}
        self.devices: list[Any] = []
        self.sync: Any = None
        self.console: Any = None
        self._next_budget_check = 0.0
        self._budget_alarm = False
        self.evidence: Any = None
        self.retention: RetentionWorker | None = None
        self.records_purger: RecordsPurger | None = None
        self.media_budget: MediaBudget | None = None
        self.cctv: dict[str, list[Any]] = {}
        self.outputs = OutputBus()
        self.store: Store | None = None
        self.checkpointer: Checkpointer | None = None
        self.core: Core | None = None
        self._core_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stopping = threading.Lock()
        self.watchdog = Watchdog.from_environ(os.environ)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Agent:
        problems = site_problems(self.config)
        if problems:
            raise ConfigError(problems, "site configuration")
        self._start_gates()
        self.store = Store.open(self.data_dir / "agent.db")
        self.checkpointer = Checkpointer(self.data_dir / "agent.db").start(self.store.conn)
        self.assessor = RulesAssessor.for_site(self.config, self.data_dir)
        # The set in force is archived now and whenever it changes (on the core thread), so a
        # crossing can be assessed again later with the set of its time (assess --replay).
        store = self.store
        self.assessor.on_change = lambda: record_rules_in_force(self.config, self.data_dir, store, utcnow())
        with store.transaction():
            record_rules_in_force(self.config, self.data_dir, store, utcnow())
        self.reserve = Reserve(self.data_dir, self.config.storage.reserve_mb)
        self.reserve.allocate()
        self.core = Core(self.config, self.store, self.assessor, outputs=self.outputs, online=self._online,
                         on_tick=self._on_tick, journal_max_events=self.config.storage.journal_max_events)
        self.core.on_storage_failure = self._storage_failed
        self.core.on_storage_recovered = self._storage_recovered
        self._register_handlers()
        self._register_retention()
        self.core.recover_interrupted()
        for lane_id, gate in self.gates.items():
            if gate.occupied_at_start:
                self.core.post(TruckFoundAtStart(lane=lane_id, loops=sorted(gate.occupied_at_start),
                                                 source=gate.source))
        self._start_evidence()
        self.outputs.start()
        self._core_thread = threading.Thread(target=self.core.run, name="core", daemon=True)
        self._core_thread.start()
        # Whatever a command changed while the agent was down goes to the RAU now.
        self.core.post(IndicatorFilesChanged(reload=False, source="start"))
        write_pid(self.data_dir)
        self.metrics_store = StoreView(self.data_dir / "agent.db")
        if self.config.metrics.enabled:
            metrics = self.config.metrics
            self.metrics = MetricsServer(self.render_metrics, host=metrics.host, port=metrics.port,
                                         token=metrics.token).start()
        self._start_devices()
        self._start_sync()
        if self.config.console.enabled:
            from edge_agent.console import start_console

            self.console = start_console(self, self.config.console)
        self.watchdog.ready(f"{len(self.config.lanes)} lane(s)")
        log.info("agent_started site=%s lanes=%d data_dir=%s", self.config.site.id, len(self.config.lanes),
                 self.data_dir)
        return self

    def stop(self) -> None:
        with self._stopping:
            if self._stopped.is_set():
                return
            self.safe_state()
            self.watchdog.stopping()
            if self.console is not None:
                _quietly(self.console.stop)
            if self.metrics is not None:
                _quietly(self.metrics.stop)
            for device in reversed(self.devices):
                _quietly(device.stop)
            if self.sync is not None:
                if self.sync.uploader is not None:
                    _quietly(self.sync.uploader.stop)
                _quietly(self.sync.stop)
            if self.core is not None:
                self.core.stop()
            if self._core_thread is not None:
                self._core_thread.join(10)
            self.outputs.stop()
            for cameras in self.cctv.values():
                for camera in cameras:
                    _quietly(camera.stop)
            if self.retention is not None:
                _quietly(self.retention.stop)
            if self.evidence is not None:
                _quietly(self.evidence.stop)
            for gate in self.gates.values():
                _quietly(gate.close)
            if self.metrics_store is not None:
                self.metrics_store.close()
            if self.checkpointer is not None:
                self.checkpointer.stop()
            if self.store is not None:
                self.store.close()
            self.watchdog.close()
            remove_pid(self.data_dir)
            self._stopped.set()
            log.info("agent_stopped site=%s", self.config.site.id)

    def safe_state(self) -> None:
        """Barrier down and red on every lane. Safe to call from any thread, many times."""
        for gate in self.gates.values():
            _quietly(gate.safe_state)

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; the gates go safe before anything else stops."""

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("agent_signal signal=%s", signal.Signals(signum).name)
            self.safe_state()
            self._stopped_by_signal.set()

        def on_reload(signum: int, _frame: Any) -> None:
            # Only a queue put: the core reloads on its own thread.
            log.info("agent_signal signal=SIGHUP action=reload_indicators")
            if self.core is not None:
                self.core.post(IndicatorFilesChanged(reload=True, source="sighup"))

        self._stopped_by_signal = threading.Event()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_reload)
        self.start()
        try:
            while not self._stopped_by_signal.wait(1.0):
                if self._core_thread is not None and not self._core_thread.is_alive():
                    log.error("agent_core_died action=safe_state")
                    break
        finally:
            self.stop()

    def post(self, event: Any) -> None:
        assert self.core is not None
        self.core.post(event)

    # ------------------------------------------------------------------ parts

    def _start_gates(self) -> None:
        if self.pin_factory is None:
            # One factory for the board: every lane's pins are on the same header.
            self.pin_factory = make_pin_factory(self.config.lanes[0].gate.pin_factory)
        for lane in self.config.lanes:
            source = f"gate-{lane.id}"
            self.watchdog.register(source, max_silence_s=5.0)
            if lane.gate.pin_factory == "mock" and self.gate_equipment is None:
                log.warning("gate_mock_pins lane=%s: pin_factory = \"mock\" in the site file; no barrier, light "
                            "or sign is driven and no limit switch moves", lane.id)
            gate = GateController(lane.id, lane.gate, self._post, pin_factory=self.pin_factory,
                                  heartbeat=lambda s=source: self.watchdog.beat(s), equipment=self.gate_equipment)
            gate.safe_state()
            self.gates[lane.id] = gate
            self.outputs.add(_GateOutput(lane.id, gate), on_error=gate.safe_state)

    def _register_handlers(self) -> None:
        self.rau = RauLink(self.core, self.config, self.data_dir, refetch=self._refetch)
        self.rau.register()
        self.assessor.floor = self.rau.floor

    def _register_retention(self) -> None:
        """The database rows of crossings past their period go in the core's tick, in
        bounded steps (the core is the only writer), after the crossing's files."""
        retention = self.config.retention
        root = evidence_root(self.data_dir)
        self.records_purger = RecordsPurger(self.store, Periods.of(retention), interval_s=retention.purge_interval_s,
                                            max_rows=retention.purge_batch_rows,
                                            has_files=lambda crossing_id: has_files(root, crossing_id))
        self.core.tick_hooks.append(self.records_purger.step)

    def _start_evidence(self) -> None:
        self.cctv = build_cameras(self.config.lanes)
        retention = self.config.retention
        root = evidence_root(self.data_dir)
        self.media_budget = MediaBudget(media_cap_bytes(retention.evidence_max_mb, retention.evidence_max_pct, root),
                                        retention.high_water_pct)
        store = EvidenceStore(root, self.media_budget)
        core = self.core
        store.on_manifest = lambda m: core.post(EvidenceManifestWritten(
            crossing_id=m.crossing_id, sequence=m.sequence, sha256=m.sha256, source="evidence"))
        recorder = EvidenceRecorder(store, self.cctv)
        self.evidence = CrossingEvidenceFeed(recorder)
        self.outputs.add(self.evidence)
        # Files past their period, and media past the budget, go on the worker's own thread.
        self.retention = RetentionWorker(store, self.data_dir / "agent.db", Periods.of(retention), self.media_budget,
                                         interval_s=retention.purge_interval_s,
                                         batch_files=retention.purge_batch_files, pause_s=retention.purge_pause_s,
                                         request_dir=self.data_dir)
        if self.records_purger is not None:
            self.retention.after_run = self.records_purger.request
        self.retention.start()
        for cameras in self.cctv.values():
            for camera in cameras:
                self._watch(camera)
                camera.start()

    def _start_devices(self) -> None:
        for lane in self.config.lanes:
            if lane.scale is not None:
                self.devices.append(ScaleReader(lane.id, lane.scale, self._post))
            anpr = [c for c in lane.cameras if c.kind == "anpr"]
            if anpr:
                self.devices.append(AnprListener(
                    lane.id, anpr, self._post, **listen_address(anpr),
                    on_payload=self.evidence.anpr_payload, on_image=self.evidence.anpr_image,
                    plate_countries=self.config.site.plate_countries,
                ))
        for device in self.devices:
            self._watch(device)
            device.start()

    def _start_sync(self) -> None:
        if not self.config.sync.enabled:
            return
        from edge_agent.sync.client import SyncClient  # paho-mqtt only for sites with a link

        self.sync = SyncClient(self.config.site, self.config.sync, self.data_dir / "agent.db", self._post,
                               site_health=self.site_health)
        self._watch(self.sync)
        # Evidence on demand: the RAU's requests, answered on the uploader's own thread.
        sync, root = self.sync, evidence_root(self.data_dir)
        self.sync.uploader = EvidenceUploader(
            self.config.site.id, root, lambda crossing_id: upload_plan(root, crossing_id), sync.publish_raw,
            sync.outbox_idle, rate_bytes_per_s=self.config.sync.evidence_rate_bytes_per_s,
            chunk_bytes=self.config.sync.evidence_chunk_kib * 1024, resend_timeout_s=self.config.sync.resend_timeout_s,
            snapshot_source=self._cctv_snapshot)
        self._watch(self.sync.uploader)
        self.sync.uploader.start()
        self.sync.start()

    def _cctv_snapshot(self, lane: str) -> tuple[str, bytes] | None:
        """The lane's latest CCTV frame as (camera id, JPEG), from the first camera that has one."""
        for camera in self.cctv.get(lane, []):
            jpeg = camera.snapshot_jpeg()
            if jpeg is not None:
                return camera.camera_id, jpeg
        return None

    def _watch(self, part: Any) -> None:
        """The service watchdog hears from every thread of a device or link, or withholds its pings."""
        for name, max_silence_s in part.watched().items():
            self.watchdog.register(name, max_silence_s=max_silence_s)
        part.heartbeat = self.watchdog.beat

    def _refetch(self, topic: str) -> None:
        if self.sync is not None:
            self.sync.refetch(topic)

    def _post(self, event: Any) -> None:
        if isinstance(event, WeightStable) and event.raw_frames and self.evidence is not None:
            self.evidence.scale_frames(event.lane, event.id, event.raw_frames)
        if self.core is not None:
            self.core.post(event)

    def _storage_failed(self, reason: str) -> bool:
        """A commit failed for the storage (core thread): give back the reserve; True when
        that freed space, so the core tries the event again at once."""
        return reason == "disk_full" and self.reserve.give_back()

    def _storage_recovered(self) -> None:
        self.reserve.allocate()

    def _online(self) -> bool:
        return bool(self.sync and self.sync.health().get("connected"))

    def _on_tick(self) -> None:
        # Runs on the core thread: a live loop renews the gates' open permission and
        # vouches to systemd, and only while the device threads still beat. While the
        # storage fails the permission is withheld: an open barrier closes when it lapses.
        if self.core is None or not self.core.storage_failed:
            for gate in self.gates.values():
                gate.renew_permission()
        if self.sync is not None and self.store is not None and time.monotonic() >= self._next_budget_check:
            self._next_budget_check = time.monotonic() + BUDGET_CHECK_S
            self._enforce_outbox_budget()
        self.watchdog.tick()

    def _enforce_outbox_budget(self) -> None:
        sync = self.config.sync
        decision = enforce_budget(self.store, budget_bytes=int(sync.outbox_budget_mb * 2**20),
                                  alarm_pct=sync.customs_alarm_pct)
        if decision.customs_alarm and not self._budget_alarm:
            log.error("outbox_budget_alarm customs_bytes_reach=%.0f%% of %s MB: the link to the RAU must be restored",
                      sync.customs_alarm_pct, sync.outbox_budget_mb)
        self._budget_alarm = decision.customs_alarm

    def device_health(self) -> dict[str, dict[str, Any]]:
        """Every device's own health: scales, plate cameras (and pulled ones), CCTV cameras."""
        out = {_device_name(d): d.health() for d in self.devices}
        for cameras in self.cctv.values():
            for camera in cameras:
                out[_device_name(camera)] = camera.health()
        return out

    def health(self) -> dict[str, Any]:
        return {
            "core": dict(self.core.counters) if self.core else {},
            "outputs": self.outputs.health(),
            "devices": self.device_health(),
            "gates": {lane: gate.state() for lane, gate in self.gates.items()},
            "sync": self.sync.health() if self.sync else {"enabled": False},
            "evidence": self.evidence.health() if self.evidence else {},
            "watchdog": {"stalled": list(self.watchdog.stalled)},
            "storage": self.storage_health(),
            "retention": self.retention.health() if self.retention else {},
        }

    def storage_health(self) -> dict[str, Any]:
        out = self.core.storage_health() if self.core else {"state": "ok"}
        reserve = getattr(self, "reserve", None)
        out["reserve_mb"] = round(reserve.held / 2**20, 1) if reserve else 0.0
        return out

    def site_health(self) -> dict[str, Any]:
        """What the RAU's health view needs of this site: every device in short, gates, lane
        phases, evidence failures and stalled threads (the link's own figures go beside it)."""
        evidence = self.evidence.health() if self.evidence else {}
        return {
            "devices": {name: device_summary(h) for name, h in self.device_health().items()},
            "gates": {lane: gate.state() for lane, gate in self.gates.items()},
            "phases": {lane_id: lane.phase.value for lane_id, lane in self.core.committed_lanes.items()}
            if self.core else {},
            "evidence_failures": int(evidence.get("failures", 0) or 0),
            "watchdog_stalled": list(self.watchdog.stalled),
            "storage": self.storage_health(),
        }

    # ------------------------------------------------------------------ metrics

    def add_metrics_source(self, name: str, lines: Callable[[], list[str]] | None) -> None:
        """Another part's metric families for /metrics (the console's requests); None removes it."""
        if lines is None:
            self._metrics_sources.pop(name, None)
        else:
            self._metrics_sources[name] = lines

    def figures(self) -> SiteFigures:
        core = self.core
        lanes = core.committed_lanes if core else {}
        store = self.metrics_store or StoreView(self.data_dir / "agent.db")
        extra = [line for source in list(self._metrics_sources.values()) for line in source()]
        return SiteFigures(
            lanes={lane_id: lane.phase.value for lane_id, lane in lanes.items()},
            decided={lane_id: bool(lane.channel) for lane_id, lane in lanes.items()},
            devices=self.device_health(),
            gates={lane: gate.state() for lane, gate in self.gates.items()},
            evidence=self.evidence.health() if self.evidence else {},
            link=self.sync.health() if self.sync else {"enabled": False},
            core_counters=dict(core.counters) if core else {},
            stalled=list(self.watchdog.stalled),
            decisions=store.channel_counts(),
            hits=store.hit_counts(),
            control_acts=store.control_act_counts(),
            outbox_backlog=store.outbox_count() or 0,
            storage=self.storage_health(),
            retention=self._retention_figures(store),
            extra=extra,
        )

    def _retention_figures(self, store: StoreView) -> dict[str, Any]:
        """Disk free, bytes per class (files at the worker's last scan, the database's
        file for records), held crossings, the oldest unsent event's age."""
        last = self.retention.last if self.retention else None
        by_class = dict(last.bytes_by_class) if last else {}
        by_class["records"] = sum(p.stat().st_size for p in self.data_dir.glob("agent.db*") if p.is_file())
        oldest = store.outbox_oldest_at()
        try:
            free = shutil.disk_usage(self.data_dir).free
        except OSError:
            free = None
        return {
            "disk_free_bytes": free,
            "bytes_by_class": by_class,
            "held_crossings": store.held_count(),
            "oldest_unsent_age_s": (utcnow() - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0,
            "budget": self.media_budget.snapshot() if self.media_budget else {},
            "purged": dict(self.retention.totals) if self.retention else {},
        }

    def render_metrics(self) -> str:
        return render_metrics(self.figures())


class _GateOutput:
    def __init__(self, lane_id: str, gate: Any) -> None:
        self.name = f"gate-{lane_id}"
        self.lane_id = lane_id
        self.gate = gate
        self._kinds = GATE_COMMANDS

    def accepts(self, command: object) -> bool:
        return isinstance(command, self._kinds) and getattr(command, "lane", "") == self.lane_id

    def execute(self, command: object) -> None:
        self.gate.execute(command)


def _device_name(device: Any) -> str:
    """Kind and lane, and the camera where a lane has several (two CCTV cameras per lane)."""
    name = type(device).__name__ + ":" + getattr(device, "lane_id", "")
    camera = getattr(device, "camera_id", "")
    return f"{name}:{camera}" if camera else name


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.exception("agent_stop_step_failed step=%s", getattr(fn, "__qualname__", fn))
