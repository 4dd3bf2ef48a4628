"""`edge-agent cctv ...`: a technician's checks of a CCTV stream."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.group()
def cctv() -> None:
    """CCTV tools: grab a snapshot, watch a stream's health."""


@cctv.command()
@click.argument("url")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timeout-s", default=10.0, show_default=True, help="Give up if no frame arrives by then.")
@click.option("--quality", default=90, show_default=True, help="JPEG quality.")
def snapshot(url: str, file: Path, timeout_s: float, quality: int) -> None:
    """Save one frame of URL (rtsp://, http:// MJPEG or a video file) as a JPEG FILE."""
    import cv2

    from edge_agent.devices.cctv.capture import redact

    timeout_ms = int(timeout_s * 1000)
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
    try:
        if not capture.isOpened():
            click.echo(f"cannot open {redact(url)}", err=True)
            sys.exit(1)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        click.echo(f"no frame from {redact(url)} within {timeout_s:g} s", err=True)
        sys.exit(1)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        click.echo("cannot encode the frame as JPEG", err=True)
        sys.exit(1)
    file.write_bytes(buf.tobytes())
    click.echo(f"{file}: {frame.shape[1]}x{frame.shape[0]}, {len(buf)} bytes")


@cctv.command()
@click.argument("url")
@click.option("--seconds", default=10.0, show_default=True, help="How long to watch.")
def watch(url: str, seconds: float) -> None:
    """Read URL as the agent does (reconnects included) and print its health every second."""
    import json

    from edge_agent.config import CameraConfig
    from edge_agent.devices.cctv.capture import CctvCamera

    camera = CctvCamera(CameraConfig(id="probe", kind="cctv", role="scene", url=url), lane_id="probe")
    camera.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1.0)
            click.echo(json.dumps(camera.health()))
    finally:
        camera.stop()
