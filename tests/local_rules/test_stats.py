"""Hit rate per indicator and channel rates from store rows."""

from __future__ import annotations

from edge_agent.config import PolicyConfig
from edge_agent.hit_rates import channel_rates, indicator_stats


def test_hits_controls_positives_and_hit_rate():
    hits = [
        {"assessment_id": "a1", "crossing_id": "c1", "indicator_id": "C-WEIGHT-10", "level": "central"},
        {"assessment_id": "a1b", "crossing_id": "c1", "indicator_id": "C-WEIGHT-10", "level": "central"},  # re-assessed
        {"assessment_id": "a2", "crossing_id": "c2", "indicator_id": "C-WEIGHT-10", "level": "central"},
        {"assessment_id": "a3", "crossing_id": "c3", "indicator_id": "C-WEIGHT-10", "level": "central"},
        {"assessment_id": "a4", "crossing_id": "c4", "indicator_id": "C-WEIGHT-10", "level": "central"},
        {"assessment_id": "a2", "crossing_id": "c2", "indicator_id": "L-TOBACCO-24", "level": "local"},
    ]
    acts = [
        {"id": "k1", "crossing_id": "c1", "result": "positive"},
        {"id": "k2", "crossing_id": "c2", "result": "negative"},
        {"id": "k3", "crossing_id": "c3", "result": "negative"},
        {"id": "k4", "crossing_id": "c3", "result": "positive"},  # second control found it
        {"id": "k5", "crossing_id": "c9", "result": "positive"},  # no hit: not counted
    ]
    stats = {s.indicator_id: s for s in indicator_stats(hits, acts)}
    weight = stats["C-WEIGHT-10"]
    assert (weight.hits, weight.controls, weight.positives) == (4, 3, 2)
    assert weight.hit_rate == 2 / 3  # positives per control, not per hit
    tobacco = stats["L-TOBACCO-24"]
    assert (tobacco.level, tobacco.hits, tobacco.controls, tobacco.positives, tobacco.hit_rate) == (
        "local", 1, 1, 0, 0.0)
    assert [s.indicator_id for s in indicator_stats(hits, acts)] == ["C-WEIGHT-10", "L-TOBACCO-24"]
    (unchecked,) = indicator_stats(hits[:1], [])
    assert (unchecked.hits, unchecked.controls, unchecked.hit_rate) == (1, 0, None)  # unknown, not 0 %
    assert indicator_stats([], []) == []


def test_channel_rates_against_expected():
    policy = PolicyConfig(random_share_pct=5.0, expected_share_pct={"green": 11.0, "yellow": 67.0})
    rows = ([{"channel": "green", "random_selected": 0}] * 18 + [{"channel": "yellow", "random_selected": 1}] * 2
            + [{"channel": "red", "random_selected": 0}] * 5)
    rates = channel_rates(rows, policy)
    by = {r["channel"]: r for r in rates["channels"]}
    assert rates["total"] == 25
    assert [r["channel"] for r in rates["channels"]] == ["red", "orange", "yellow", "blue", "green"]
    assert by["green"]["actual_pct"] == 72.0 and by["green"]["expected_pct"] == 11.0
    assert by["red"]["count"] == 5 and by["red"]["expected_pct"] is None
    assert rates["random"] == {"selected": 2, "eligible": 20, "actual_pct": 10.0, "expected_pct": 5.0}
    assert channel_rates([], policy)["total"] == 0


def test_channel_rates_of_grouped_rows_count_as_their_rows_would():
    """The RAU's ledger groups crossings by channel in SQL; a row with `count` stands for that many."""
    policy = PolicyConfig(random_share_pct=5.0, expected_share_pct={"green": 11.0, "yellow": 67.0})
    rows = ([{"channel": "green", "random_selected": 0}] * 18 + [{"channel": "yellow", "random_selected": 1}] * 2
            + [{"channel": "red", "random_selected": 0}] * 5)
    grouped = [{"channel": "green", "random_selected": 0, "count": 18},
               {"channel": "yellow", "random_selected": 1, "count": 2},
               {"channel": "red", "random_selected": 0, "count": 5}]
    assert channel_rates(grouped, policy) == channel_rates(rows, policy)
