"""Line framing shared by the text protocols (MT-SICS, A&D, SMA).

A line is the bytes before a terminator. Garbage glued in front of a frame stays on
the same line, so each protocol matches its frame at the *end* of the line; a line
that never ends is cut at `max_len` so a babbling line cannot grow the buffer.
"""

from __future__ import annotations

from edge_agent.devices.scale.frame import BadFrame, Frame


class LineBuffer:
    """Collects bytes and hands out complete lines without their terminator."""

    def __init__(self, terminator: bytes, max_len: int = 80, strip: bytes = b"") -> None:
        self.terminator = terminator
        self.max_len = max_len
        self.strip = strip  # stray bytes of a two-byte terminator, dropped from line starts
        self.overflow_bytes = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines: list[bytes] = []
        while True:
            end = self._buf.find(self.terminator)
            if end < 0:
                break
            line = bytes(self._buf[:end])
            del self._buf[: end + len(self.terminator)]
            lines.append(line.lstrip(self.strip) if self.strip else line)
        if len(self._buf) > self.max_len:
            cut = len(self._buf) - self.max_len
            self.overflow_bytes += cut
            del self._buf[:cut]
        return lines


class LineParser:
    """Sans-I/O base of the text protocols: `decode_line` turns one line into a frame
    (or None for an empty one); feeding, counting and overflow are here. `feed` never raises."""

    name = ""
    terminator = b"\r"
    max_len = 64
    strip = b""

    def __init__(self) -> None:
        self._lines = LineBuffer(self.terminator, max_len=self.max_len, strip=self.strip)
        self.frames = 0
        self.rejected = 0

    @property
    def skipped_bytes(self) -> int:
        return self._lines.overflow_bytes

    def decode_line(self, line: bytes) -> Frame | None:
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        for line in self._lines.feed(data):
            frame = self.decode_line(line)
            if frame is None:
                continue
            if isinstance(frame, BadFrame):
                self.rejected += 1
            else:
                self.frames += 1
            out.append(frame)
        return out
