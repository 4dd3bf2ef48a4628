"""Which protocol and serial settings a line speaks: listen (and poll) with each candidate.

Odoo's IoT box drivers showed the approach for scales: probe, then bind. For every
line setting (baud rate and framing; one pass for `socket://`, where there is none)
and every protocol of the registry, the port is opened, a polled protocol is asked
once, and whatever arrives within `listen_s` is fed to that protocol's parser. The
first candidate that decodes `min_frames` readings with more good frames than bad
wins. Streams are tried before polled protocols, so probing never sends bytes to an
indicator that is already talking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_agent.devices.scale.frame import WeightFrame
from edge_agent.devices.scale.protocols import PROTOCOLS, ProtocolSpec

BAUDRATES = (9600, 4800, 19200, 2400, 1200, 38400, 57600, 115200)
FRAMINGS = ((8, "N", 1), (7, "E", 1), (7, "O", 1))


@dataclass(frozen=True)
class ProbeResult:
    protocol: str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: int
    frames: int
    rejected: int
    sample_kg: float


def candidates(url: str) -> Iterable[tuple[int, int, str, int]]:
    if url.startswith(("socket://", "loop://", "rfc2217://")):
        yield (9600, 8, "N", 1)
        return
    for baud in BAUDRATES:
        for bytesize, parity, stopbits in FRAMINGS:
            yield (baud, bytesize, parity, stopbits)


def probe(url: str, *, listen_s: float = 1.5, min_frames: int = 2, opener: Callable | None = None,
          progress: Callable[[str], None] = lambda line: None) -> ProbeResult | None:
    """The first (protocol, setting) that decodes readings on `url`, or None."""
    import serial

    opener = opener or serial.serial_for_url
    ordered = sorted(PROTOCOLS.values(), key=lambda s: s.request is not None)
    for baud, bytesize, parity, stopbits in candidates(url):
        progress(f"trying {baud} {bytesize}{parity}{stopbits}")
        try:
            port = opener(url, baudrate=baud, bytesize=bytesize, parity=parity, stopbits=stopbits, timeout=0.05)
        except Exception as err:  # noqa: BLE001 - the device may be absent: say so and give up
            progress(f"cannot open {url}: {err}")
            return None
        try:
            captured = _listen(port, listen_s)
            for spec in ordered:
                data = captured if spec.request is None else _ask(port, spec, listen_s)
                result = _score(spec, data, min_frames)
                if result:
                    return ProbeResult(spec.name, baud, bytesize, parity, stopbits, *result)
        finally:
            port.close()
    return None


def _listen(port, listen_s: float) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + listen_s
    while time.monotonic() < deadline and len(data) < 4096:
        data += port.read(port.in_waiting or 1)
    return bytes(data)


def _ask(port, spec: ProtocolSpec, listen_s: float) -> bytes:
    port.reset_input_buffer()
    data = bytearray()
    for _ in range(3):
        port.write(spec.request)
        data += _listen(port, listen_s / 3)
    return bytes(data)


def _score(spec: ProtocolSpec, data: bytes, min_frames: int) -> tuple[int, int, float] | None:
    if not data:
        return None
    parser = spec.parser()
    readings = [f for f in parser.feed(data) if isinstance(f, WeightFrame)]
    if len(readings) >= min_frames and len(readings) > parser.rejected:
        return len(readings), parser.rejected, readings[-1].value_kg
    return None
