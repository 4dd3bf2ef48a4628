"""The plate-camera vendors a site can name in `cameras.vendor`, and what each can do.

Each entry ties a vendor's module (its parsers, sans-I/O) to the ways the agent can
hear from it: a push parser for events the camera POSTs to the lane's listener, how to
recognise its bodies on the lane's shared path (a camera that does not name itself in
the URL), and the pull modes it offers. Snapshot polling (`pull_mode = "snapshot"`:
any camera's JPEG URL, read by local recognition) needs nothing of the vendor, so
every vendor has it.

A new vendor is one module (`devices/anpr/<vendor>.py` with its parser) and one line in
`VENDORS` (CONTRIBUTING.md, "A camera vendor").

    spec = VENDORS["hikvision"]
    spec.parse_push(body, content_type)       # PlateNotification | Ignored | Rejected
    camera_problems(config.lanes)             # names the site file gets wrong, by key path
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.config import LaneConfig
from edge_agent.devices.anpr import dahua, generic, hikvision
from edge_agent.devices.anpr.notification import Ignored, PlateNotification
from edge_agent.models import Rejected

Parsed = PlateNotification | Ignored | Rejected
SNAPSHOT = "snapshot"


class StreamParser(Protocol):
    """Bytes of an endless event stream in, events out; `flush` ends the pending one."""

    def feed(self, data: bytes) -> list[Parsed]: ...

    def flush(self) -> list[Parsed]: ...


@dataclass(frozen=True)
class VendorSpec:
    name: str
    description: str
    parse_push: Callable[[bytes, str], Parsed]  # (body, content type)
    # A push on the lane's shared path: is this body this vendor's? Asked in table order.
    recognises: Callable[[str, bytes], bool]
    # The payload names its camera, and it must be the camera of the URL it came to.
    names_camera: bool = False
    # Pull modes besides snapshot polling, each with its stream parser (content type -> parser).
    streams: tuple[tuple[str, Callable[[str], StreamParser]], ...] = ()
    # The body the vendor's cameras expect in the answer to a push, for cameras that read
    # more than the status: (status, reason) -> (content type, body text). None: plain text.
    answer: Callable[[int, str], tuple[str, str]] | None = None

    @property
    def pull_modes(self) -> tuple[str, ...]:
        return (*(mode for mode, _ in self.streams), SNAPSHOT)

    def stream_parser(self, mode: str, content_type: str) -> StreamParser:
        for name, factory in self.streams:
            if name == mode:
                return factory(content_type)
        raise KeyError(f"{self.name} cameras have no {mode!r} stream")


# The generic push is the project's own documented JSON: the fallback for any body no
# other vendor recognises, so it stays last.
VENDORS: dict[str, VendorSpec] = {
    spec.name: spec
    for spec in (
        VendorSpec("hikvision", "Hikvision ISAPI ANPR: XML, JSON or multipart pushes; the alert stream",
                   hikvision.parse_hikvision, hikvision.looks_like_hikvision,
                   streams=(("alert_stream", hikvision.AlertStream),)),
        VendorSpec("dahua", "Dahua ITC ITSAPI traffic snapshot push: JSON, base64 pictures", dahua.parse_dahua,
                   dahua.looks_like_dahua, answer=dahua.answer),
        VendorSpec("generic", "the generic JSON push (docs: devices/anpr/generic.py)",
                   generic.parse_generic, lambda content_type, body: True, names_camera=True),
    )
}


def vendor_for(content_type: str, body: bytes) -> VendorSpec:
    """The vendor whose body this is, for a push that names no camera."""
    for spec in VENDORS.values():
        if spec.recognises(content_type, body):
            return spec
    return VENDORS["generic"]


def camera_problems(lanes: Iterable[LaneConfig]) -> list[tuple[tuple, str]]:
    """(key path, problem) for every ANPR camera whose vendor or mode this agent cannot serve."""
    problems: list[tuple[tuple, str]] = []
    for i, lane in enumerate(lanes):
        for j, camera in enumerate(lane.cameras):
            if camera.kind != "anpr":
                continue
            where = ("lanes", i, "cameras", j)
            spec = VENDORS.get(camera.vendor)
            if spec is None:
                problems.append(((*where, "vendor"), f"unknown camera vendor {camera.vendor!r}; known: "
                                 f"{', '.join(VENDORS)}"))
            elif camera.mode == "pull" and camera.pull_mode not in spec.pull_modes:
                problems.append(((*where, "pull_mode"), f"{camera.vendor} cameras cannot be pulled as "
                                 f"{camera.pull_mode!r}; they offer {', '.join(spec.pull_modes)}"))
            elif camera.mode == "pull" and not camera.url:
                problems.append(((*where, "url"), "a pulled camera needs the url to fetch from"))
            if camera.mode == "pull" and camera.pull_mode == SNAPSHOT and camera.recognition != "local":
                problems.append(((*where, "recognition"), 'snapshot polling reads plates itself: set '
                                 'recognition = "local"'))
    return problems
