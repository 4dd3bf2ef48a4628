"""The console served by uvicorn: loopback by default, live updates as server-sent events."""

from __future__ import annotations

import re

import httpx2 as httpx
from testkit import console_rig as rig


def test_the_lane_stream_sends_the_panel_when_a_truck_arrives(agent):
    from edge_agent.console import start_console

    handle = start_console(agent, agent.config.console)
    try:
        assert handle.url.startswith("http://127.0.0.1:")
        handle.console.accounts.add_user("vera", "viewer", rig.PASSWORD)
        with httpx.Client(base_url=handle.url, timeout=20) as client:
            assert client.get("/lanes/L1/live").status_code == 401
            r = client.post("/login", data={"username": "vera", "password": rig.PASSWORD})
            assert r.status_code == 303
            panels = []
            with client.stream("GET", "/lanes/L1/live") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                for line in lines:
                    if line.startswith("event: panel"):
                        break
                panels.append(_data(lines))
                rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
                while 'data-channel="red"' not in panels[-1]:
                    line = next(lines)
                    if line.startswith("event: panel"):
                        panels.append(_data(lines))
            assert 'data-phase="idle"' in panels[0]
            assert re.search(r'data-plate="tractor">KS123AB<', panels[-1])
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


def _data(lines) -> str:
    out = []
    for line in lines:
        if not line:
            return "\n".join(out)
        out.append(line.removeprefix("data: "))
    return "\n".join(out)


def test_a_taken_port_is_a_clear_error_and_stop_ends_open_streams(agent):
    import socket
    import threading

    import pytest

    from edge_agent.console import start_console
    from edge_agent.errors import ConsoleError

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        taken = agent.config.console.model_copy(update={"port": blocker.getsockname()[1]})
        with pytest.raises(ConsoleError, match="could not listen"):
            start_console(agent, taken)
    finally:
        blocker.close()

    handle = start_console(agent, agent.config.console)
    handle.console.accounts.add_user("vera", "viewer", rig.PASSWORD)
    client = httpx.Client(base_url=handle.url, timeout=20)
    client.post("/login", data={"username": "vera", "password": rig.PASSWORD})
    first = threading.Event()
    ended = threading.Event()

    def watch():
        try:
            with client.stream("GET", "/live") as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: panel"):
                        first.set()
        except httpx.HTTPError:
            pass
        ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert first.wait(20)
    handle.stop()
    assert not handle.thread.is_alive()
    assert ended.wait(20)
    client.close()
