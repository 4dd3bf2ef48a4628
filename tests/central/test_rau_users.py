"""The administrator's users page over HTTP (issue 16, item 7): add, disable, enable,
reset a password; disabling ends the user's sessions; each refusal (wrong role, no CSRF
token, a bad field, an existing name, disabling oneself) with its 4xx, its audit entry and
its counter. The users live in the console's own SQLite file, whatever the ledger."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from edge_agent.central.console.app import create_app
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.web.audit import verify

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path):
    app = create_app(RauConsoleSettings(ledger=str(tmp_path / "central.db"), users_db=tmp_path / "rau_console.db"))
    app.state.console.accounts.add_user("adam", "administrator", PASSWORD)
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    yield app
    app.state.console.close()


def client_of(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    r = client.post("/login", data={"username": username, "password": password, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client


def csrf(client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/effectiveness").text).group(1)


def entries(app, action):
    return [(e.user, e.outcome, e.details.get("username")) for e in app.state.console.audit.entries(20, action)]


def test_the_administrator_adds_a_user_who_can_then_log_in(app):
    adam = client_of(app, "adam")
    page = adam.get("/users")
    assert page.status_code == 200 and 'data-user="ana"' in page.text and 'href="/users"' in page.text
    r = adam.post("/users", data={"csrf": csrf(adam), "username": "mona", "role": "monitoring",
                                  "full_name": "Mona M.", "password": "a long password 1"})
    assert r.status_code == 303 and r.headers["location"] == "/users"
    assert 'data-user="mona"' in adam.get("/users").text
    assert client_of(app, "mona", "a long password 1").get("/").status_code == 200
    assert entries(app, "user_add") == [("adam", "done", "mona")]
    assert app.state.console.counters["user_add:done"] == 1


def test_disabling_ends_the_users_sessions_and_enabling_lets_them_back(app):
    ana = client_of(app, "ana")
    assert ana.get("/").status_code == 200
    adam = client_of(app, "adam")
    r = adam.post("/users/ana/disable", data={"csrf": csrf(adam), "reason": "left the unit"})
    assert r.status_code == 303
    after = ana.get("/")  # her open session: its next request goes to the login page
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    assert ana.post("/login", data={"username": "ana", "password": PASSWORD, "next": "/"}).status_code != 303
    assert 'data-user="ana" data-disabled="yes"' in adam.get("/users").text
    (entry,) = app.state.console.audit.entries(5, "user_disable")
    assert (entry.user, entry.outcome, entry.reason, entry.details) == (
        "adam", "done", "left the unit", {"username": "ana", "sessions_ended": 1})
    assert adam.post("/users/ana/enable", data={"csrf": csrf(adam)}).status_code == 303
    assert client_of(app, "ana").get("/").status_code == 200
    assert entries(app, "user_enable") == [("adam", "done", "ana")]


def test_a_password_reset_ends_sessions_and_keeps_a_disabled_user_disabled(app):
    ana = client_of(app, "ana")
    adam = client_of(app, "adam")
    assert adam.post("/users/ana/password", data={"csrf": csrf(adam), "password": "a new password 2"}).status_code \
        == 303
    assert ana.get("/").status_code == 303  # the old session is gone
    assert client_of(app, "ana", "a new password 2").get("/").status_code == 200
    assert adam.post("/users/ana/disable", data={"csrf": csrf(adam)}).status_code == 303
    assert adam.post("/users/ana/password", data={"csrf": csrf(adam), "password": "a third password"}).status_code \
        == 303
    assert 'data-user="ana" data-disabled="yes"' in adam.get("/users").text
    assert entries(app, "user_password")[0] == ("adam", "done", "ana")


def test_refusals_are_4xx_audited_and_counted(app):
    console = app.state.console
    ana = client_of(app, "ana")
    assert ana.get("/users").status_code == 403 and 'href="/users"' not in ana.get("/").text
    assert ana.post("/users/adam/disable", data={"csrf": csrf(ana)}).status_code == 403
    assert entries(app, "user_disable") == [("ana", "refused", "adam")]
    assert entries(app, "users_view")[0][:2] == ("ana", "refused")
    adam = client_of(app, "adam")
    assert adam.post("/users/ana/disable", data={"csrf": "forged"}).status_code == 403
    assert console.counters["user_disable:refused"] == 2
    bad = adam.post("/users", data={"csrf": csrf(adam), "username": "Bad Name", "role": "king", "password": "short"})
    assert bad.status_code == 422
    assert all(f'data-error="{f}"' in bad.text for f in ("username", "role", "password"))
    taken = adam.post("/users", data={"csrf": csrf(adam), "username": "ana", "role": "analyst",
                                      "password": "a long password 1"})
    assert taken.status_code == 409 and 'data-error="username"' in taken.text
    assert console.counters["user_add:rejected"] == 2
    assert adam.post("/users/nobody/disable", data={"csrf": csrf(adam)}).status_code == 404
    assert adam.post("/users/adam/disable", data={"csrf": csrf(adam)}).status_code == 409
    assert adam.post("/users/ana/password", data={"csrf": csrf(adam), "password": "short"}).status_code == 422
    assert console.counters["user_disable:rejected"] == 2 and console.counters["user_password:rejected"] == 1
    assert client_of(app, "adam").get("/").status_code == 200  # still an administrator
    anon = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    assert anon.post("/users", data={"username": "x"}).status_code == 303
    assert verify(app.state.console.settings.users_db).ok
