"""The RAU's console over HTTP (Starlette's test client, the real app, a real ledger on
both back-ends): logging in, the monitoring pages, raising a truck's channel, and each
refusal (no session, no CSRF token, wrong role, bad field, a lowering) with its 4xx,
its audit entry and its counter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from testkit.rau_console_rig import audit, log_in

from edge_agent.central.cli import central
from edge_agent.central.console.app import create_app
from edge_agent.central.console.monitoring import site_view
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.ledger import Ledger
from edge_agent.ids import new_id
from edge_agent.web.audit import verify

PASSWORD = "correct horse battery"
USERS = {"ana": "analyst", "sam": "senior_analyst", "mona": "monitoring", "adam": "administrator"}


def ev(site: str, stream: str, **body) -> bytes:
    return json.dumps({"id": new_id(), "stream": stream, "site": site, **body}).encode()


def health(site: str, **extra) -> str:
    return json.dumps({"id": new_id(), "stream": "health", "site": site, "backlog": 7,
                       "lanes": {"phases": {"L1": "held", "L2": "idle"},
                                 "gates": {"L1": {"barrier": "closed", "lights": "red"}},
                                 "devices": {"scale-L1": {"up": True}, "cam-L2": {"up": False}}}, **extra})


@pytest.fixture
def rau(tmp_path, ledger_url):
    ledger = Ledger(ledger_url)
    ledger.set_status("bcp-a", "online")
    ledger.set_health("bcp-a", health("bcp-a"))
    ledger.set_status("bcp-b", "offline")
    ledger.ingest([("bcp-a", "hit", ev("bcp-a", "hit", reference="R-1", crossing="C1", indicator_id="tobacco",
                                       channel="yellow", tractor_plate="KS123AB"))])
    ledger.close()
    app = create_app(RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db"))
    for name, role in USERS.items():
        app.state.console.accounts.add_user(name, role, PASSWORD)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield app, client
    app.state.console.close()


def login(client, username: str) -> str:
    return log_in(client, username, PASSWORD, "/sites/bcp-a")




def raise_form(csrf: str, **fields) -> dict[str, str]:
    return {"csrf": csrf, "reference": "R-1", "plate": "", "channel": "red", "reason": "intelligence report 42",
            "hours": "12", **fields}


def test_pages_need_a_login_and_a_wrong_password_is_refused_and_audited(rau):
    app, client = rau
    assert client.get("/").status_code == 303 and client.get("/").headers["location"] == "/login?next=/"
    assert client.get("/sites/live").status_code == 401
    r = client.post("/login", data={"username": "ana", "password": "wrong password!", "next": "/"})
    assert r.status_code == 401 and "wrong username or password" in r.text
    assert audit(app, "login")[0].outcome == "refused"
    assert app.state.console.counters["login:refused"] == 1
    login(client, "ana")
    assert audit(app, "login")[0].outcome == "done"
    r = client.get("/")
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert header in r.headers


def test_every_site_is_on_one_page_with_its_link_backlog_lanes_and_devices(rau):
    app, client = rau
    login(client, "mona")
    page = client.get("/").text
    a = page[page.index('data-site="bcp-a"'):page.index('data-site="bcp-b"')]
    assert 'class="link">online' in a and '<td class="backlog">7</td>' in a
    assert "L1: held" in a and "L2: idle" in a and "cam-L2" in a and " ago" in a
    b = page[page.index('data-site="bcp-b"'):]
    assert 'class="link">offline' in b
    live = client.get("/sites/live")
    assert live.status_code == 200 and 'data-site="bcp-a"' in live.text and "<html" not in live.text
    site = client.get("/sites/bcp-a").text
    assert 'data-lane="L1"' in site and "barrier closed, lights red" in site
    assert client.get("/sites/nowhere").status_code == 404


def test_a_site_whose_health_stopped_is_silent_though_its_status_says_online():
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    row = {"site": "bcp-a", "state": "online", "state_at": "2026-03-01T08:00:00.000+00:00",
           "health_at": (now - timedelta(minutes=10)).isoformat(), "health": {"backlog": 3}}
    assert site_view(row, None, now).link == "silent"
    assert site_view({**row, "health_at": (now - timedelta(seconds=30)).isoformat()}, None, now).link == "online"
    assert site_view({**row, "state": "offline"}, None, now).link == "offline"
    assert site_view({**row, "health": {"backlog": "lots", "lanes": "garbage"}}, None, now).backlog is None


def test_an_analyst_raises_a_truck_and_the_command_waits_for_the_hub(rau, ledger_url):
    app, client = rau
    csrf = login(client, "ana")
    r = client.post("/sites/bcp-a/raise", data=raise_form(csrf, plate="ks 123-ab"))
    assert r.status_code == 303 and r.headers["location"] == "/sites/bcp-a"
    ledger = Ledger(ledger_url)
    [(command_id, site, body)] = ledger.commands_pending()
    ledger.close()
    sent = json.loads(body)
    assert site == "bcp-a" and sent["command"] == "raise_channel" and sent["id"] == command_id
    assert (sent["reference"], sent["plate"], sent["channel"]) == ("R-1", "KS123AB", "red")
    assert sent["reason"] == "RAU (ana): intelligence report 42"
    assert datetime.fromisoformat(sent["expires_at"]) > datetime.now(UTC) + timedelta(hours=11)
    entry = audit(app, "raise_channel")[0]
    assert (entry.user, entry.outcome, entry.reason) == ("ana", "done", "intelligence report 42")
    assert entry.details["command"] == command_id and entry.details["from"] == "yellow"
    page = client.get("/sites/bcp-a").text
    assert f'data-command="{command_id}"' in page and "waiting for the hub" in page


def test_a_raise_never_lowers_and_a_truck_that_crossed_cannot_be_raised(rau, ledger_url):
    app, client = rau
    csrf = login(client, "sam")
    r = client.post("/sites/bcp-a/raise", data=raise_form(csrf, channel="green"))
    assert r.status_code == 409 and "can only be raised" in r.text
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-a", "crossing", ev("bcp-a", "crossing", reference="R-1", crossing="C1", channel="yellow"))])
    ledger.close()
    r = client.post("/sites/bcp-a/raise", data=raise_form(csrf))
    assert r.status_code == 409 and "has ended (C1)" in r.text
    assert [e.outcome for e in audit(app, "raise_channel")] == ["rejected", "rejected"]
    assert app.state.console.counters["raise_channel:rejected"] == 2
    ledger = Ledger(ledger_url)
    assert ledger.commands_pending() == []
    ledger.close()


@pytest.mark.parametrize(("fields", "field"), [
    ({"reference": "", "plate": ""}, "reference"),
    ({"reference": "x"}, "reference"),
    ({"plate": "!!"}, "plate"),
    ({"channel": "purple"}, "channel"),
    ({"reason": " "}, "reason"),
    ({"reason": "x" * 401}, "reason"),
    ({"hours": "0"}, "hours"),
    ({"hours": "soon"}, "hours"),
])
def test_a_bad_raise_form_is_refused_field_by_field(rau, fields, field):
    app, client = rau
    csrf = login(client, "ana")
    r = client.post("/sites/bcp-a/raise", data=raise_form(csrf, **fields))
    assert r.status_code == 422 and f'data-error="{field}"' in r.text
    assert audit(app, "raise_channel")[0].outcome == "rejected"
    assert app.state.console.counters["raise_channel:rejected"] == 1


def test_refusals_without_a_session_a_token_or_the_role_are_audited_and_counted(rau):
    app, client = rau
    client.cookies.clear()
    r = client.post("/sites/bcp-a/raise", data=raise_form("none"))
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    csrf = login(client, "ana")
    r = client.post("/sites/bcp-a/raise", data=raise_form("guessed"))
    assert r.status_code == 403 and "security token" in r.text
    for user in ("mona", "adam"):
        csrf = login(client, user)
        assert 'id="raise"' not in client.get("/sites/bcp-a").text
        r = client.post("/sites/bcp-a/raise", data=raise_form(csrf))
        assert r.status_code == 403 and "may not do this" in r.text
    csrf = login(client, "ana")
    assert client.post("/sites/nowhere/raise", data=raise_form(csrf)).status_code == 404
    assert client.get("/audit").status_code == 403
    assert app.state.console.counters["raise_channel:refused"] == 4
    login(client, "adam")
    page = client.get("/audit").text
    assert "raise_channel" in page and "not logged in" in page
    assert verify(app.state.console.audit.path).ok


def test_disabling_a_user_ends_their_session_and_the_chain_verifies(rau, tmp_path, ledger_url):
    app, client = rau
    login(client, "ana")
    assert client.get("/").status_code == 200
    users_db = str(tmp_path / "rau_console.db")
    runner = CliRunner()
    out = runner.invoke(central, ["console", "disable", "--db", ledger_url, "--users-db", users_db,
                                  "--reason", "left the unit", "ana"])
    assert out.exit_code == 0 and "1 session(s) ended" in out.output
    assert client.get("/").status_code == 303
    listed = runner.invoke(central, ["console", "users", "--db", ledger_url, "--users-db", users_db])
    assert "ana" in listed.output and "(disabled)" in listed.output
    added = runner.invoke(central, ["console", "adduser", "--db", ledger_url, "--users-db", users_db, "--role",
                                    "analyst", "--password-stdin", "bea"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    ok = runner.invoke(central, ["audit", "verify", "--db", ledger_url, "--users-db", users_db])
    assert ok.exit_code == 0 and "intact" in ok.output


def test_the_hit_feed_shows_indicator_matched_values_and_instructions(rau, ledger_url):
    app, client = rau
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-b", "hit", ev("bcp-b", "hit", reference="R-9", crossing="C9", indicator_id="L-TOBACCO-24",
                                       title="Tobacco from RS", channel="red", instructions="scan the load",
                                       matched={"items.hs_code": "240220"}))])
    ledger.close()
    login(client, "mona")
    page = client.get("/hits").text
    newest = page[page.index("<tbody>"):].split("</tr>")[0]
    assert "L-TOBACCO-24 · Tobacco from RS" in newest and "items.hs_code = 240220" in newest
    assert "scan the load" in newest and 'href="/crossings/bcp-b/C9"' in newest
    live = client.get("/hits/live")
    assert live.status_code == 200 and "L-TOBACCO-24" in live.text and 'data-poll' not in live.text


def test_crossings_are_searched_across_sites_and_a_crossing_page_shows_its_story(rau, ledger_url):
    app, client = rau
    crossing = new_id()
    ledger = Ledger(ledger_url)
    record = {"reference": "R-7", "tractor_plate": "KS777AB", "gross_kg": 24000, "items": [
        {"hs_code": "240220", "origin": "RS", "gross_kg": 24000}], "consignor": {"name": "Tabak Export DOO"}}
    ledger.record_routed("R-7", 1, "bcp-a", json.dumps(record))
    ledger.ingest([
        ("bcp-a", "hit", ev("bcp-a", "hit", reference="R-7", crossing=crossing, indicator_id="L-TOBACCO-24",
                            channel="red", matched={"items.hs_code": "240220"})),
        ("bcp-a", "control_act", ev("bcp-a", "control_act", crossing_id=crossing, control_type="scanner",
                                    result="positive", user="olga", findings="cigarettes behind the pallets")),
        ("bcp-a", "crossing", ev("bcp-a", "crossing", crossing=crossing, lane="L1", reference="R-7",
                                 tractor_plate="KS777AB", channel="red", hits=["L-TOBACCO-24"], outcome="left")),
    ])
    ledger.close()
    login(client, "mona")
    for query in ("plate=ks+777-ab", "reference=R-7", "indicator=L-TOBACCO-24", "channel=red&site=bcp-a",
                  "since=2020-01-01&plate=KS777AB", "party=tabak+export", "party=EXPORT+doo&channel=red"):
        r = client.get(f"/crossings?{query}")
        assert r.status_code == 200 and f'data-crossing="{crossing}"' in r.text, query
    assert "No crossing matches" in client.get("/crossings?channel=green").text
    assert "No crossing matches" in client.get("/crossings?party=Apple+Growers").text
    page = client.get(f"/crossings/bcp-a/{crossing}").text
    assert "Tabak Export DOO" in page and "HS 240220 from RS" in page  # the pre-arrival record
    assert "L-TOBACCO-24 (red): items.hs_code = 240220" in page
    assert "positive</b> by olga; cigarettes behind the pallets" in page
    assert client.get(f"/crossings/bcp-b/{crossing}").status_code == 404


@pytest.mark.parametrize(("query", "field"), [("plate=%21%21", "plate"), ("since=yesterday", "since"),
                                              ("channel=purple", "channel"), ("reference=%3Cscript%3E", "reference"),
                                              ("party=ab", "party")])
def test_a_bad_search_field_is_refused_and_counted(rau, query, field):
    app, client = rau
    login(client, "mona")
    r = client.get(f"/crossings?{query}")
    assert r.status_code == 422 and f'data-error="{field}"' in r.text
    assert app.state.console.counters["search:rejected"] == 1


@pytest.mark.parametrize(("trusted", "proto", "secure"), [
    ([], "https", False),  # a proxy nobody listed
    (["10.0.0.5/32"], "https", True),
    (["10.0.0.5/32"], "http", False),
])
def test_the_session_cookie_is_secure_when_a_trusted_proxy_had_tls(tmp_path, ledger_url, trusted, proto, secure):
    from edge_agent.central.console.pages import trusted_networks

    app = create_app(RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db",
                                        trusted_proxies=trusted_networks(trusted)))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    try:
        with TestClient(app, base_url="http://127.0.0.1", client=("10.0.0.5", 50000),
                        follow_redirects=False) as client:
            r = client.post("/login", data={"username": "ana", "password": PASSWORD, "next": "/"},
                            headers={"X-Forwarded-Proto": proto})
            assert r.status_code == 303
            assert ("; secure" in r.headers["set-cookie"].lower()) is secure
    finally:
        app.state.console.close()
