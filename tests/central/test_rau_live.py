"""The live panels' server-sent events over real HTTP (uvicorn on loopback, the console's
own server): an ingested hit arrives on the hits stream, a logout ends the stream, the
streams per user are bounded, and a stop is not held by open streams (each is told
`closing` before uvicorn waits for its connections)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from urllib.parse import urlencode

import pytest
from testkit.waiting import wait_for

from edge_agent.central.console.app import create_app, server_for
from edge_agent.central.console.live import LiveStreams
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.ledger import Ledger
from edge_agent.ids import new_id

PASSWORD = "correct horse battery"


@pytest.fixture
def served(tmp_path, ledger_url):
    ledger = Ledger(ledger_url)
    ledger.set_status("bcp-a", "online")
    ledger.close()
    app = create_app(RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db"))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    server = server_for(app)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 15)
    yield app, server, thread, sock.getsockname()[1], ledger_url
    server.should_exit = True
    thread.join(15)
    app.state.console.close()


def login(port: int) -> tuple[str, str]:
    """(the session cookie, the page's CSRF token)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/login", urlencode({"username": "ana", "password": PASSWORD, "next": "/"}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    assert r.status == 303
    cookie = r.getheader("Set-Cookie").split(";")[0]
    conn.request("GET", "/hits", headers={"Cookie": cookie})
    page = conn.getresponse().read().decode()
    assert 'data-events="/hits/events"' in page
    conn.close()
    return cookie, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


class Stream:
    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", path, headers={"Cookie": cookie, "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()

    def next_event(self) -> tuple[str, str] | None:
        """(event name, data) of the next event, None at the stream's end."""
        name, data = "message", []
        while True:
            line = self.response.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if not line:
                if data:
                    return name, "\n".join(data)
                continue
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])

    def until(self, wanted) -> tuple[str, str]:
        while True:
            event = self.next_event()
            assert event is not None, "the stream ended first"
            if wanted(event):
                return event

    def close(self) -> None:
        self.conn.close()


def test_an_ingested_hit_arrives_on_the_hits_stream(served):
    app, server, thread, port, ledger_url = served
    cookie, _ = login(port)
    stream = Stream(port, "/hits/events", cookie)
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type").startswith("text/event-stream")
    assert "No hit stored yet" in stream.until(lambda e: e[0] == "panel")[1]
    hit_id = new_id()
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-a", "hit", json.dumps({"id": hit_id, "stream": "hit", "site": "bcp-a", "crossing": "C9",
                                                "indicator_id": "tobacco-7", "channel": "red"}).encode())])
    ledger.close()
    name, html = stream.until(lambda e: hit_id in e[1])
    assert name == "panel" and "tobacco-7" in html
    stream.close()


def test_a_logout_ends_the_sites_stream(served):
    app, server, thread, port, _ = served
    cookie, csrf = login(port)
    stream = Stream(port, "/sites/events", cookie)
    assert 'data-site="bcp-a"' in stream.until(lambda e: e[0] == "panel")[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/logout", urlencode({"csrf": csrf}),
                 {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    assert conn.getresponse().status == 303
    assert stream.until(lambda e: e[0] == "closing") == ("closing", "session_ended")
    assert stream.next_event() is None  # and the stream ends
    stream.close()
    wait_for(lambda: app.state.live.open_count() == 0, 30)


def test_streams_per_user_are_bounded_and_a_refusal_is_counted(served):
    app, server, thread, port, _ = served
    app.state.live = LiveStreams(per_user=1, total=10)
    cookie, _ = login(port)
    first = Stream(port, "/sites/events", cookie)
    first.until(lambda e: e[0] == "panel")
    second = Stream(port, "/hits/events", cookie)
    assert second.response.status == 429
    assert app.state.console.counters["live:refused"] == 1
    anonymous = Stream(port, "/hits/events", "rau_console=forged")
    assert anonymous.response.status == 401
    for s in (first, second, anonymous):
        s.close()


def test_a_stop_is_not_held_by_open_streams(served):
    app, server, thread, port, _ = served
    cookie, _ = login(port)
    streams = [Stream(port, path, cookie) for path in ("/sites/events", "/hits/events")]
    for s in streams:
        s.until(lambda e: e[0] == "panel")
    server.should_exit = True
    for s in streams:  # told, not cut off when uvicorn's graceful timeout runs out
        assert s.until(lambda e: e[0] == "closing") == ("closing", "closing")
        assert s.next_event() is None
        s.close()
    thread.join(30)
    assert not thread.is_alive()
    assert app.state.live.open_count() == 0


def test_disabling_the_user_ends_their_stream(served):
    app, server, thread, port, _ = served
    cookie, _ = login(port)
    stream = Stream(port, "/hits/events", cookie)
    stream.until(lambda e: e[0] == "panel")
    app.state.console.accounts.set_disabled("ana", True)
    assert stream.until(lambda e: e[0] == "closing") == ("closing", "session_ended")
    stream.close()
