"""`edge-agent simulate ...`: device simulators for technicians, on real ports.

    edge-agent simulate scale --protocol toledo --tcp 4001 --garbage-every 20
    edge-agent simulate camera --url http://127.0.0.1:8081/ --format hikvision --count 5
    edge-agent simulate cctv --port 8554
    edge-agent simulate seed --port 1883 --office bcp-a --count 20

Each simulator comes in through the same door as the real device (a pty or TCP port,
HTTP pushes to the lane listener, an MJPEG stream, MQTT), so the agent under test runs
its production drivers. Nothing here is imported by the daemon.
"""

from __future__ import annotations

import json
import random
import sys
import time

import click

from edge_agent.devices.scale.protocols import PROTOCOL_NAMES
from edge_agent.lazy_commands import LazyGroup
from edge_agent.simulators.anpr_camera import FORMATS


@click.group(cls=LazyGroup, lazy={
    "cctv": ("edge_agent.simulators.cctv:simulate_cctv", "An MJPEG CCTV stream over HTTP."),
    "seed": ("edge_agent.simulators.seed_feed:main", "The SEED pre-arrival feed over MQTT."),
})
def simulate() -> None:
    """Device simulators for technicians: a weighbridge, a plate camera, CCTV, the SEED feed."""


@simulate.command("scale")
@click.option("--protocol", type=click.Choice(PROTOCOL_NAMES), default="toledo", show_default=True)
@click.option("--pty", "use_pty", is_flag=True, help="Listen on a pseudo-terminal (prints its path).")
@click.option("--tcp", "tcp_port", type=int, default=None, help="Listen on this TCP port (0 = any free port).")
@click.option("--interval-s", type=float, default=0.14, show_default=True, help="Seconds between frames.")
@click.option("--min-kg", type=float, default=8000, show_default=True)
@click.option("--max-kg", type=float, default=40000, show_default=True)
@click.option("--hold-s", type=float, default=6.0, show_default=True, help="Seconds a truck stays on the bridge.")
@click.option("--garbage-every", type=float, default=0.0, help="Seconds between bursts of garbage (0 = never).")
@click.option("--bad-checksum-every", type=float, default=0.0, help="Seconds between checksum errors.")
@click.option("--drop-every", type=float, default=0.0, help="Seconds between frames with dropped bytes.")
@click.option("--disconnect-every", type=float, default=0.0, help="Seconds between 2-second unplugs.")
@click.option("--seed", type=int, default=None)
def simulate_scale(protocol, use_pty, tcp_port, interval_s, min_kg, max_kg, hold_s, garbage_every,
                   bad_checksum_every, drop_every, disconnect_every, seed) -> None:
    """A weighbridge indicator on a pty or TCP port: trucks drive on and off until Ctrl-C."""
    from edge_agent.simulators.scale import ScaleSimulator

    if use_pty == (tcp_port is not None):
        raise click.UsageError("give one of --pty or --tcp PORT")
    sim = ScaleSimulator(protocol, tcp_port=tcp_port, pty=use_pty, frame_interval_s=interval_s, seed=seed)
    url = sim.start()
    click.echo(f"listening {url} protocol={protocol}")
    rng = random.Random(seed)
    faults = [(garbage_every, lambda: sim.inject_garbage(rng.randint(3, 40)), "garbage"),
              (bad_checksum_every, sim.inject_bad_checksum, "bad checksum"),
              (drop_every, lambda: sim.drop_bytes(rng.randint(1, 4)), "dropped bytes"),
              (disconnect_every, lambda: sim.disconnect(2.0), "disconnect")]
    due = {name: time.monotonic() + every for every, _, name in faults if every > 0}
    try:
        while True:
            target = round(rng.uniform(min_kg, max_kg) / 20) * 20
            click.echo(f"truck on: {target:.0f} kg")
            sim.drive_on(target, ramp_s=3.0)
            _run_faults(faults, due, time.monotonic() + 3.0 + hold_s)
            click.echo("truck off")
            sim.drive_off(ramp_s=2.0)
            _run_faults(faults, due, time.monotonic() + 4.0)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def _run_faults(faults, due: dict, until: float) -> None:
    while time.monotonic() < until:
        now = time.monotonic()
        for every, action, name in faults:
            if name in due and now >= due[name]:
                action()
                click.echo(f"fault: {name}")
                due[name] = now + every
        time.sleep(0.05)


@simulate.command("camera")
@click.option("--url", required=True, help="The lane listener, e.g. http://127.0.0.1:8081/ (posts to /anpr/<camera>).")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="hikvision", show_default=True)
@click.option("--camera", "camera_id", default="cam1", show_default=True, help="Camera id as configured.")
@click.option("--lane", default="", help="Lane id to put in the payload.")
@click.option("--plate", "plates", multiple=True, help="Plate to push (repeatable); random plates if none.")
@click.option("--count", default=1, show_default=True, help="Random plates to push when no --plate is given.")
@click.option("--country", default="", help="Country of random plates (RKS, AL, SRB, NMK, MNE, BIH, TR, ...).")
@click.option("--role", type=click.Choice(["tractor", "trailer"]), default="tractor", show_default=True)
@click.option("--ocr-errors", default=0, show_default=True, help="Look-alike characters to misread camera-side.")
@click.option("--interval-s", default=1.0, show_default=True, help="Pause between pushes.")
@click.option("--username", default="", help="Credentials the camera logs in with (Basic or Digest).")
@click.option("--password", default="")
@click.option("--seed", type=int, default=None)
def simulate_camera(url: str, fmt: str, camera_id: str, lane: str, plates: tuple[str, ...], count: int, country: str,
                    role: str, ocr_errors: int, interval_s: float, username: str, password: str,
                    seed: int | None) -> None:
    """A plate camera: render plates and push ANPR events to a lane listener."""
    from edge_agent.simulators.anpr_camera import AnprCameraSimulator, random_plate

    camera = AnprCameraSimulator(url, fmt, camera_id, seed=seed, username=username, password=password)
    rng = random.Random(seed)
    todo = list(plates) or [random_plate(rng, country or None)[1] for _ in range(count)]
    failed = 0
    for i, plate in enumerate(todo):
        if i:
            time.sleep(interval_s)
        status = camera.push(plate, role=role, ocr_errors=ocr_errors, lane=lane, country=country)
        last = camera.last
        click.echo(json.dumps({"plate": plate, "sent": last.sent_text if last else "", "status": status,
                               "reply": (last.reply.strip() if last else "")}, ensure_ascii=False))
        failed += status != 200
    sys.exit(1 if failed else 0)
