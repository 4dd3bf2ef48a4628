"""`edge-agent demo`: a crossing point on simulators, driven by a scenario of trucks.

The agent runs exactly as `edge-agent run` would, with simulators coming in through the
same doors as hardware: weighbridge indicators on TCP ports read by the production
serial driver, plate cameras pushing over HTTP to the production listener, loop
detectors and the barrier on gpiozero's MockFactory pins. SEED pre-arrival records and
the officers' actions are posted as the downlink and the console would post them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from edge_agent import shipped
from edge_agent.agent import Agent
from edge_agent.config import (
    AgentConfig,
    CameraConfig,
    ConsoleConfig,
    GateConfig,
    LaneConfig,
    MetricsConfig,
    PolicyConfig,
    RulesConfig,
    ScaleConfig,
    SiteConfig,
    TimeoutsConfig,
)
from edge_agent.console.auth import Accounts
from edge_agent.demo_rau import RAU_CONSOLE_USERS, DemoRau, broker_installed
from edge_agent.devices.anpr.listener import AnprListener
from edge_agent.lane import Phase
from edge_agent.models import ControlActRecorded, ControlCompleted, PreArrivalReceived
from edge_agent.simulators.anpr_camera import AnprCameraSimulator
from edge_agent.simulators.barrier import simulated_barrier
from edge_agent.simulators.cctv import CctvSimulator
from edge_agent.simulators.scale import ScaleSimulator
from edge_agent.simulators.scenario import TruckPlan, build_scenario
from edge_agent.store import StoreView

log = logging.getLogger(__name__)

DEMO_INDICATORS = shipped.path("firmware_config", "indicators", "demo.json")

# Scenario durations in seconds of lane time; --speed divides them.
ARRIVAL_GAP_S = 3.0
DRIVE_ON_S = 2.0
CONTROL_S = 8.0
DRIVE_OFF_S = 2.0


@dataclass
class Outcome:
    plan: TruckPlan
    crossing_id: str = ""
    channel: str = ""
    hits: list[str] = field(default_factory=list)
    random_selected: bool = False
    gate_actions: list[str] = field(default_factory=list)
    reference: str = ""
    error: str = ""

    @property
    def as_expected(self) -> bool:
        if self.error:
            return False
        plan = self.plan
        if set(self.hits) != set(plan.expected_hits):
            return False
        if plan.record is not None and self.reference != plan.record.reference:
            return False
        if plan.expected_channel is not None:
            return self.channel == plan.expected_channel
        return self.channel == "green" or (self.random_selected and not self.hits)


def run_demo(*, trucks: int = 20, time_factor: float = 0.1, seed: int = 7, data_dir: Path | None = None,
             live: bool = True, out: TextIO | None = None, console_port: int | None = None,
             online: bool | None = None, rau_console_port: int | None = None) -> bool:
    """Run the scenario; print the live view and the summary; True if every truck matched.

    With `console_port` the officers' console serves the demo's lanes and stays up after
    the summary until Ctrl-C, with one demo user per role (DEMO_USERS).
    """
    echo = (lambda s: click.echo(s, file=out)) if out is not None else click.echo
    started = time.monotonic()
    summary: list[bool] = []

    def linger(rig: DemoRig, outcomes: list[Outcome]) -> None:
        summary.append(print_summary(outcomes, time.monotonic() - started, echo))
        echo(rig.rau_report())
        if rig.rau is not None and rig.rau.console_url:
            echo(f"\nthe RAU console stays up at {rig.rau.console_url}, users "
                 f"{', '.join(RAU_CONSOLE_USERS)}, password {DEMO_PASSWORD!r}")
        if console_port is not None or (rig.rau is not None and rig.rau.console_url):
            if console_port is not None:
                echo(f"\nthe console stays up at {rig.agent.console.url}, the site's figures at "
                     f"{rig.agent.metrics.url} (Ctrl-C to end)")
            else:
                echo("(Ctrl-C to end)")
            # A shell that starts a job in the background without job control has it ignore
            # SIGINT, and Python keeps an ignored SIGINT ignored: Ctrl-C (or kill -INT) would
            # then never end the demo. It is promised to, so it is asked for here.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                echo("")

    outcomes = run_scenario(trucks=trucks, time_factor=time_factor, seed=seed, data_dir=data_dir,
                            echo=echo if live else None, console_port=console_port, before_stop=linger,
                            online=online, rau_console_port=rau_console_port)
    return summary[0] if summary else print_summary(outcomes, time.monotonic() - started, echo)


SITE_ID = "xk-merdare"

# One user per console role, so a newcomer can try every action of the demo's console.
DEMO_PASSWORD = "demo-password"
DEMO_USERS = {"officer": "officer", "head": "head_of_office", "analyst": "local_risk_analyst",
              "technician": "technician", "viewer": "viewer"}


def run_scenario(*, trucks: int, time_factor: float, seed: int, data_dir: Path | None = None,
                 echo=None, console_port: int | None = None, before_stop=None,
                 online: bool | None = None, rau_console_port: int | None = None) -> list[Outcome]:
    """Drive the scenario's trucks through a started agent; one Outcome per truck.

    `online`: run the RAU (private mosquitto + central hub) beside the agent; None means
    "when mosquitto is installed".
    """
    plans = build_scenario(trucks, seed)
    workdir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="edge-agent-demo-"))
    if online is None:
        online = broker_installed()
    rig = DemoRig(workdir, time_factor, seed, console_port, online=online, rau_console_port=rau_console_port)
    try:
        rig.start()
        say = echo or log.info
        say(f"demo: site {rig.config.site.id}, lanes {', '.join(lane.id for lane in rig.config.lanes)}, "
            f"{trucks} trucks, seed {seed}, data in {workdir}")
        if rig.agent.console is not None:
            say(f"demo: console at {rig.agent.console.url}, users {', '.join(DEMO_USERS)}, "
                f"password {DEMO_PASSWORD!r}")
        if rig.rau is not None and rig.rau.console_url:
            say(f"demo: RAU console at {rig.rau.console_url}, users {', '.join(RAU_CONSOLE_USERS)}, "
                f"password {DEMO_PASSWORD!r}")
        say(rig.link_line())
        rig.deliver_prearrivals([plan.record for plan in plans if plan.record is not None])
        outcomes = rig.drive(plans, echo)
        if before_stop is not None:
            before_stop(rig, outcomes)
        return outcomes
    finally:
        rig.stop()
        if data_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


class DemoRig:
    """The agent plus one set of simulators per lane."""

    def __init__(self, workdir: Path, time_factor: float, seed: int, console_port: int | None = None,
                 *, online: bool = False, officer_wait_s: float = 0.0, rau_console_port: int | None = None) -> None:
        self.workdir = workdir
        self.officer_wait_s = officer_wait_s
        self.console_port = console_port
        self.rau: Any = None
        if online:
            # With rau_console_port the RAU's console serves beside the hub (demo_rau.py).
            self.rau = DemoRau(workdir, SITE_ID, rau_console_port=rau_console_port, password=DEMO_PASSWORD)
        self.factor = time_factor
        self.seed = seed
        self.scales: dict[str, Any] = {}
        self.cctv: dict[str, Any] = {}
        self.cameras: dict[str, dict[str, Any]] = {}
        self.agent: Any = None
        self.pin_factory: Any = None
        self.config: AgentConfig = self._config({})
        self.store = StoreView(workdir / "agent.db")

    def scaled(self, seconds: float) -> float:
        return seconds * self.factor

    def start(self) -> None:
        from gpiozero.pins.mock import MockFactory

        lanes = ("L1", "L2")
        interval = max(0.005, 0.14 * self.factor)
        for i, lane in enumerate(lanes):
            sim = ScaleSimulator("toledo", tcp_port=0, frame_interval_s=interval, seed=self.seed + i)
            sim.start()
            self.scales[lane] = sim
        for lane in lanes:
            # Small and slow on purpose: evidence for the demo, not a load test of the board.
            self.cctv[lane] = CctvSimulator(fps=5, width=640, height=360, name=f"{lane}-SCENE").start()
        self.config = self._config({lane: sim.url for lane, sim in self.scales.items()},
                                   {lane: sim.url for lane, sim in self.cctv.items()})
        if self.rau is not None:
            self.rau.start()
            self.config = self.config.model_copy(update={"sync": self.rau.sync_config()})
        self.pin_factory = MockFactory()
        if self.console_port is not None:
            self._add_demo_users()
        self.agent = Agent(self.config, pin_factory=self.pin_factory, data_dir=self.workdir,
                           gate_equipment=simulated_barrier(max(0.02, 3.0 * self.factor)))
        self.agent.start()
        self._start_cameras()
        if self.rau is not None:
            self._wait(lambda: self.agent.sync.health()["connected"], "the agent to connect to the RAU's broker")
            self.rau.publish_bundle()
            self._wait(lambda: self.agent.core.counters["bundles_applied"] >= 1, "the signed bundle to be applied")

    def link_line(self) -> str:
        if self.rau is None:
            return ("demo: offline (mosquitto is not installed, or --offline): the lanes decide alone and "
                    "events wait in the outbox")
        return (f"demo: RAU on mosquitto 127.0.0.1:{self.rau.broker.port}; signed bundle "
                f"{self.agent.assessor.label.split('+')[-1]} applied; pre-arrivals come through the central hub")

    def deliver_prearrivals(self, records: list) -> None:
        """Through the hub's routing when online (as SEED delivers them), straight to the core offline."""
        if self.rau is None:
            for record in records:
                self.agent.post(PreArrivalReceived(record=record, source="seed-feed"))
            return
        counters = self.agent.core.counters
        before = counters["prearrival_new"] + counters["prearrival_updated"]
        self.rau.route(records)
        self._wait(lambda: counters["prearrival_new"] + counters["prearrival_updated"] - before >= len(records),
                   f"{len(records)} pre-arrival records from the hub")

    def rau_report(self) -> str:
        def backlog() -> int:
            return self.store.outbox_count() or 0

        if self.rau is None:
            return f"RAU: offline; {backlog()} event(s) wait in the outbox for the link"
        with contextlib.suppress(TimeoutError):
            self._wait(lambda: backlog() == 0, "the outbox to drain", timeout_s=30)
        return (f"RAU: the central hub stored {self.rau.delivered()} event(s) from {SITE_ID}; "
                f"{backlog()} left in the outbox unacknowledged")

    def _add_demo_users(self) -> None:
        accounts = Accounts(self.workdir / "console.db")
        try:
            for username, role in DEMO_USERS.items():
                accounts.add_user(username, role, DEMO_PASSWORD, full_name=f"Demo {role.replace('_', ' ')}",
                                  replace=True)
        finally:
            accounts.close()

    def _start_cameras(self) -> None:
        for device in self.agent.devices:
            if isinstance(device, AnprListener):
                lane = device.lane_id
                self.cameras[lane] = {
                    "tractor": AnprCameraSimulator(device.url, "hikvision", f"{lane}-front", seed=self.seed),
                    "trailer": AnprCameraSimulator(device.url, "generic", f"{lane}-rear", seed=self.seed + 1),
                }

    def stop(self) -> None:
        self.store.close()
        if self.agent is not None:
            self.agent.stop()
        if self.rau is not None:
            self.rau.stop()
        for sim in (*self.scales.values(), *self.cctv.values()):
            sim.stop()

    def _config(self, scale_urls: dict[str, str], cctv_urls: dict[str, str] | None = None) -> AgentConfig:
        f = max(self.factor, 0.02)
        lanes = []
        for n, lane in enumerate(("L1", "L2")):
            url = scale_urls.get(lane, "socket://127.0.0.1:9")
            lanes.append(LaneConfig(
                id=lane,
                name=f"Truck lane {n + 1}",
                scale=ScaleConfig(url=url, protocol="toledo", division_kg=20, min_weight_kg=1000,
                                  stable_readings=4, stable_window_s=max(0.04, 1.0 * self.factor)),
                cameras=[
                    CameraConfig(id=f"{lane}-front", kind="anpr", role="tractor", vendor="hikvision"),
                    CameraConfig(id=f"{lane}-rear", kind="anpr", role="trailer", vendor="generic"),
                    # Clips keep at least a second each side: at full speed 5 * f would be shorter
                    # than the gap between ring frames.
                    *([CameraConfig(id=f"{lane}-scene", kind="cctv", role="scene", url=cctv_urls[lane],
                                    ring_seconds=10, ring_fps=5, clip_before_s=max(1.0, 5 * f),
                                    clip_after_s=max(1.0, 5 * f))]
                      if cctv_urls else []),
                ],
                gate=demo_gate(n),
                timeouts=TimeoutsConfig(plate_s=60 * f, weight_s=120 * f, trailer_s=6 * f,
                                        officer_s=900 * f, exit_s=120 * f),
            ))
        return AgentConfig(
            site=SiteConfig(id=SITE_ID, region="xk-rs", name="Merdare (demo)", data_dir=self.workdir),
            lanes=lanes,
            policy=PolicyConfig(random_secret=demo_secret(self.seed)),
            rules=RulesConfig(indicator_files=[DEMO_INDICATORS]),
            console=ConsoleConfig(enabled=self.console_port is not None, port=self.console_port or 0),
            metrics=MetricsConfig(port=0),
        )

    # ------------------------------------------------------------------ driving

    def drive(self, plans: list[TruckPlan], echo) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        view = LiveView(self, echo) if echo else None
        threads = []
        for lane in ("L1", "L2"):
            mine = [p for p in plans if p.lane == lane]
            t = threading.Thread(target=self._drive_lane, args=(lane, mine, outcomes, view), name=f"demo-{lane}")
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
        if view:
            view.flush()
        return [outcomes[p.number] for p in plans]

    def _drive_lane(self, lane: str, plans: list[TruckPlan], outcomes: dict[int, Outcome], view) -> None:
        for plan in plans:
            outcome = Outcome(plan)
            outcomes[plan.number] = outcome
            try:
                self._one_truck(lane, plan, outcome, view)
            except Exception as err:  # the summary names the truck; the rest go on
                log.exception("demo_truck_failed truck=%d", plan.number)
                outcome.error = str(err) or type(err).__name__
                self._recover(lane)
            time.sleep(self.scaled(ARRIVAL_GAP_S))

    def _one_truck(self, lane: str, plan: TruckPlan, outcome: Outcome, view) -> None:
        gate = self.agent.gates[lane]
        if view:
            view.truck(plan)
        self._loop(lane, "arrival", True)
        self.cameras[lane]["tractor"].push(plan.tractor_read, role="tractor", lane=lane)
        if plan.trailer_plate:
            self.cameras[lane]["trailer"].push(plan.trailer_read, role="trailer", lane=lane)
        self._loop(lane, "arrival", False)
        self._loop(lane, "on_scale", True)
        self.scales[lane].drive_on(plan.measured_kg, ramp_s=self.scaled(DRIVE_ON_S))
        snap = self._wait(lambda: (s := self._snap(lane))["decided"] and s, f"decision for truck {plan.number}")
        crossing = snap["crossing"]
        if self._snap(lane)["phase"] in (Phase.HELD.value, Phase.OFFICER_ABSENT.value):
            time.sleep(self.scaled(CONTROL_S))
            # As the officer does on the console: the control act first, then the release.
            # With `officer_wait_s` the rig leaves the act to a person on the demo's console
            # for that long, and records its own only if none came.
            def recorded() -> bool:
                return any(act["crossing_id"] == crossing for act in self.store.control_acts_of_lane(lane, 20))

            with contextlib.suppress(TimeoutError):
                if self.officer_wait_s:
                    self._wait(recorded, "the officer's control act", timeout_s=self.officer_wait_s)
            if not recorded():
                self.agent.post(control_act(plan, lane, crossing, snap["channel"]))
            self.agent.post(ControlCompleted(lane=lane, user="officer.demo", reason="control done", source="console"))
        self._wait(lambda: gate.state()["barrier"] == "open", f"barrier open for truck {plan.number}")
        self.scales[lane].drive_off(ramp_s=self.scaled(DRIVE_OFF_S))
        self._loop(lane, "on_scale", False)
        self._loop(lane, "under_boom", True)
        self._loop(lane, "under_boom", False)
        self._loop(lane, "exit", True)
        self._loop(lane, "exit", False)
        self._wait(lambda: self._snap(lane)["crossing"] != crossing, f"end of truck {plan.number}")
        self._fill(outcome, crossing)

    def _fill(self, outcome: Outcome, crossing: str) -> None:
        outcome.crossing_id = crossing
        assessment = self.store.latest_assessment(crossing)
        if assessment:
            outcome.channel = assessment["channel"]
            outcome.random_selected = bool(assessment["random_selected"])
            outcome.reference = assessment["reference"]
        outcome.hits = sorted({h["indicator_id"] for h in self.store.hits_for(crossing)})
        outcome.gate_actions = [
            gate_action(r["kind"], r["body"]) for r in self.store.commands_for(crossing)
            if r["kind"] in ("open_barrier", "close_barrier", "show_sign")
        ]

    def _recover(self, lane: str) -> None:
        for loop in ("arrival", "on_scale", "under_boom", "exit"):
            self._loop(lane, loop, False)
        self.scales[lane].drive_off(ramp_s=0)

    def _snap(self, lane: str) -> dict:
        return self.agent.core.snapshot()[lane]

    def _loop(self, lane: str, loop: str, occupied: bool) -> None:
        pin = self.pin_factory.pin(loop_pin(self.config.lane(lane).gate, loop))
        (pin.drive_high if occupied else pin.drive_low)()
        time.sleep(max(0.01, self.scaled(0.3)))

    def _wait(self, condition, what: str, timeout_s: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout_s or max(10.0, self.scaled(120)))
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.01)
        raise TimeoutError(f"timed out waiting for {what}")


