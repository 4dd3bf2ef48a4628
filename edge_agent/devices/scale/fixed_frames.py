"""Resynchronising on fixed-length frames that begin with a marker byte.

Shared by the protocols whose frames have one length and one start byte (Rice Lake
RLWS, both XK3190 forms). Garbage before a marker is skipped and counted; a frame that
does not decode is counted as rejected and the search goes on from the byte after its
marker, because that marker may itself have been garbage.
"""

from __future__ import annotations

from edge_agent.devices.scale.frame import BadFrame, Frame


class FixedFrameParser:
    """Sans-I/O base: set `name`, `marker` and `length`, implement `decode`. `feed` never raises."""

    name = ""
    marker = b"\x02"
    length = 0

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.rejected = 0
        self.skipped_bytes = 0

    def decode(self, raw: bytes) -> Frame:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        buf = self._buf
        out: list[Frame] = []
        while buf:
            start = buf.find(self.marker)
            if start < 0:
                self._skip(len(buf))
                break
            if start:
                self._skip(start)
            if len(buf) < self.length:
                break
            frame = self.decode(bytes(buf[:self.length]))
            out.append(frame)
            if isinstance(frame, BadFrame):
                self.rejected += 1
                del buf[:1]
                continue
            self.frames += 1
            del buf[:self.length]
        return out

    def _skip(self, n: int) -> None:
        self.skipped_bytes += n
        del self._buf[:n]
