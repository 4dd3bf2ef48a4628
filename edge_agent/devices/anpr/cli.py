"""Technician's plate tools: `edge-agent anpr read IMAGE...` and `edge-agent simulate camera`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from edge_agent.plates.grammars import TABLE, Grammar


@click.group()
def anpr() -> None:
    """Plate recognition tools."""


@anpr.command("read")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--limit", default=3, show_default=True, help="Candidates per image.")
@click.option("--plate-country", "plate_countries", multiple=True, metavar="CODE",
              help="A home country of the site, as its [site] plate_countries (repeat for more): its formats "
                   "rank first and plates are written in its spelling (USA: the letter O as 0).")
def read_command(images: tuple[Path, ...], limit: int, plate_countries: tuple[str, ...]) -> None:
    """Read the plates in IMAGE files with local recognition; print JSON lines.

    One line per image: {"file", "plates": [{"text", "confidence", "alternatives",
    "box", "raw", "countries"}], "elapsed_s"}. Exit status 1 if any image had no plate.
    """
    from edge_agent.devices.anpr.recognition import LocalRecognizer, decode_jpeg

    known = [c.code for c in TABLE]
    unknown = [code for code in plate_countries if code not in known]
    if unknown:
        raise click.BadParameter(f"no plate grammar for {', '.join(unknown)}; known: {', '.join(known)}",
                                 param_hint="--plate-country")
    recognizer = LocalRecognizer(grammar=Grammar(TABLE, home=plate_countries))
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
    from edge_agent.plates.normal_form import coerce_to_formats, parse_plate

    for raw in plates:
        parsed = parse_plate(raw)
        click.echo(json.dumps({"raw": raw, "text": parsed.text, "countries": list(parsed.countries),
                               "format_fixes": list(dict.fromkeys(t for t, _ in coerce_to_formats(parsed.text)
                                                                  if t != parsed.text))},
                              ensure_ascii=False))