# Both demo lanes share one mock board, so the second lane is wired to other pins.
_SECOND_LANE_PINS = dict(
    barrier_open_pin="GPIO4", barrier_close_pin="GPIO7", light_red_pin="GPIO8", light_green_pin="GPIO9",
    loop_arrival_pin="GPIO10", loop_on_scale_pin="GPIO11", loop_under_boom_pin="GPIO12", loop_exit_pin="GPIO16",
    open_limit_pin="GPIO20", closed_limit_pin="GPIO21",
)
# The direction signs take the header's remaining free pins: enough for the three signs
# the scenario uses on each lane (no truck is sent to the scanner).
_SIGN_PINS = (
    {"exit": "GPIO26", "documents": "GPIO18", "inspection": "GPIO14"},
    {"exit": "GPIO2", "documents": "GPIO3", "inspection": "GPIO15"},
)


# What the demo's officer finds: the planted cases that smuggle something are positive.
_FINDINGS = {"overweight": "load heavier than declared: undeclared goods",
             "tobacco": "cigarettes without excise stamps",
             "empty_loaded": "declared empty, carrying goods"}
_CONTROL_TYPES = {"yellow": "documents", "orange": "scanner"}


def control_act(plan: TruckPlan, lane: str, crossing: str, channel: str) -> ControlActRecorded:
    found = _FINDINGS.get(plan.plant, "")
    return ControlActRecorded(
        lane=lane, crossing_id=crossing, control_type=_CONTROL_TYPES.get(channel, "physical"),
        result="positive" if found else "negative", findings=found or "nothing found", user="officer.demo",
        reason="demo control", source="console")


