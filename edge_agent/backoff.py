"""Waiting before a retry: exponential backoff with full jitter, one policy for every link.

The delay is drawn uniformly from 0 to min(cap, base * 2**attempt) ("Exponential
Backoff And Jitter", AWS Architecture Blog, 2015): full jitter spreads the retries of
many clients that lost the same server, e.g. every camera after a switch reboots, or
every site after the RAU's broker comes back, instead of having them knock in step. A
link that stayed up for `healthy_s` starts the count over. Pure: no clock, no sleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

HEALTHY_LINK_S = 5.0  # a link that stayed up this long was not a flap: the backoff starts over
_MAX_EXPONENT = 62  # 2**62 exceeds any cap; past it the ceiling no longer grows


def full_jitter_delay_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The wait before retry number `attempt` (0 = the first): uniform in [0, min(cap_s, base_s * 2**attempt)]."""
    return rng.uniform(0.0, backoff_ceiling_s(attempt, base_s, cap_s))


def backoff_ceiling_s(attempt: int, base_s: float, cap_s: float) -> float:
    """The longest wait before retry number `attempt`: base_s doubled per attempt, capped."""
    return min(cap_s, base_s * 2 ** min(max(attempt, 0), _MAX_EXPONENT))


@dataclass
class Backoff:
    """Exponential backoff with full jitter; `rng` makes it reproducible in tests.

        backoff = Backoff(base_s=0.5, cap_s=10.0, rng=random.Random(7))
        backoff.next_delay_s()        # after a failure: in [0, 0.5], then [0, 1], [0, 2] ...
        backoff.link_lasted(up_s=60)  # a link that held: the next failure starts at [0, 0.5]
    """

    base_s: float
    cap_s: float
    healthy_s: float = HEALTHY_LINK_S
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s <= 0:
            raise ValueError(f"backoff needs positive base_s and cap_s, not {self.base_s} and {self.cap_s}")

    def next_delay_s(self) -> float:
        """The wait before the next try, and one attempt more for the one after."""
        delay = full_jitter_delay_s(self.attempt, self.base_s, self.cap_s, self.rng)
        if backoff_ceiling_s(self.attempt, self.base_s, self.cap_s) < self.cap_s:
            self.attempt += 1
        return delay

    def link_lasted(self, up_s: float) -> None:
        """A link that was up for `up_s` ended: if it held long enough, start over."""
        if up_s >= self.healthy_s:
            self.reset()

    def reset(self) -> None:
        self.attempt = 0
