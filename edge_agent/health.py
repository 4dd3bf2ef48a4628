"""The few figures of a device's health that matter away from the booth.

Each device reports its own health dict (a scale reader its frames per second, a CCTV
camera its fps, the ANPR listener whether it runs). The console's /metrics and the
health event sent to the RAU both need the same short form: is it connected, how many
frames a second, how old is the last one, how many errors. Pure functions over those dicts.
"""

from __future__ import annotations

from typing import Any

_RATE_KEYS = ("frames_per_s", "fps")
# What each kind of device counts as going wrong: failed opens and lost links (every
# reconnecting device), bad frames (scales), refused pushes (plate cameras), ring and clip
# failures (CCTV).
_ERROR_KEYS = ("link_errors", "rejected", "errors", "unauthorized", "ring_encode_failures", "clip_callback_failures")


def frame_rate(health: dict[str, Any]) -> float | None:
    """Frames per second as the device reports it, under whichever name it uses."""
    for key in _RATE_KEYS:
        value = health.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def device_summary(health: dict[str, Any]) -> dict[str, Any]:
    """Connected (or running), frame rate, last-frame age and errors, where the device has them."""
    summary: dict[str, Any] = {}
    up = health.get("connected", health.get("running", health.get("ok")))
    if isinstance(up, bool):
        summary["up"] = up
    rate = frame_rate(health)
    if rate is not None:
        summary["frames_per_s"] = rate
    if health.get("last_frame_age_s") is not None:
        summary["last_frame_age_s"] = health["last_frame_age_s"]
    summary["errors"] = sum(v for k in _ERROR_KEYS if isinstance(v := health.get(k), int) and not isinstance(v, bool))
    return summary
