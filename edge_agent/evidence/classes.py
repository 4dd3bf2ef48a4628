"""Which retention class an evidence file belongs to, from its kind folder and name.

The kind folders written today (grep `add_file`/`add_bytes`/`add_path`):

    snapshot   CCTV stills at each lane moment (devices/cctv/recorder.py)      media
    clip       MJPG clips of hits (devices/cctv/recorder.py)                    media
    anpr       the camera's event payload (.xml, .json, .bin)                   raw
               and its plate crops and overview pictures (.jpg)                 media
    scale      the indicator's raw frames of the weighing (.hex)                raw

Pictures of people and vehicles are personal data kept only as long as needed
(`media_days`); raw device payloads are the proof of a reading (`raw_days`). A kind
this table does not know is classed by its name: pictures and video are media, the rest raw.
"""

from __future__ import annotations

from typing import Literal

FileClass = Literal["media", "raw"]

MEDIA_KINDS = frozenset({"snapshot", "clip"})
RAW_KINDS = frozenset({"scale"})
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".avi", ".mp4", ".mkv", ".webp")


def file_class(kind: str, name: str) -> FileClass:
    """"media" for pictures and clips (plate crops included), "raw" for device payloads."""
    if kind in MEDIA_KINDS:
        return "media"
    if kind in RAW_KINDS:
        return "raw"
    return "media" if name.lower().endswith(MEDIA_SUFFIXES) else "raw"
