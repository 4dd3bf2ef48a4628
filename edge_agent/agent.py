"""The shell around the core: builds devices, outputs and sync from one configuration,
runs them, and stops them in the safe order.

Start: gates first, in their safe state (barrier down, red), then the store, the rules,
the core, the outputs, the devices and the sync link. Stop (SIGTERM, SIGINT, a fatal
error): gates to the safe state first, then devices, core, outputs, sync, store.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.core import Core
from edge_agent.models import Observations, PreArrival
from edge_agent.outputs import OutputBus
from edge_agent.store import Store

log = logging.getLogger(__name__)


class RulesAssessor:
    """The active indicator set behind the core's `assessor` call; swapped atomically."""

    def __init__(self, config: AgentConfig, rules: Any) -> None:
        from edge_agent.local_rules import assess

        self._assess = assess
        self.policy = config.policy
        self.site_tz = config.site.timezone
        self.rules = rules

    @property
    def label(self) -> str:
        return str(getattr(self.rules, "version", ""))

    def replace(self, rules: Any) -> None:
        self.rules = rules

    def __call__(self, record: PreArrival | None, seen: Observations, *, now: datetime) -> Any:
        return self._assess(record, seen, self.rules, self.policy, now=now, site_tz=self.site_tz)


def load_rules(config: AgentConfig) -> Any:
    from edge_agent.local_rules import IndicatorSet, load_indicator_set

    sets = [load_indicator_set(path) for path in config.rules.indicator_files]
    if not sets:
        log.warning("rules_empty reason=no indicator files configured")
        return IndicatorSet.merge()
    return IndicatorSet.merge(*sets) if len(sets) > 1 else sets[0]


class Agent:
    """One site's agent. `start()`, then `stop()`; `run_forever()` adds signal handling."""

    def __init__(self, config: AgentConfig, *, pin_factory: Any = None, data_dir: Path | None = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir or config.site.data_dir)
        self.pin_factory = pin_factory
        self.gates: dict[str, Any] = {}
        self.devices: list[Any] = []
        self.sync: Any = None
        self.outputs = OutputBus()
        self.store: Store | None = None
        self.core: Core | None = None
        self._core_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stopping = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Agent":
        from edge_agent.devices.anpr.association import PlateIndex
        from edge_agent.devices.anpr.plates import normalize_plate

        self._start_gates()
        self.store = Store.open(self.data_dir / "agent.db")
        self.assessor = RulesAssessor(self.config, load_rules(self.config))
        self.core = Core(
            self.config,
            self.store,
            self.assessor,
            PlateIndex(),
            self.outputs,
            normalise_plate=normalize_plate,
            online=self._online,
            on_tick=self._on_tick,
        )
        self.outputs.start()
        self._core_thread = threading.Thread(target=self.core.run, name="core", daemon=True)
        self._core_thread.start()
        self._start_devices()
        self._start_sync()
        log.info("agent_started site=%s lanes=%d data_dir=%s", self.config.site.id, len(self.config.lanes), self.data_dir)
        return self

    def stop(self) -> None:
        with self._stopping:
            if self._stopped.is_set():
                return
            self.safe_state()
            for device in reversed(self.devices):
                _quietly(device.stop)
            if self.sync is not None:
                _quietly(self.sync.stop)
            if self.core is not None:
                self.core.stop()
            if self._core_thread is not None:
                self._core_thread.join(10)
            self.outputs.stop()
            for gate in self.gates.values():
                _quietly(gate.close)
            if self.store is not None:
                self.store.close()
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

        self._stopped_by_signal = threading.Event()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
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
        from edge_agent.devices.gate.controller import GateController

        for lane in self.config.lanes:
            gate = GateController(lane.id, lane.gate, self._post, pin_factory=self.pin_factory)
            gate.safe_state()
            self.gates[lane.id] = gate
            self.outputs.add(_GateOutput(lane.id, gate), on_error=gate.safe_state)

    def _start_devices(self) -> None:
        from edge_agent.devices.anpr.listener import AnprListener
        from edge_agent.devices.scale.transport import ScaleReader

        for lane in self.config.lanes:
            if lane.scale is not None:
                self.devices.append(ScaleReader(lane.id, lane.scale, self._post))
            anpr = [c for c in lane.cameras if c.kind == "anpr"]
            if anpr:
                self.devices.append(AnprListener(lane.id, anpr, self._post, **_listen(anpr)))
        for device in self.devices:
            device.start()

    def _start_sync(self) -> None:
        if not self.config.sync.enabled:
            return
        from edge_agent.sync.client import SyncClient

        self.sync = SyncClient(self.config.site, self.config.sync, self.data_dir / "agent.db", self._post)
        self.sync.start()

    def _post(self, event: Any) -> None:
        if self.core is not None:
            self.core.post(event)

    def _online(self) -> bool:
        return bool(self.sync and self.sync.health().get("connected"))

    def _on_tick(self) -> None:
        for gate in self.gates.values():
            gate.renew_permission()

    def health(self) -> dict[str, Any]:
        return {
            "core": dict(self.core.counters) if self.core else {},
            "outputs": self.outputs.health(),
            "devices": {type(d).__name__ + ":" + getattr(d, "lane_id", ""): d.health() for d in self.devices},
            "gates": {lane: gate.state() for lane, gate in self.gates.items()},
            "sync": self.sync.health() if self.sync else {"enabled": False},
        }


class _GateOutput:
    def __init__(self, lane_id: str, gate: Any) -> None:
        from edge_agent.commands import GATE_COMMANDS

        self.name = f"gate-{lane_id}"
        self.lane_id = lane_id
        self.gate = gate
        self._kinds = GATE_COMMANDS

    def accepts(self, command: object) -> bool:
        return isinstance(command, self._kinds) and getattr(command, "lane", "") == self.lane_id

    def execute(self, command: object) -> None:
        self.gate.execute(command)


def _listen(cameras: list) -> dict[str, Any]:
    return {}


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.exception("agent_stop_step_failed step=%s", getattr(fn, "__qualname__", fn))
