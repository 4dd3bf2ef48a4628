"""Polling for a condition, with limits generous enough for a loaded two-core CI machine:
a test waits for what it needs, never for a fixed time that a slow run could overrun."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float = 30.0, interval_s: float = 0.05,
             what: str = "condition") -> T:
    """The first truthy value of `condition()`; an AssertionError naming `what` if none came."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