def demo_secret(seed: int) -> str:
    """The demo's own random-selection secret: the same draws for the same seed, and no
    constant a real site could copy (sites get theirs from `edge-agent install`)."""
    return hashlib.sha256(f"edge-agent demo {seed}".encode()).hexdigest()


def demo_gate(n: int) -> GateConfig:
    pins = _SECOND_LANE_PINS if n else {}
    return GateConfig(pin_factory="mock", sign_pins=_SIGN_PINS[n], **pins)


def loop_pin(gate: GateConfig, loop: str) -> str:
    return getattr(gate, f"loop_{loop}_pin")


class LiveView:
    """One line per thing that happens in a lane, from the core's and the gates' state."""

    def __init__(self, rig: DemoRig, echo) -> None:
        self.rig = rig
        self.echo = echo
        self.lock = threading.Lock()
        self.last: dict[str, tuple] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-view", daemon=True)
        self.thread.start()

    def truck(self, plan: TruckPlan) -> None:
        declared = f"declared {plan.record.gross_kg:,.0f} kg" if plan.record else "no pre-arrival record"
        self._say(plan.lane, f"truck {plan.number:>2} arrives: {plan.tractor_plate}"
                  f"{' + ' + plan.trailer_plate if plan.trailer_plate else ''}, {declared} [{plan.plant}]")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.poll()

    def poll(self) -> None:
        snapshot = self.rig.agent.core.snapshot()
        for lane, snap in snapshot.items():
            gate = self.rig.agent.gates[lane].state()
            key = (snap["phase"], snap["channel"], gate.get("barrier"), gate.get("lights"), gate.get("sign"))
            if self.last.get(lane) != key:
                self.last[lane] = key
                weight = f"{snap['weight_kg']:,.0f} kg" if snap["weight_kg"] else "-"
                plates = "/".join(p for p in (snap["tractor"], snap["trailer"]) if p) or "-"
                self._say(lane, f"{snap['phase']:<14} plate {plates:<20} weight {weight:<10} channel "
                          f"{snap['channel'] or '-':<7} barrier {gate.get('barrier')} lights {gate.get('lights')} "
                          f"sign {gate.get('sign')}")

    def flush(self) -> None:
        self._stop.set()
        self.thread.join(1)
        self.poll()

    def _say(self, lane: str, text: str) -> None:
        with self.lock:
            self.echo(f"{time.strftime('%H:%M:%S')}  {lane}  {text}")


