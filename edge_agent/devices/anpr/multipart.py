"""Multipart bodies (RFC 7578 form-data, RFC 2046 mixed) split into parts, sans-I/O.

Hikvision pushes ANPR events as multipart/form-data and streams its alert channel as an
endless multipart/mixed body; both go through this one reader. The byte-level parsing is
python-multipart's streaming `MultipartParser`; this module only collects each part's
headers and body and enforces size limits.

    >>> reader = MultipartReader(boundary)
    >>> parts = reader.feed(chunk)        # complete parts so far, any chunking
    >>> reader.finished                   # True once the closing boundary was seen
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header


class MultipartError(ValueError):
    """The body is not valid multipart; the message says why (for the HTTP 400)."""


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return parse_options_header(self.headers.get("content-type", ""))[0].decode("latin-1").lower()

    @property
    def name(self) -> str:
        options = parse_options_header(self.headers.get("content-disposition", ""))[1]
        return (options.get(b"name") or options.get(b"filename") or b"").decode("utf-8", "replace")

    @property
    def filename(self) -> str:
        options = parse_options_header(self.headers.get("content-disposition", ""))[1]
        return (options.get(b"filename") or b"").decode("utf-8", "replace")


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type, or MultipartError."""
    kind, options = parse_options_header(content_type)
    if not kind.lower().startswith(b"multipart/"):
        raise MultipartError(f"not multipart: {kind.decode('latin-1')!r}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise MultipartError("multipart without a boundary parameter")
    return boundary


class MultipartReader:
    def __init__(self, boundary: bytes, *, max_part_bytes: int = 8 * 1024 * 1024, max_parts: int = 32) -> None:
        self.max_part_bytes = max_part_bytes
        self.max_parts = max_parts
        self.finished = False
        self.parts_seen = 0
        self._done: list[Part] = []
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._body = bytearray()
        self._error = ""
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._finish,
        }, max_header_count=16)

    def feed(self, data: bytes) -> list[Part]:
        """Parse more bytes; returns the parts completed by them. Raises MultipartError."""
        if self._error:
            raise MultipartError(self._error)
        try:
            self._parser.write(data)
        except Exception as err:  # python-multipart raises its own error types and ValueError
            self._error = f"malformed multipart: {err}"
            raise MultipartError(self._error) from err
        if self._error:
            raise MultipartError(self._error)
        done, self._done = self._done, []
        return done

    def _begin(self) -> None:
        self._headers = {}
        self._body = bytearray()
        self.parts_seen += 1
        if self.parts_seen > self.max_parts:
            self._error = f"more than {self.max_parts} parts"

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("utf-8", "replace").strip()
        self._field.clear()
        self._value.clear()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if len(self._body) + (end - start) > self.max_part_bytes:
            self._error = f"part larger than {self.max_part_bytes} bytes"
            return
        self._body.extend(data[start:end])

    def _end(self) -> None:
        if not self._error:
            self._done.append(Part(self._headers, bytes(self._body)))

    def _finish(self) -> None:
        self.finished = True


def split_multipart(body: bytes, content_type: str, **limits: int) -> list[Part]:
    """A whole multipart body into its parts; MultipartError if bad or truncated."""
    reader = MultipartReader(boundary_of(content_type), **limits)
    parts = reader.feed(body)
    if not reader.finished:
        raise MultipartError("multipart body ends before its closing boundary")
    if not parts:
        raise MultipartError("multipart body without parts")
    return parts
