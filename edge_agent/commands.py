"""Commands the core emits for the outputs to carry out.

Commands are imperatives (`OpenBarrier`); the gate controller derives the lights
from the barrier (green only after the barrier reports open, red before it closes),
so there is no separate "set lights" command to get out of order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lane: str = ""
    crossing_id: str = ""


class OpenBarrier(Command):
    """Grant the lane's barrier controller permission to open for this crossing."""

    kind: Literal["open_barrier"] = "open_barrier"
    reason: str = ""


class CloseBarrier(Command):
    """Withdraw the open permission; the barrier controller closes when the lane is clear."""

    kind: Literal["close_barrier"] = "close_barrier"


class ShowSign(Command):
    """Direct the driver: onward, to the documents booth, the inspection bay or the scanner."""

    kind: Literal["show_sign"] = "show_sign"
    sign: Literal["none", "exit", "documents", "inspection", "scanner", "back"]


class Alarm(Command):
    """Beacon and buzzer for the officers, with a reason they can read on the console."""

    kind: Literal["alarm"] = "alarm"
    reason: str


class NotifyOfficer(Command):
    """Something an officer must read or do; shown on the console."""

    kind: Literal["notify_officer"] = "notify_officer"
    message: str
    instructions: list[str] = Field(default_factory=list)


class SaveEvidence(Command):
    """Snapshot the lane cameras (and a clip for hits) for this moment of the crossing."""

    kind: Literal["save_evidence"] = "save_evidence"
    moment: Literal["arrival", "weighed", "decision", "release", "end"]
    hit: bool = False


GATE_COMMANDS = (OpenBarrier, CloseBarrier, ShowSign, Alarm)