def print_summary(outcomes: list[Outcome], elapsed_s: float, echo) -> bool:
    echo("")
    echo(f"{'#':>3} {'lane':<4} {'plates':<24} {'case':<16} {'channel':<8} {'hits':<28} {'gate actions':<46} ok")
    for o in outcomes:
        p = o.plan
        plates = p.tractor_plate + (f" / {p.trailer_plate}" if p.trailer_plate else "")
        channel = o.channel + ("*" if o.random_selected else "")
        actions = " ".join(o.gate_actions)
        mark = "yes" if o.as_expected else f"NO {o.error}"
        echo(f"{p.number:>3} {p.lane:<4} {plates:<24} {p.plant:<16} {channel or '-':<8} "
             f"{', '.join(o.hits) or '-':<28} {actions:<46} {mark}")
    good = sum(o.as_expected for o in outcomes)
    channels: dict[str, int] = {}
    for o in outcomes:
        channels[o.channel or "none"] = channels.get(o.channel or "none", 0) + 1
    echo("")
    echo("channels: " + ", ".join(f"{k} {v}" for k, v in sorted(channels.items())) + "   (* random selection)")
    echo(f"{good}/{len(outcomes)} trucks handled as the scenario expects, in {elapsed_s:.1f} s")
    return good == len(outcomes)


def gate_action(kind: str, body: str) -> str:
    """A gate command as the summary shows it: open, close, sign:inspection ..."""
    if kind == "show_sign":
        return "sign:" + json.loads(body)["sign"]
    return {"open_barrier": "open", "close_barrier": "close"}.get(kind, kind)
