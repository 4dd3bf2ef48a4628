"""The random selection: share within tolerance, stable per reference, keyed by the secret."""

from __future__ import annotations

import math

from edge_agent.config import PolicyConfig
from edge_agent.local_rules.policy import decide, keyed_fraction, randomly_selected, strongest


def test_random_share_over_100000_references_within_tolerance():
    policy = PolicyConfig(random_share_pct=5.0, random_secret="site-secret-4711")
    n = 100_000
    selected = sum(randomly_selected(f"RS-2026-{i:07d}", policy) for i in range(n))
    # binomial: 5 % of 100,000 is 5,000 with sd ~69; 5 sd is far beyond chance
    sd = math.sqrt(n * 0.05 * 0.95)
    assert abs(selected - 5000) < 5 * sd


def test_selection_is_stable_per_reference_and_depends_on_the_secret():
    a = PolicyConfig(random_share_pct=30.0, random_secret="secret-aaaaaaaa")
    again = PolicyConfig(random_share_pct=30.0, random_secret="secret-aaaaaaaa")
    other = PolicyConfig(random_share_pct=30.0, random_secret="secret-bbbbbbbb")
    refs = [f"MK-{i}" for i in range(2000)]
    first = [randomly_selected(r, a) for r in refs]
    assert first == [randomly_selected(r, again) for r in refs]
    assert first == [randomly_selected(r, a) for r in refs]
    differs = sum(x != y for x, y in zip(first, (randomly_selected(r, other) for r in refs)))
    assert differs > 400  # about 42 % of references change side with another secret


def test_keyed_fraction_is_hmac_sha256():
    import hashlib
    import hmac

    digest = hmac.new(b"k3y-k3y-k3y", b"random|REF", hashlib.sha256).digest()
    assert keyed_fraction("k3y-k3y-k3y", "random|REF") == int.from_bytes(digest[:8], "big") / 2**64


def test_zero_and_full_shares():
    none = PolicyConfig(random_share_pct=0.0)
    every = PolicyConfig(random_share_pct=100.0)
    assert not any(randomly_selected(f"R{i}", none) for i in range(1000))
    assert all(randomly_selected(f"R{i}", every) for i in range(1000))


def test_precedence_red_orange_yellow_blue_green():
    policy = PolicyConfig()
    assert strongest(["green", "blue", "yellow", "orange", "red"], policy) == "red"
    assert strongest(["green", "blue", "yellow"], policy) == "yellow"
    assert strongest([], policy) == "green"
    assert decide(["blue"], policy, reference="", has_record=False, stale=False) == ("yellow", False)
    assert decide(["blue"], PolicyConfig(random_share_pct=0), reference="R", has_record=True, stale=False) == (
        "blue", False)
