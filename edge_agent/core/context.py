"""What a core handler works with, and how it refuses an event.

A handler is a function `(core, event) -> commands`, registered on the core for one
event type (`Core.register`). The core calls it on its own thread, inside the event's
transaction, after storing the event itself: a handler may write the store and change
`core.lanes`, and everything it writes commits or rolls back with the event. Handlers
never raise for bad input: an event that cannot apply is refused (logged and counted)
and stays stored as the record of what was asked.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from edge_agent.commands import Command
from edge_agent.config import AgentConfig
from edge_agent.lane import LaneState
from edge_agent.models import EventBase, Observations, PreArrival
from edge_agent.store import Store

log = logging.getLogger(__name__)

E = TypeVar("E", bound=EventBase)


class Assessor(Protocol):
    """The rules in force, as the core uses them (core/rules_in_force.RulesAssessor)."""

    rules: Any

    @property
    def label(self) -> str: ...

    def __call__(self, record: PreArrival | None, seen: Observations, *, now: datetime) -> Any: ...

    def replace(self, rules: Any) -> None: ...

    def reload(self) -> None: ...


class CoreContext(Protocol):
    """The part of the core a handler may use."""

    config: AgentConfig
    store: Store
    lanes: dict[str, LaneState]
    counters: Counter[str]
    assessor: Assessor
    clock: Callable[[], float]  # monotonic seconds, as the lane state machine counts them
    crossing_ended_hooks: list[Callable[[LaneState, str], None]]  # (the lane as it was, outcome)
    tick_hooks: list[Callable[[datetime], None]]  # (UTC now), inside each tick's transaction

    def post(self, item: Any, source: str = "") -> None: ...

    def register(self, event_type: type[E], handler: Callable[[CoreContext, E], list[Command]]) -> None: ...


Handler = Callable[[CoreContext, Any], list[Command]]


def refuse(core: CoreContext, event: EventBase, reason: str) -> list[Command]:
    """An event that cannot apply: counted by kind, logged with the reason, no command."""
    kind = getattr(event, "kind", type(event).__name__)
    core.counters[f"refused_{kind}"] += 1
    log.warning("event_refused kind=%s id=%s reason=%s", kind, event.id, reason)
    return []
