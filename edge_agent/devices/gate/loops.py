"""Loop detectors to vehicle movements, and input debouncing: pure, no pins, no clock.

A truck lane has four induction loops in driving order:

    arrival ─> on_scale ─> under_boom ─> exit
    (queue)    (weighbridge) (barrier)   (past the barrier)

A loop only says "something metal is over me"; direction comes from the order in which
loops are occupied and cleared. The lane admits one truck between the arrival loop and
the barrier at a time (the red light holds the next one back), which is what makes
the order unambiguous:

- arrival occupied while no truck is tracked: a truck arrived  -> "arrived"
- exit cleared after the truck reached it, boom loop clear     -> "left_forward"
- arrival cleared while every loop further on is clear, after the
  truck had reached the scale (or came back onto the arrival
  loop after leaving it)                                        -> "left_reverse"

`step()` takes one debounced change and returns the new state and the movements.
`Debouncer` turns raw edges into debounced changes without losing a short pulse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

LOOPS = ("arrival", "on_scale", "under_boom", "exit")
_ORDER = {name: i for i, name in enumerate(LOOPS)}


@dataclass(frozen=True)
class LoopState:
    occupied: frozenset[str] = frozenset()
    present: bool = False  # a truck is being tracked
    furthest: int = -1  # index of the furthest loop it reached
    left_arrival: bool = False  # it cleared the arrival loop at least once
    returning: bool = False  # it came back onto the arrival loop


def step(state: LoopState, loop: str, occupied: bool) -> tuple[LoopState, list[str]]:
    """One debounced loop change -> (new state, movements: arrived, left_forward, left_reverse)."""
    if loop not in _ORDER:
        raise ValueError(f"unknown loop {loop!r}")
    occ = state.occupied | {loop} if occupied else state.occupied - {loop}
    state = replace(state, occupied=occ)
    out: list[str] = []
    downstream_clear = not (occ & {"on_scale", "under_boom", "exit"})
    if occupied:
        if not state.present:
            # A truck first seen on a later loop (agent restarted mid-crossing) is tracked
            # from there, but only the arrival loop starts a crossing.
            state = replace(state, present=True, furthest=_ORDER[loop], left_arrival=False, returning=False)
            if loop == "arrival":
                out.append("arrived")
            return state, out
        state = replace(state, furthest=max(state.furthest, _ORDER[loop]))
        if loop == "arrival" and state.left_arrival and downstream_clear:
            state = replace(state, returning=True)
        elif loop != "arrival":
            state = replace(state, returning=False)
        return state, out
    if not state.present:
        return state, out
    if loop == "arrival":
        if downstream_clear and (state.furthest >= 1 or state.returning):
            out.append("left_reverse")
            return LoopState(occupied=occ), out
        return replace(state, left_arrival=True), out
    if loop == "exit" and state.furthest >= 3 and "under_boom" not in occ:
        out.append("left_forward")
        state = LoopState(occupied=occ)
        if "arrival" in occ:
            # The next truck was already waiting on the arrival loop.
            state = replace(state, present=True, furthest=0)
            out.append("arrived")
        return state, out
    return state, out


@dataclass
class Debouncer:
    """Leading edge at once, then the settled level after `debounce_s` of quiet.

    Contact chatter inside the window is ignored, yet a short real pulse is never lost
    (the level after the window is compared with the last reported one). gpiozero's own
    `bounce_time` drops every edge inside the window, including the last one, which can
    leave an input reported in the wrong state.
    """

    debounce_s: float
    level: bool = False  # the last reported (debounced) level
    _quiet_until: float = float("-inf")
    _pending: bool = False

    def edge(self, raw: bool, now: float) -> list[bool]:
        """A raw edge (the new raw level) at `now`; returns debounced levels to report."""
        if now >= self._quiet_until and not self._pending:
            self._quiet_until = now + self.debounce_s
            self._pending = self.debounce_s > 0
            if raw != self.level:
                self.level = raw
                return [raw]
            return []
        self._pending = True
        return []

    def due(self) -> float | None:
        """When `settle` must be called, or None when nothing is pending."""
        return self._quiet_until if self._pending else None

    def settle(self, raw: bool, now: float) -> list[bool]:
        """At or after `due()`, with the input's current raw level."""
        if not self._pending or now < self._quiet_until:
            return []
        self._pending = False
        if raw != self.level:
            self.level = raw
            # The new level opens a fresh window so chatter right after it is absorbed too.
            self._quiet_until = now + self.debounce_s
            self._pending = self.debounce_s > 0
            return [raw]
        return []
