"""Technician's plate tools: `edge-agent anpr read IMAGE...` and `edge-agent simulate camera`."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import click


@click.group()
def anpr() -> None:
    """Plate recognition tools."""


@anpr.command("read")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--limit", default=3, show_default=True, help="Candidates per image.")
def read_command(images: tuple[Path, ...], limit: int) -> None:
    """Read the plates in IMAGE files with local recognition; print JSON lines.

    One line per image: {"file", "plates": [{"text", "confidence", "alternatives",
    "box", "raw", "countries"}], "elapsed_s"}. Exit status 1 if any image had no plate.
    """
    from edge_agent.devices.anpr.recognition import LocalRecognizer, decode_jpeg

    recognizer = LocalRecognizer()
    missing = 0
    for path in images:
        frame = decode_jpeg(path.read_bytes())
        started = time.perf_counter()
        candidates = recognizer.recognize(frame) if frame is not None else []
        elapsed = time.perf_counter() - started
        missing += not candidates
        click.echo(json.dumps({
            "file": str(path),
            "error": "" if frame is not None else "not an image",
            "plates": [{"text": c.text, "confidence": c.confidence, "alternatives": list(c.alternatives),
                        "box": list(c.box) if c.box else None, "raw": c.raw, "countries": list(c.countries)}
                       for c in candidates[:limit]],
            "elapsed_s": round(elapsed, 3),
        }, ensure_ascii=False))
    sys.exit(1 if missing else 0)


anpr.add_command(read_command, "recognize")


@anpr.command("normalize")
@click.argument("plates", nargs=-1, required=True)
def normalize_command(plates: tuple[str, ...]) -> None:
    """Print each PLATE in normal form with the Western Balkans shapes it fits."""
    from edge_agent.devices.anpr.plates import coerce_to_formats, parse_plate

    for raw in plates:
        parsed = parse_plate(raw)
        click.echo(json.dumps({"raw": raw, "text": parsed.text, "countries": list(parsed.countries),
                               "format_fixes": list(dict.fromkeys(t for t, _ in coerce_to_formats(parsed.text)
                                                                  if t != parsed.text))},
                              ensure_ascii=False))


@click.command("camera")
@click.option("--url", required=True, help="The lane listener, e.g. http://127.0.0.1:8081/ (posts to /anpr/<camera>).")
@click.option("--format", "fmt", type=click.Choice(["hikvision", "generic"]), default="hikvision", show_default=True)
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
    from simulators.anpr_camera import AnprCameraSimulator, random_plate

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
