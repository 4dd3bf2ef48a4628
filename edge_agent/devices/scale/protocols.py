"""The protocols a site can name in `scale.protocol`, with their usual serial settings.

Each entry ties a parser to the request a polled protocol sends, the encoder the
simulator speaks, and the line settings its indicators ship with (the presets in
firmware_config/scales/ repeat them for technicians).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.devices.scale import and_gs, mtsics, ricelake, sma, toledo, xk3190
from edge_agent.devices.scale.frame import Display, Frame


class Parser(Protocol):
    name: str

    @property
    def frames(self) -> int: ...

    @property
    def rejected(self) -> int: ...

    @property
    def skipped_bytes(self) -> int: ...

    def feed(self, data: bytes) -> list[Frame]: ...


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    description: str
    parser: Callable[[], Parser]
    encode: Callable[[Display], bytes]
    request: bytes | None = None  # polled protocols: what to send on the schedule
    respond: Callable[[bytes, Display], bytes] | None = None  # simulator side of a poll
    command_end: bytes = b"\r"  # how the simulator splits incoming commands
    checksum: str = ""  # "toledo" / "xor": which byte a checksum fault corrupts
    serial: dict = field(default_factory=lambda: {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1})


PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.name: spec
    for spec in (
        ProtocolSpec("toledo", "Mettler Toledo continuous output (11/12/17/18 bytes)",
                     toledo.ToledoContinuous, toledo.encode, checksum="toledo",
                     serial={"baudrate": 9600, "bytesize": 7, "parity": "E", "stopbits": 1}),
        ProtocolSpec("mt-sics", "Mettler Toledo MT-SICS, polled with SI",
                     mtsics.MtSics, mtsics.encode, request=mtsics.REQUEST, respond=mtsics.respond,
                     command_end=b"\n"),
        ProtocolSpec("and", "A&D stream, ST,GS,+0012.34kg", and_gs.AndStream, and_gs.encode,
                     serial={"baudrate": 2400, "bytesize": 7, "parity": "E", "stopbits": 1}),
        ProtocolSpec("sma", "SMA SCP-0499, polled with <LF>W<CR>", sma.SmaScp0499, sma.encode,
                     request=sma.REQUEST, respond=sma.respond),
        ProtocolSpec("rlws", "Rice Lake RLWS stream", ricelake.RiceLakeStream, ricelake.encode),
        ProtocolSpec("xk3190", "Yaohua XK3190 continuous, 12-byte STX frame (tF=0)",
                     xk3190.Xk3190, xk3190.encode, checksum="xor"),
        ProtocolSpec("xk3190-reversed", "Yaohua XK3190 continuous, reversed '=' frame",
                     xk3190.Xk3190Reversed, xk3190.encode_reversed),
    )
}

PROTOCOL_NAMES = tuple(PROTOCOLS)


def spec_for(name: str) -> ProtocolSpec:
    """The protocol called `name`; KeyError names the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown scale protocol {name!r}; known: {', '.join(PROTOCOL_NAMES)}") from None
