"""Decision policy: hits to one channel, and the random selection of green.

Channels are the site's configurable code list (config.PolicyConfig.channels); a lower
`precedence` number wins (default red > orange > yellow > blue > green). The random
selection follows ASYCUDA-style selectivity practice (a minimum random rate per
office): a share of what would be green is sent to `random_channel`. The draw is
HMAC-SHA256 of the declaration reference keyed with the site secret, so it cannot be
predicted from outside, yet anyone holding the secret can re-run it for an audit and
get the same answer for the same reference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from edge_agent.config import PolicyConfig

_SCALE = float(1 << 64)


def ranks(policy: PolicyConfig) -> dict[str, int]:
    return {c.code: c.precedence for c in policy.channels}


def strongest(codes: Iterable[str], policy: PolicyConfig) -> str:
    """The channel with the lowest precedence number. A code the site does not know
    counts as the strongest known channel: an indicator must never weaken a decision
    because of a typo in its channel."""
    rank = ranks(policy)
    top = min(policy.channels, key=lambda c: c.precedence).code
    best = None
    for code in codes:
        code = code if code in rank else top
        if best is None or rank[code] < rank[best]:
            best = code
    return best if best is not None else policy.default_channel


def keyed_fraction(secret: str, key: str) -> float:
    """A number in [0, 1) derived from HMAC-SHA256(secret, key): uniform, reproducible."""
    digest = hmac.new(secret.encode("utf-8"), key.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def randomly_selected(reference: str, policy: PolicyConfig) -> bool:
    """Whether this declaration is in the random share (same answer for the same reference)."""
    if policy.random_share_pct <= 0 or not reference:
        return False
    return keyed_fraction(policy.random_secret, "random|" + reference) * 100.0 < policy.random_share_pct


def share_channel(shares_pct: dict[str, float], secret: str, key: str) -> str:
    """Pick a channel from an indicator's per-channel shares with the keyed hash."""
    point = keyed_fraction(secret, key) * 100.0
    total = 0.0
    chosen = ""
    for code in sorted(shares_pct):
        chosen = code
        total += shares_pct[code]
        if point < total:
            return code
    return chosen  # rounding at the top end


def decide(
    hit_channels: Iterable[str],
    policy: PolicyConfig,
    *,
    reference: str,
    has_record: bool,
    stale: bool,
) -> tuple[str, bool]:
    """(channel, random_selected) for one truck.

    No record gives at least `no_prearrival_channel`, a stale set at least
    `stale_channel`; only a record that comes out green can be randomly selected.
    """
    codes = list(hit_channels)
    codes.append(policy.default_channel)
    if not has_record:
        codes.append(policy.no_prearrival_channel)
    if stale:
        codes.append(policy.stale_channel)
    channel = strongest(codes, policy)
    if (has_record and channel == policy.default_channel and randomly_selected(reference, policy)
            and policy.random_channel != policy.default_channel):
        return policy.random_channel, True
    return channel, False
