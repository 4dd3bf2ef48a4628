"""Effectiveness (issue 16, item 4): the pure counting and charts, the ledger's rows on both
back-ends, and the page, its CSV exports and its refusals over HTTP."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from edge_agent.central.config import CHANNEL_TARGETS_PCT, ConsoleConfig, HubConfig, load_hub_config
from edge_agent.central.console.app import create_app
from edge_agent.central.console.charts import Bar, bar_chart
from edge_agent.central.console.effectiveness import (
    buckets,
    csv_text,
    effectiveness,
    effectiveness_form,
    table_csv,
    targets_policy,
    time_range,
)
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.ledger import Ledger
from edge_agent.config import PolicyConfig
from edge_agent.errors import ConfigError
from edge_agent.ids import encode

PASSWORD = "correct horse battery"
DAY = date(2026, 3, 2)  # a Monday
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_serial = iter(range(1, 1_000_000))


def at(when: datetime) -> str:
    """An event id made at `when` (ids sort by their time, edge_agent/ids.py)."""
    return encode(int(when.timestamp() * 1000), next(_serial))


def ev(site: str, stream: str, when: datetime, **body) -> tuple[str, str, bytes]:
    return site, stream, json.dumps({"id": at(when), "stream": stream, "site": site, **body}).encode()


def hit(site, when, crossing, indicator, level="central", channel="red"):
    return ev(site, "hit", when, crossing=crossing, assessment="A-" + crossing, indicator_id=indicator,
              level=level, channel=channel)


def crossing(site, when, crossing_id, channel, random_selected=False):
    return ev(site, "crossing", when, crossing=crossing_id, channel=channel, random_selected=random_selected,
              outcome="released")


def control(site, when, crossing_id, result):
    return ev(site, "control_act", when, crossing_id=crossing_id, result=result, lane="L1")


# Two sites, two weeks. W-1 hits C1 (positive) and C2 (negative) at bcp-a, C1 twice (a
# re-assessment); L-1 (local) hits C3, never controlled; R-1 (regional) hits bcp-b's C1
# (same crossing id, another site: a different truck), positive.
EVENTS = [
    hit("bcp-a", T0, "C1", "W-1"), hit("bcp-a", T0 + timedelta(minutes=1), "C1", "W-1"),
    hit("bcp-a", T0 + timedelta(hours=1), "C2", "W-1"),
    hit("bcp-a", T0 + timedelta(days=8), "C3", "L-1", level="local", channel="yellow"),
    hit("bcp-b", T0 + timedelta(days=1), "C1", "R-1", level="regional"),
    control("bcp-a", T0 + timedelta(hours=2), "C1", "positive"),
    control("bcp-a", T0 + timedelta(hours=3), "C2", "negative"),
    control("bcp-b", T0 + timedelta(days=1, hours=1), "C1", "negative"),
    control("bcp-b", T0 + timedelta(days=1, hours=2), "C1", "positive"),  # any positive act makes it positive
    crossing("bcp-a", T0 + timedelta(hours=4), "C1", "red"),
    crossing("bcp-a", T0 + timedelta(hours=5), "C2", "red"),
    crossing("bcp-a", T0 + timedelta(days=8, hours=1), "C3", "yellow"),
    *[crossing("bcp-a", T0 + timedelta(days=2, minutes=i), f"G{i}", "green") for i in range(6)],
    crossing("bcp-a", T0 + timedelta(days=2, hours=1), "Y9", "yellow", random_selected=True),
    crossing("bcp-b", T0 + timedelta(days=1, hours=3), "C1", "red"),
    crossing("bcp-b", T0 + timedelta(days=1, hours=4), "X1", ""),  # ended before any assessment
]
QUERY = {"since": DAY, "until": DAY + timedelta(days=13), "bucket": "week", "site": "", "indicator": ""}


def rows_of(ledger_url: str, site: str = ""):
    ledger = Ledger(ledger_url)
    try:
        ledger.ingest(EVENTS)
        since, until = time_range(QUERY["since"], QUERY["until"])
        return (ledger.hit_crossings(since, until, site), ledger.control_outcomes(since, until, site),
                ledger.channel_counts(since, until, site))
    finally:
        ledger.close()


POLICY = targets_policy(PolicyConfig(), CHANNEL_TARGETS_PCT, 5.0)


# ------------------------------------------------------------------ the pure parts

def test_form_defaults_and_refusals():
    form = effectiveness_form({}, today=DAY)
    assert form.ok and form.values["until"] == DAY and (DAY - form.values["since"]).days == 27
    assert form.values["bucket"] == "week"
    bad = effectiveness_form({"since": "yesterday", "bucket": "month", "site": "a b", "indicator": "x;y"}, today=DAY)
    assert set(bad.errors) == {"since", "bucket", "site", "indicator"}
    assert "until" in effectiveness_form({"since": "2026-03-05", "until": "2026-03-01"}, today=DAY).errors
    assert "since" in effectiveness_form({"since": "2024-01-01", "until": "2026-03-01"}, today=DAY).errors


def test_buckets_cover_the_range_quiet_ones_included():
    assert buckets(date(2026, 3, 4), date(2026, 3, 17), "week") == [date(2026, 3, 2), date(2026, 3, 9),
                                                                    date(2026, 3, 16)]
    assert len(buckets(DAY, DAY + timedelta(days=2), "day")) == 3


def test_csv_quotes_and_guards_formulas():
    text = csv_text(["a", "b"], [["=HYPERLINK(\"x\")", 'say "hi", then\nleave'], ["+1", -3], ["@cmd", "-x"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["a", "b"], ["'=HYPERLINK(\"x\")", 'say "hi", then\nleave'], ["'+1", "-3"], ["'@cmd", "'-x"]]
    assert text.endswith("\r\n")


def test_chart_escapes_labels_and_says_unknown():
    bars = [Bar("<script>x</script>", None), Bar("ok", 40.0, target=50.0, kind="red")]
    svg = str(bar_chart("t", bars, max_value=100))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "unknown" in svg and 'class="bar-unknown"' in svg and 'class="bar-target"' in svg
    assert "style=" not in svg  # the CSP forbids inline styles
    assert 'width="144.0"' in svg  # 40 % of the 360 px bar


# ------------------------------------------------------------------ the ledger's rows, both back-ends

def test_counts_per_indicator_level_site_time_and_channel_mix(ledger_url):
    report = effectiveness(*rows_of(ledger_url), QUERY, POLICY)
    ind = {c.key: c for c in report.indicators}
    assert (ind["W-1"].hits, ind["W-1"].controls, ind["W-1"].positives, ind["W-1"].hit_rate) == (2, 2, 1, 0.5)
    assert (ind["L-1"].hits, ind["L-1"].controls, ind["L-1"].hit_rate) == (1, 0, None)  # unknown, not 0 %
    assert (ind["R-1"].hits, ind["R-1"].positives, ind["R-1"].hit_rate, ind["R-1"].level) == (1, 1, 1.0, "regional")
    assert [(c.key, c.hits, c.hit_rate) for c in report.levels] == [
        ("local", 1, None), ("regional", 1, 1.0), ("central", 2, 0.5)]
    assert [(c.key, c.hits, c.controls, c.positives) for c in report.sites] == [("bcp-a", 3, 2, 1),
                                                                               ("bcp-b", 1, 1, 1)]
    assert [(c.key, c.hits, c.controls, c.positives) for c in report.over_time] == [
        ("2026-03-02", 3, 3, 2), ("2026-03-09", 1, 0, 0)]
    assert report.over_time[1].hit_rate is None
    all_sites, a, b = report.mix
    assert (all_sites.site, all_sites.total, all_sites.unassessed, a.site, a.total, b.unassessed) == (
        "", 11, 1, "bcp-a", 10, 1)
    shares = {ch["channel"]: ch for ch in a.channels}
    assert shares["green"]["count"] == 6 and shares["green"]["actual_pct"] == 60.0
    assert shares["green"]["expected_pct"] == 11.0 and shares["orange"]["expected_pct"] == 4.0
    assert a.random["selected"] == 1 and a.random["eligible"] == 7 and a.random["expected_pct"] == 5.0
    lines = table_csv(report, "indicators").splitlines()
    assert lines[0] == "indicator,level,hits,controls,positives,hit_rate" and "L-1,local,1,0,0,unknown" in lines


def test_the_site_filter_and_the_indicator_over_time(ledger_url):
    report = effectiveness(*rows_of(ledger_url, "bcp-b"), {**QUERY, "indicator": "R-1", "bucket": "day"}, POLICY)
    assert [c.key for c in report.indicators] == ["R-1"] and [m.site for m in report.mix] == ["bcp-b"]
    assert len(report.over_time) == 14
    assert [(c.key, c.hits, c.positives) for c in report.over_time if c.hits] == [("2026-03-03", 1, 1)]


# ------------------------------------------------------------------ the targets' configuration

def test_targets_default_to_the_seed_and_are_checked(tmp_path):
    assert HubConfig().console.channel_targets_pct == {"green": 11.0, "yellow": 67.0, "red": 16.0, "blue": 2.0,
                                                       "orange": 4.0}
    assert HubConfig().console.random_target_pct == 5.0
    path = tmp_path / "central.toml"
    path.write_text('[console]\nrandom_target_pct = 3\n[console.channel_targets_pct]\ngreen = 20\nyellow = 60\n')
    config = load_hub_config(path)
    assert config.console.channel_targets_pct == {"green": 20.0, "yellow": 60.0}
    assert config.console.random_target_pct == 3.0
    for bad in ("purple = 5", "green = 80\nyellow = 40", "green = -1"):
        path.write_text(f"[console.channel_targets_pct]\n{bad}\n")
        with pytest.raises(ConfigError, match="channel_targets_pct"):
            load_hub_config(path)


# ------------------------------------------------------------------ the page over HTTP

@pytest.fixture
def page(tmp_path, ledger_url):
    ledger = Ledger(ledger_url)
    ledger.ingest(EVENTS)
    ledger.close()
    settings = RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db",
                                  targets=ConsoleConfig(channel_targets_pct={"green": 30.0, "yellow": 70.0}))
    app = create_app(settings)
    app.state.console.accounts.add_user("mona", "monitoring", PASSWORD)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield app, client
    app.state.console.close()


def login(client, username="mona"):
    r = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert r.status_code == 303, r.text


RANGE = "since=2026-03-02&until=2026-03-15"


def test_page_shows_tables_charts_and_the_configured_targets(page):
    app, client = page
    assert client.get(f"/effectiveness?{RANGE}").status_code == 303  # a login first
    assert client.get(f"/effectiveness/levels.csv?{RANGE}").status_code == 401
    login(client)
    r = client.get(f"/effectiveness?{RANGE}")
    assert r.status_code == 200
    assert r.text.count("<svg") >= 6  # levels, indicators, over time, the mix of all sites and of each
    assert 'data-key="L-1"' in r.text and "unknown" in r.text
    assert "target 30.0 %" in r.text  # central.toml's targets, not the seed's
    assert "style=" not in r.text and "<script>" not in r.text


def test_csv_export_is_audited_and_counted(page):
    app, client = page
    login(client)
    r = client.get(f"/effectiveness/levels.csv?{RANGE}&bucket=day")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["level", "hits", "controls", "positives", "hit_rate"], ["local", "1", "0", "0", "unknown"],
        ["regional", "1", "1", "1", "1.0000"], ["central", "2", "2", "1", "0.5000"]]
    mix = list(csv.DictReader(io.StringIO(client.get(f"/effectiveness/channel_mix.csv?{RANGE}").text)))
    assert {"site": "bcp-a", "channel": "green", "crossings": "6", "actual_pct": "60.00",
            "target_pct": "30.00"} in mix
    (entry, *_) = app.state.console.audit.entries(10, "effectiveness_export")
    assert entry.outcome == "done" and entry.user == "mona" and entry.details["table"] == "channel_mix"
    assert app.state.console.counters["effectiveness_export:done"] == 2


def test_bad_filters_and_unknown_tables_are_refused_audited_and_counted(page):
    app, client = page
    login(client)
    r = client.get("/effectiveness?since=notadate&bucket=month")
    assert r.status_code == 422 and 'data-error="since"' in r.text and 'data-error="bucket"' in r.text
    assert client.get("/effectiveness/levels.csv?until=2020-13-01").status_code == 422
    assert client.get("/effectiveness/passwords.csv").status_code == 404
    console = app.state.console
    assert console.counters["effectiveness:rejected"] == 1
    assert console.counters["effectiveness_export:rejected"] == 2
    assert [e.outcome for e in console.audit.entries(10, "effectiveness")] == ["rejected"]


def test_the_console_command_refuses_a_bad_targets_file_at_start(tmp_path):
    from click.testing import CliRunner

    from edge_agent.central.cli import central

    path = tmp_path / "central.toml"
    path.write_text("[console.channel_targets_pct]\npurple = 5\n")
    result = CliRunner().invoke(central, ["console", "--db", str(tmp_path / "central.db"), "--config", str(path)])
    assert result.exit_code == 1 and "channel_targets_pct" in result.output and "purple" in result.output
