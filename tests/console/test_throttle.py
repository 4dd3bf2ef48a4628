"""Password guessing at the console's login is slowed down, per username and per address,
without locking an officer out for good or letting one valid account reset the count."""

from __future__ import annotations

import urllib.request

import pytest
from testkit import console_rig as rig

from edge_agent.console.throttle import MAX_TRACKED, LoginThrottle, ThrottlePolicy, pause_after

POLICY = ThrottlePolicy(free_failures=3, free_failures_per_client=5, pause_s=10.0, max_pause_s=60.0,
                        forget_after_s=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def throttle(clock):
    return LoginThrottle(POLICY, clock)


@pytest.mark.parametrize(("failures", "pause"), [(0, 0.0), (2, 0.0), (3, 10.0), (4, 20.0), (5, 40.0), (6, 60.0),
                                                 (30, 60.0), (10_000, 60.0)])
def test_the_pause_starts_after_the_free_failures_and_doubles_up_to_the_cap(failures, pause):
    assert pause_after(failures, 3, POLICY) == pause


def test_a_username_pauses_after_its_free_failures_then_gets_one_more_try(throttle, clock):
    assert [throttle.failed("olga", "10.0.0.5") for _ in range(3)] == [0.0, 0.0, 10.0]
    assert throttle.wait_s("olga", "10.0.0.9") == 10.0  # from any address
    assert throttle.wait_s("vera", "10.0.0.5") == 0.0  # other officers at the same booth are not held up
    clock.now += 10.0
    assert throttle.wait_s("olga", "10.0.0.5") == 0.0
    assert throttle.failed("olga", "10.0.0.5") == 20.0


def test_success_clears_the_username_but_not_the_address(throttle):
    for name in ("a1", "a2", "a3", "a4"):
        throttle.failed(name, "10.0.0.66")
    throttle.succeeded("a4")
    assert throttle.failed("a5", "10.0.0.66") == 10.0  # the fifth failure from the address
    assert throttle.wait_s("anyone", "10.0.0.66") == 10.0
    assert throttle.wait_s("anyone", "10.0.0.67") == 0.0


def test_a_quiet_spell_forgets_the_count(throttle, clock):
    for _ in range(3):
        throttle.failed("olga", "10.0.0.5")
    clock.now += 60.0
    assert throttle.wait_s("olga", "10.0.0.5") == 0.0
    assert throttle.failed("olga", "10.0.0.5") == 0.0  # counting from one again


def test_a_spray_of_usernames_cannot_grow_memory_without_bound(throttle):
    for i in range(MAX_TRACKED + 500):
        throttle.failed(f"user{i}", "10.0.0.66")
    assert throttle.tracked() == MAX_TRACKED
    assert throttle.wait_s("anyone", "10.0.0.66") == 60.0  # the address, touched last, is kept


# --------------------------------------------------------------------------- through the login page


@pytest.fixture
def paused_app(tmp_path):
    """A console whose throttle pauses after two wrong passwords; the clock is the test's."""
    from gpiozero.pins.mock import MockFactory
    from starlette.testclient import TestClient

    from edge_agent.config import ConsoleConfig
    from edge_agent.console.app import create_app

    config = rig.site_config(tmp_path, ConsoleConfig(enabled=False, login_free_failures=2, login_pause_s=30.0))
    bench = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path)
    bench.start()
    app = create_app(bench, config.console)
    for name, role in rig.USERS.items():
        app.state.console.accounts.add_user(name, role, rig.PASSWORD)
    clock = Clock()
    app.state.console.throttle.clock = clock
    try:
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            yield app, client, clock
    finally:
        app.state.console.close()
        bench.stop()


def test_the_login_page_pauses_a_guessed_username_says_so_and_audits_it_once(paused_app):
    app, client, clock = paused_app
    console = app.state.console
    for _ in range(2):
        assert client.post("/login", data={"username": "olga", "password": "guess-guess"}).status_code == 401
    r = client.post("/login", data={"username": "olga", "password": rig.PASSWORD})
    assert r.status_code == 429, "the right password is not even checked during the pause"
    assert r.headers["retry-after"] == "30"
    assert "too many wrong passwords: try again in 30 s" in r.text
    assert client.post("/login", data={"username": "olga", "password": "guess-again"}).status_code == 429
    assert console.counters["login:throttled"] == 2
    entries = console.audit.entries(50, "login")
    assert len(entries) == 2, "refusals during the pause are counted, not audited"
    assert "logins paused 30 s" in entries[0].reason
    with urllib.request.urlopen(console.agent.metrics.url, timeout=10) as m:
        assert 'edge_agent_console_requests_total{action="login",outcome="throttled"} 2' in m.read().decode()
    rig.login(client, "vera")  # another officer at the same booth logs in meanwhile
    clock.now += 30.0
    r = client.post("/login", data={"username": "olga", "password": rig.PASSWORD})
    assert r.status_code == 303
